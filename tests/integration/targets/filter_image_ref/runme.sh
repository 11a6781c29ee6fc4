#!/usr/bin/env bash
# Check image_ref against a table of references, and against hangar_inspect on a real registry.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

registries_start plain plain
registries_seed plain

ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" playbook.yml "$@"
