#!/usr/bin/env bash
# Save archives from a plain registry seeded with the standard images, then merge, export,
# create, list and verify archives with hangar_archive and hangar_archive_info.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

registries_start plain src
registries_seed src

ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" playbook.yml "$@"
