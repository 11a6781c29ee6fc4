#!/usr/bin/env bash
# registry_mirror in distributed mode on two inventory hosts (both local connections): check
# mode on an empty destination, a real run whose two shares must cover the list exactly once,
# then a second run and a check-mode run that change nothing.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

registries_start plain src
registries_seed src
registries_start plain dst

# Two hosts that run on this machine; the modules need the Python with the test requirements.
INVENTORY="$REGISTRIES_STATE_DIR/mirrors.ini"
cat > "$INVENTORY" <<INI
[mirrors]
host1
host2

[mirrors:vars]
ansible_connection=local
ansible_python_interpreter=$REGISTRIES_PYTHON
INI

COMMON=(-i "$INVENTORY" "${REGISTRIES_VARS[@]}" -e "images_file=$PWD/files/images.txt")


# Run the playbook and check the recap: "none" wants changed=0 on every host, "some" at least
# one change.
expect_changes() {
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


expect_changes some mirror.yml --check -e phase=check_fresh "$@"
expect_changes some mirror.yml -e phase=converge "$@"
expect_changes none mirror.yml -e phase=again "$@"
expect_changes none mirror.yml --check -e phase=again "$@"
