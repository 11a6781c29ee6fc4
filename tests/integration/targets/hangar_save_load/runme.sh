#!/usr/bin/env bash
# Save the standard images from a plain registry into Hangar archives and load them into a
# TLS registry with basic auth; then use its password under -vvv and make sure it never shows.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

registries_start plain src
registries_seed src
registries_start basic dst

ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" playbook.yml "$@"


# Print one variable of a registry's vars file.
registry_var() {
    "$REGISTRIES_PYTHON" - "$REGISTRIES_STATE_DIR/$1.yml" "$1_$2" <<'PYTHON'
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as handle:
    print(yaml.safe_load(handle)[sys.argv[2]])
PYTHON
}

secrets_log="$REGISTRIES_STATE_DIR/secrets.log"
if ! ansible-playbook -i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" secrets.yml -vvv \
    >"$secrets_log" 2>&1; then
    cat "$secrets_log"
    exit 1
fi

user="$(registry_var dst username)"
password="$(registry_var dst password)"
# The password itself, alone in base64, and in the Basic header of the right and wrong logins.
for secret in "$password" \
    "$(printf '%s' "$password" | base64 -w0)" \
    "$(printf '%s:%s' "$user" "$password" | base64 -w0)" \
    "$(printf '%s:%s-wrong' "$user" "$password" | base64 -w0)"; do
    if grep -qF -- "$secret" "$secrets_log"; then
        echo "secrets.yml -vvv output shows the password or its base64 form:" >&2
        grep -nF -- "$secret" "$secrets_log" >&2
        exit 1
    fi
done
# The search means something only if -vvv output is there: it shows module arguments, with
# the password masked.
if ! grep -qF 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' "$secrets_log"; then
    echo "secrets.yml output has no module arguments; was it run with -vvv? ($secrets_log)" >&2
    exit 1
fi
echo "secrets.yml -vvv output ($(wc -l <"$secrets_log") lines) shows no password"
