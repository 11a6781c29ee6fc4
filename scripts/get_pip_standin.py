# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the get-pip script that ansible-test runs in each virtualenv it creates.

ansible-test creates its virtualenvs without pip, then downloads get-pip.py from its own CI file
server to bootstrap one. Where only PyPI is reachable that download fails, but ansible-test
first looks for a cached copy in ~/.ansible/test/cache/get_pip_<version>.py. scripts/setup.sh
puts this file there. It runs with ansible-test's pip arguments (options plus pinned packages),
bootstraps pip from the wheel bundled with Python (ensurepip, no network), then lets that pip
install the requested packages from PyPI.
"""

from __future__ import annotations

import subprocess
import sys

# Flags that get-pip understands but pip install does not.
GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}


def pip_install_arguments(argv: list[str]) -> list[str]:
    """Return the arguments for pip install, without the get-pip-only flags."""
    return [arg for arg in argv if arg not in GET_PIP_ONLY_FLAGS]


def bootstrap(argv: list[str]) -> None:
    """Install the bundled pip, then the packages ansible-test asked for."""
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])

    command = [sys.executable, "-m", "pip", "install", *pip_install_arguments(argv)]
    subprocess.check_call(command)

    # ensurepip of older Pythons adds setuptools, which ansible-test keeps out of its venvs.
    if "--no-setuptools" in argv:
        remove = [sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"]
        subprocess.call(remove, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    bootstrap(sys.argv[1:])
