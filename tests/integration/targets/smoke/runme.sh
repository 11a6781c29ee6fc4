#!/usr/bin/env bash
# Start a plain registry and check that a playbook on the test host reaches it.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

registries_start plain plain

ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" playbook.yml "$@"
