#!/usr/bin/env bash
# Start a seeded plain source and an empty plain destination, and a seeded token-auth source and
# an empty Basic-auth destination (both HTTPS), then run the scenarios.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

registries_start plain src
registries_seed src
registries_start plain dst
registries_start token token_src
registries_seed token_src
registries_start basic basic_dst

ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" playbook.yml "$@"
