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

# shellcheck disable=SC2034  # read by registries_expect_changes
COMMON=(-i "$INVENTORY" "${REGISTRIES_VARS[@]}" -e "images_file=$PWD/files/images.txt")


registries_expect_changes some mirror.yml --check -e phase=check_fresh "$@"
registries_expect_changes some mirror.yml -e phase=converge "$@"
registries_expect_changes none mirror.yml -e phase=again "$@"
registries_expect_changes none mirror.yml --check -e phase=again "$@"
