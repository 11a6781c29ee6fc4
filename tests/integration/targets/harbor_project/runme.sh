#!/usr/bin/env bash
# Start the fake Harbor (it brings its own registry), seed its library project with the standard
# images, and run the harbor_project scenarios against it.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

# The registries' EXIT trap also stops Harbor: 'tests.support stop' stops every state file with
# a registry_pid, and Harbor's has one.
harbor_start() {
    local name="$1"

    (cd "$REGISTRIES_ROOT" && "$REGISTRIES_PYTHON" -m tests.support.harbor_server start \
        --state-dir "$REGISTRIES_STATE_DIR" --name "$name")
    REGISTRIES_VARS+=(-e "@$REGISTRIES_STATE_DIR/$name.yml")
}

harbor_start harbor
registries_seed harbor

ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" playbook.yml "$@"
