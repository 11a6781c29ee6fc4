#!/usr/bin/env bash
# Prepare this machine to develop and test airgap.hangar (Debian or Ubuntu). Safe to run again:
# each step checks first and says whether it did anything.
#
#   1. Debian packages: docker-registry, skopeo and unzip for the tests, Go to read archives
#      as Hangar does, rsync for scripts/layout.sh, ShellCheck, without which ansible-test
#      sanity skips its shell script test, and Chromium to render the roles' HTML reports
#      where the distribution packages it (Debian does; Ubuntu has only a snap wrapper, and
#      the tests skip the render there).
#   2. A virtualenv at $HANGAR_VENV (default .venv) with tests/requirements.txt, reinstalled only
#      when that file changes.
#   3. The pip bootstrap that ansible-test needs where only PyPI is reachable.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBIAN_PACKAGES=(docker-registry skopeo rsync shellcheck unzip golang-go)
OPTIONAL_PACKAGES=(chromium)
REQUIREMENTS="$HANGAR_REPO/tests/requirements.txt"
STAMP="$HANGAR_VENV/.requirements.sha256"


install_debian_packages() {
    local missing=() optional=() package

    for package in "${DEBIAN_PACKAGES[@]}"; do
        is_installed "$package" || missing+=("$package")
    done
    for package in "${OPTIONAL_PACKAGES[@]}"; do
        is_installed "$package" || optional+=("$package")
    done

    if [ "${#missing[@]}" -eq 0 ] && [ "${#optional[@]}" -eq 0 ]; then
        log "Debian packages present: ${DEBIAN_PACKAGES[*]} ${OPTIONAL_PACKAGES[*]}"
        return
    fi

    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found; install ${missing[*]} ${optional[*]} with your package manager."

    # Refresh the package lists only when something required is missing, so a machine without
    # an optional package does not update them on every run.
    if [ "${#missing[@]}" -gt 0 ]; then
        as_root apt-get update -qq
    fi
    for package in "${optional[@]}"; do
        if apt-cache show "$package" >/dev/null 2>&1; then
            missing+=("$package")
        else
            log "optional package $package is not packaged here; its tests are skipped"
        fi
    done
    [ "${#missing[@]}" -gt 0 ] || return 0

    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}


is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}


# Python 3.11 or newer: ansible-core 2.19 needs it on the controller.
find_python() {
    local candidate

    for candidate in "${HANGAR_PYTHON:-}" python3 python3.13 python3.12 python3.11; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done

    die "no Python 3.11+ found; install python3 (3.11 or newer) or set HANGAR_PYTHON."
}


create_venv() {
    local wanted

    wanted="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"

    if [ -x "$HANGAR_VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$wanted" ]; then
        log "virtualenv up to date: $HANGAR_VENV"
        return
    fi

    if [ ! -x "$HANGAR_VENV/bin/python" ]; then
        log "creating virtualenv: $HANGAR_VENV"
        "$(find_python)" -m venv "$HANGAR_VENV" \
            || die "python -m venv failed; on Debian install python3-venv, then retry."
    fi

    log "installing tests/requirements.txt into $HANGAR_VENV"
    "$HANGAR_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$REQUIREMENTS"
    printf '%s\n' "$wanted" > "$STAMP"
}


# ansible-test fetches get-pip.py from its own file server, which is unreachable where only PyPI
# is; it uses a cached copy when one exists, so put our stand-in there (see the script).
install_pip_bootstrap() {
    local version cache

    # The pip version is ansible-test's own choice, asked from its (internal) code.
    if ! version="$("$HANGAR_VENV/bin/python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3"))["pip"])' 2>/dev/null)"; then
        log "warning: cannot tell which pip ansible-test bootstraps; its sanity tests may fail" \
            "to create virtualenvs where only PyPI is reachable"
        return
    fi
    cache="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"

    if [ -f "$cache" ] && ! grep -q 'Stand-in for the get-pip script' "$cache"; then
        log "ansible-test pip bootstrap present: $cache"
        return
    fi

    if cmp -s "$HANGAR_REPO/scripts/get_pip_standin.py" "$cache"; then
        log "ansible-test pip bootstrap up to date: $cache"
        return
    fi

    mkdir -p "$(dirname "$cache")"
    cp "$HANGAR_REPO/scripts/get_pip_standin.py" "$cache"
    log "installed ansible-test pip $version bootstrap: $cache"
}


main() {
    install_debian_packages
    create_venv
    install_pip_bootstrap
    log "setup done; activate with: . ${HANGAR_VENV}/bin/activate"
}


main "$@"
