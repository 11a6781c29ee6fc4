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
# shellcheck disable=SC2034  # read by registries_expect_changes
COMMON=(-i "$INVENTORY_PATH" "${REGISTRIES_VARS[@]}" -e "work_dir=$WORK_DIR"
    -e "collection_root=$REGISTRIES_ROOT")


registries_expect_changes some export.yml --check -e phase=check_fresh "$@"
registries_expect_changes some export.yml -e phase=converge "$@"
registries_expect_changes none export.yml -e phase=converge "$@"
registries_expect_changes none export.yml --check -e phase=converge "$@"
registries_expect_changes some export.yml -e phase=resplit -e split_size=48K "$@"
