#!/usr/bin/env bash
# airgap_export against a seeded plain registry: check mode on an empty folder, a real run and
# its checks, a second run and a check-mode run that change nothing, then a new part size.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

registries_start plain src
registries_seed src

# Inside the registries' state directory, which their EXIT trap removes.
WORK_DIR="$REGISTRIES_STATE_DIR/work"
COMMON=(-i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" -e "work_dir=$WORK_DIR"
    -e "collection_root=$REGISTRIES_ROOT")


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


expect_changes some export.yml --check -e phase=check_fresh "$@"
expect_changes some export.yml -e phase=converge "$@"
expect_changes none export.yml -e phase=converge "$@"
expect_changes none export.yml --check -e phase=converge "$@"
expect_changes some export.yml -e phase=resplit -e split_size=48K "$@"
