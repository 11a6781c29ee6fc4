# Registries for integration targets: source this file from a target's runme.sh.
# shellcheck shell=bash
#
#   . ../setup_registries/registries.sh
#   registries_start plain src        # mode, name: vars src_registry, src_url, ... (see below)
#   registries_seed src               # push the standard images: vars from src-images.yml
#   ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" playbook.yml "$@"
#
# The target's aliases need "needs/target/setup_registries" so that ansible-test copies this
# directory next to the target. Modes: plain, tls, basic, basic-http, token, mtls. Each started
# registry writes NAME.yml with NAME_registry (host:port), NAME_url, NAME_username,
# NAME_password, NAME_ca_path, NAME_client_cert, NAME_client_key and NAME_log. The registries
# stop when the script exits, through an EXIT trap, so runme.sh must not set its own EXIT trap.
#
# ansible-test runs runme.sh from a copy of the target under tests/output/.tmp/integration/, so
# the collection root is found through ANSIBLE_COLLECTIONS_PATH, which ansible-test points at
# the directory holding ansible_collections/. The registries run with the Python ansible-test
# uses for modules (ANSIBLE_TEST_PYTHON_INTERPRETER), which has the test requirements.

REGISTRIES_VARS=()


# Print the collection root: the airgap.hangar copy on ANSIBLE_COLLECTIONS_PATH, or else the
# first directory above this file that holds galaxy.yml (a target run by hand).
registries_collection_root() {
    local entry dir
    local IFS=:

    for entry in ${ANSIBLE_COLLECTIONS_PATH:-}; do
        if [ -f "$entry/ansible_collections/airgap/hangar/galaxy.yml" ]; then
            (cd "$entry/ansible_collections/airgap/hangar" && pwd)
            return
        fi
    done

    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    while [ "$dir" != "/" ]; do
        if [ -f "$dir/galaxy.yml" ] && [ -d "$dir/tests/support" ]; then
            printf '%s\n' "$dir"
            return
        fi
        dir="$(dirname "$dir")"
    done

    echo "registries.sh: airgap.hangar not found on ANSIBLE_COLLECTIONS_PATH" \
        "(${ANSIBLE_COLLECTIONS_PATH:-unset}) nor above ${BASH_SOURCE[0]};" \
        "run the target through ansible-test or scripts/test.sh." >&2
    return 1
}


REGISTRIES_ROOT="$(registries_collection_root)"
REGISTRIES_PYTHON="${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}"
REGISTRIES_STATE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/hangar-registries.XXXXXX")"


# Run the test-support CLI from the collection root. tests.support imports the collection's
# module_utils, so the directory holding ansible_collections/ goes on PYTHONPATH.
registries_cli() {
    local collections_dir

    collections_dir="$(cd "$REGISTRIES_ROOT/../../.." && pwd)"
    (
        cd "$REGISTRIES_ROOT" || exit 1
        PYTHONPATH="$collections_dir${PYTHONPATH:+:$PYTHONPATH}" \
            "$REGISTRIES_PYTHON" -m tests.support "$@"
    )
}


# Start a registry in the background and add its vars file to REGISTRIES_VARS.
registries_start() {
    local mode="$1" name="$2"

    registries_cli start --mode "$mode" --state-dir "$REGISTRIES_STATE_DIR" --name "$name"
    REGISTRIES_VARS+=(-e "@$REGISTRIES_STATE_DIR/$name.yml")
}


# Push the standard test images into a started registry and add the digests file to
# REGISTRIES_VARS.
registries_seed() {
    local name="$1"

    registries_cli seed --state-dir "$REGISTRIES_STATE_DIR" --name "$name"
    REGISTRIES_VARS+=(-e "@$REGISTRIES_STATE_DIR/$name-images.yml")
}


# Print the end of each registry log, so that a failed target shows what the registries saw.
registries_show_logs() {
    local log

    registries_log_paths | while IFS= read -r log; do
        [ -f "$log" ] || continue
        echo "--- last lines of $log" >&2
        tail -n 20 "$log" >&2
    done
}


# Print the NAME_log value of every vars file in the state directory, one a line.
registries_log_paths() {
    "$REGISTRIES_PYTHON" - "$REGISTRIES_STATE_DIR" <<'EOF'
import pathlib
import sys

import yaml

for vars_file in sorted(pathlib.Path(sys.argv[1]).glob("*.yml")):
    for key, value in (yaml.safe_load(vars_file.read_text()) or {}).items():
        if key.endswith("_log") and value:
            print(value)
EOF
}


# Run ansible-playbook with the caller's COMMON arguments array and then "$@", and check the
# recap: "none" wants changed=0 on every host, "some" at least one change.
registries_expect_changes() {
    local want="$1" log changed
    shift
    log="$(mktemp "$REGISTRIES_STATE_DIR/playbook.XXXXXX")"

    ansible-playbook "${COMMON[@]}" "$@" | tee "$log"
    changed="$(awk '/ changed=[0-9]+/ { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) {
        split($i, kv, "="); sum += kv[2] } } END { print sum + 0 }' "$log")"

    if [ "$want" = none ] && [ "$changed" -ne 0 ]; then
        echo "expected no change, the recap counts $changed: $*" >&2
        return 1
    fi
    if [ "$want" = some ] && [ "$changed" -eq 0 ]; then
        echo "expected changes, the recap counts none: $*" >&2
        return 1
    fi
}


registries_stop() {
    local status=$?

    if [ "$status" -ne 0 ]; then
        registries_show_logs
    fi

    registries_cli stop --state-dir "$REGISTRIES_STATE_DIR" >/dev/null || true
    rm -rf "$REGISTRIES_STATE_DIR"
    return "$status"
}


trap registries_stop EXIT
