#!/usr/bin/env bash
# Demo: the air-gap workflow end to end on this machine. Two registries start on the loopback
# interface, "connected" with sample multi-arch images and "airgap" empty. playbooks/demo.yml
# exports the images from the first with the role airgap.hangar.airgap_export, carries the
# parts across and imports them into the second with airgap.hangar.airgap_import. Needs nothing
# but this checkout on Debian or Ubuntu: scripts/setup.sh installs the rest, and from then on
# the demo runs offline. The registries stop when the demo ends; the files it wrote stay.
#
#   HANGAR_DEMO_DIR   folder for the transfer files and reports (default: a new one in /tmp)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_STATE="$(mktemp -d "${TMPDIR:-/tmp}/hangar-demo-registries.XXXXXX")"
DEMO_DIR="${HANGAR_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/hangar-demo.XXXXXX")}"


# The test-support CLI runs from the collection root and imports the collection, so the
# directory holding ansible_collections/ goes on PYTHONPATH.
support_cli() {
    (cd "$HANGAR_LAYOUT" && PYTHONPATH="$HANGAR_BUILD" python -m tests.support "$@")
}


stop_registries() {
    support_cli stop --state-dir "$DEMO_STATE" >/dev/null 2>&1 || true
    rm -rf "$DEMO_STATE"
}


main() {
    bash "$HANGAR_REPO/scripts/setup.sh"
    bash "$HANGAR_REPO/scripts/layout.sh"
    activate_venv

    trap stop_registries EXIT
    log "starting two plain-HTTP registries on the loopback interface: connected and airgap"
    support_cli start --mode plain --state-dir "$DEMO_STATE" --name connected
    support_cli start --mode plain --state-dir "$DEMO_STATE" --name airgap

    log "pushing the sample images into the connected registry"
    support_cli seed --state-dir "$DEMO_STATE" --name connected >/dev/null

    # Each started registry wrote its Ansible variables (connected_registry, ...) into a file.
    log "ansible-playbook playbooks/demo.yml"
    mkdir -p "$DEMO_DIR"
    ANSIBLE_COLLECTIONS_PATH="$HANGAR_BUILD" ANSIBLE_LOCALHOST_WARNING=false \
        ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
        ansible-playbook "$HANGAR_REPO/playbooks/demo.yml" \
        -e "@$DEMO_STATE/connected.yml" -e "@$DEMO_STATE/connected-images.yml" \
        -e "@$DEMO_STATE/airgap.yml" -e "demo_dir=$DEMO_DIR" \
        -e "ansible_python_interpreter=$HANGAR_VENV/bin/python"

    log "export: $DEMO_DIR/transfer/manifest.json and report.html"
    log "import: $DEMO_DIR/airgap/import-report.json and import-report.html"
}


main "$@"
