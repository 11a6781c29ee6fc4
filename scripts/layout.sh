#!/usr/bin/env bash
# Copy the collection into build/ansible_collections/airgap/hangar, where ansible-test and
# ANSIBLE_COLLECTIONS_PATH=build expect it. Safe to run again: only changes are copied.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sync_layout
log "collection copied to ${HANGAR_LAYOUT#"$HANGAR_REPO"/}"
