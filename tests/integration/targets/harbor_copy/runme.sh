#!/usr/bin/env bash
# Mirror and load into the fake Harbor (which brings its own registry): projects are created
# on the fly, check mode creates nothing, create_projects: false fails clearly, no secret leaks.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

registries_start plain src
registries_seed src
registries_start harbor harbor

ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" playbook.yml "$@"

# The same mirror with -vvv: neither the Harbor password nor its Basic form may appear.
output="$(mktemp)"
ansible-playbook -vvv -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" secrets.yml > "$output" 2>&1
password="$(grep '^harbor_password:' "$REGISTRIES_STATE_DIR/harbor.yml" | cut -d'"' -f2)"
basic="$(printf 'admin:%s' "$password" | base64)"
if grep -F -e "$password" -e "$basic" "$output"; then
    echo "the Harbor password appears in -vvv output" >&2
    exit 1
fi
grep -q "ok=" "$output"
rm -f "$output"
