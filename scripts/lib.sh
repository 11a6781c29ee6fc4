# Shared helpers for the airgap.hangar developer scripts; source it, do not run it.
# shellcheck shell=bash

HANGAR_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HANGAR_VENV="${HANGAR_VENV:-$HANGAR_REPO/.venv}"

# ansible-test only accepts a collection that sits at ansible_collections/<namespace>/<name>.
HANGAR_BUILD="$HANGAR_REPO/build"
HANGAR_LAYOUT="$HANGAR_BUILD/ansible_collections/airgap/hangar"

export HANGAR_REPO HANGAR_VENV HANGAR_BUILD HANGAR_LAYOUT


log() {
    printf '==> %s\n' "$*"
}


die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}


# Run a command as root: directly when we are root (CI), through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "'$*' needs root and sudo is not installed; run it as root, then retry."
    fi
}


# Print the working-tree files that belong to the collection, NUL-separated and relative to the
# repository root: tracked and untracked-but-not-ignored files that exist. Outside a git checkout
# (an unpacked tarball) every file except the generated directories counts.
collection_files() {
    if git -C "$HANGAR_REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$HANGAR_REPO" ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' path; do
                # A deleted file stays in git's index until it is committed.
                if [ -e "$HANGAR_REPO/$path" ] || [ -L "$HANGAR_REPO/$path" ]; then
                    printf '%s\0' "$path"
                fi
            done
    else
        (cd "$HANGAR_REPO" && find . \( -name .git -o -name .venv -o -name build \) -prune \
            -o \( -type f -o -type l \) -printf '%P\0')
    fi
}


# Print rsync filter rules (NUL-separated) that include each collection file and every directory
# above it, then exclude the rest. Wildcard characters in file names are escaped so that a file
# named like a pattern matches only itself.
layout_filter() {
    local path dir

    collection_files | while IFS= read -r -d '' path; do
        case "$path" in
            .git/* | .venv/* | build/*) continue ;;
        esac

        dir="$(dirname "$path")"
        while [ "$dir" != "." ]; do
            printf '+ /%s/\0' "$(escape_rsync_pattern "$dir")"
            dir="$(dirname "$dir")"
        done

        printf '+ /%s\0' "$(escape_rsync_pattern "$path")"
    done | sort -zu

    printf -- '- *\0'
}


escape_rsync_pattern() {
    printf '%s' "$1" | sed -e 's/[][*?\\]/\\&/g'
}


# Copy the collection into build/ansible_collections/airgap/hangar. It is a real copy, not a
# symlink, because ansible-test resolves symlinks and then no longer sees the required path.
# --delete-excluded removes files that were deleted or became ignored since the last copy, while
# the filter keeps ansible-test's own tests/output inside the copy out of reach of the deletion.
sync_layout() {
    command -v rsync >/dev/null 2>&1 || die "rsync is missing; run scripts/setup.sh first."

    mkdir -p "$HANGAR_LAYOUT"

    layout_filter > "$HANGAR_BUILD/.layout-filter"
    rsync -a --delete --delete-excluded --from0 \
        --filter='P /tests/output/' \
        --filter="merge $HANGAR_BUILD/.layout-filter" \
        "$HANGAR_REPO/" "$HANGAR_LAYOUT/"
    rm -f "$HANGAR_BUILD/.layout-filter"
}


activate_venv() {
    [ -x "$HANGAR_VENV/bin/python" ] || die "no virtualenv at $HANGAR_VENV; run scripts/setup.sh."

    # shellcheck disable=SC1091
    . "$HANGAR_VENV/bin/activate"
}
