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
# shellcheck disable=SC2034  # read by registries_expect_changes
COMMON=(-i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" -e "work_dir=$WORK_DIR"
    -e "collection_root=$REGISTRIES_ROOT")


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

registries_expect_changes some import.yml --check -e phase=check_fresh "$@"
registries_expect_changes some import.yml -e phase=converge "$@"
registries_expect_changes none import.yml -e phase=converge "$@"
registries_expect_changes none import.yml --check -e phase=converge "$@"
