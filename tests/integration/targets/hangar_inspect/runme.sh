#!/usr/bin/env bash
# Start one registry per connection mode (plain HTTP, HTTPS with a CA, Basic auth, Bearer token
# auth, client certificate), seed each with the standard images, then run the scenarios.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

for mode in plain tls basic token mtls; do
    registries_start "$mode" "$mode"
    registries_seed "$mode"
done

# The secrets scenario reads what a -vvv run printed. The file lives in the registries' state
# directory, which the EXIT trap removes, so no password outlives the run.
verbose_log="$REGISTRIES_STATE_DIR/verbose.log"
if ! ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" verbose.yml -vvv \
    >"$verbose_log" 2>&1; then
    echo "verbose.yml failed; its last lines:" >&2
    tail -n 40 "$verbose_log" >&2
    exit 1
fi

ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" -e "verbose_log=$verbose_log" \
    playbook.yml "$@"
