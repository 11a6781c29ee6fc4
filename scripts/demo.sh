#!/usr/bin/env bash
# Demo: start a local registry holding sample images, then inspect one of them with the
# airgap.hangar.hangar_inspect module. Needs nothing but this checkout on Debian or Ubuntu;
# scripts/setup.sh installs the rest. The registry stops when the demo ends.
#
#   HANGAR_DEMO_IMAGE   repository:tag to inspect (default library/alpine:3.20, a multi-arch
#                       Docker manifest list among the sample images)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_IMAGE="${HANGAR_DEMO_IMAGE:-library/alpine:3.20}"
DEMO_NAME="demo"
DEMO_STATE="$(mktemp -d "${TMPDIR:-/tmp}/hangar-demo.XXXXXX")"


# The test-support CLI runs from the collection root and imports the collection, so the
# directory holding ansible_collections/ goes on PYTHONPATH.
support_cli() {
    (cd "$HANGAR_LAYOUT" && PYTHONPATH="$HANGAR_BUILD" python -m tests.support "$@")
}


stop_registry() {
    support_cli stop --state-dir "$DEMO_STATE" >/dev/null 2>&1 || true
    rm -rf "$DEMO_STATE"
}


registry_url() {
    python -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"])' \
        "$DEMO_STATE/$DEMO_NAME.json"
}


main() {
    bash "$HANGAR_REPO/scripts/setup.sh"
    bash "$HANGAR_REPO/scripts/layout.sh"
    activate_venv

    trap stop_registry EXIT
    log "starting a plain-HTTP registry on the loopback interface"
    support_cli start --mode plain --state-dir "$DEMO_STATE" --name "$DEMO_NAME"

    log "pushing the sample images"
    support_cli seed --state-dir "$DEMO_STATE" --name "$DEMO_NAME" >/dev/null

    local image
    image="$(registry_url)/$DEMO_IMAGE"
    log "ansible localhost -m airgap.hangar.hangar_inspect -a image=$image"

    # The module runs with the virtualenv's Python, which has requests.
    ANSIBLE_COLLECTIONS_PATH="$HANGAR_BUILD" ANSIBLE_LOCALHOST_WARNING=false \
        ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
        ansible localhost -m airgap.hangar.hangar_inspect -a "image=$image" \
        -e "ansible_python_interpreter=$HANGAR_VENV/bin/python"
}


main "$@"
