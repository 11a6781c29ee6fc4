#!/usr/bin/env bash
# airgap_import: export the seeded images with airgap_export (split into parts), then import
# them from a copy holding only the parts into a plain registry, and from the export folder into
# the fake Harbor with managed projects; a copy with one damaged part must fail before loading.
# Check mode first, then a real run, a second run and a check-mode run that change nothing.
set -euo pipefail

# shellcheck source=tests/integration/targets/setup_registries/registries.sh
. ../setup_registries/registries.sh

# The registries' EXIT trap also stops Harbor ('tests.support stop' stops every state file with
# a registry_pid).
harbor_start() {
    local name="$1"

    (cd "$REGISTRIES_ROOT" && "$REGISTRIES_PYTHON" -m tests.support.harbor_server start \
        --state-dir "$REGISTRIES_STATE_DIR" --name "$name")
    REGISTRIES_VARS+=(-e "@$REGISTRIES_STATE_DIR/$name.yml")
}

registries_start plain src
registries_seed src
registries_start plain dst
registries_start plain untouched
harbor_start harbor

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


# Flip one byte in the middle of a file, keeping its size.
damage() {
    "$REGISTRIES_PYTHON" - "$1" <<'PYTHON'
import sys

with open(sys.argv[1], "r+b") as part:
    part.seek(4096)
    byte = part.read(1)
    part.seek(4096)
    part.write(bytes([byte[0] ^ 0xFF]))
PYTHON
}


ansible-playbook "${COMMON[@]}" export.yml "$@"

# The media carries the manifest and the parts only; the damaged copy has one part altered.
mkdir -p "$WORK_DIR/media" "$WORK_DIR/damaged"
cp "$WORK_DIR"/transfer/manifest.json "$WORK_DIR"/transfer/*.part-* "$WORK_DIR/media/"
cp "$WORK_DIR"/media/* "$WORK_DIR/damaged/"
damage "$WORK_DIR/damaged/images.zip.part-001"

expect_changes some import.yml --check -e phase=check_fresh "$@"
expect_changes some import.yml -e phase=converge "$@"
expect_changes none import.yml -e phase=converge "$@"
expect_changes none import.yml --check -e phase=converge "$@"
