# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Free loopback ports for the test servers, never the same one twice in a process."""

from __future__ import annotations

import socket
import threading

LOOPBACK = "127.0.0.1"

# Other registries may already listen on well-known ports (5000, 5001, ...) on a shared
# machine, so every server gets a port the kernel says is free right now.
_HANDED_OUT: set[int] = set()
_LOCK = threading.Lock()
_ATTEMPTS = 50


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def is_bindable(port: int) -> bool:
    """Tell whether a TCP listener could bind ``127.0.0.1:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a bindable loopback port that this process has not handed out before."""
    with _LOCK:
        for unused_attempt in range(_ATTEMPTS):
            port = _kernel_port()
            if port not in _HANDED_OUT and is_bindable(port):
                _HANDED_OUT.add(port)
                return port
    raise OSError(f"no free TCP port on {LOOPBACK} after {_ATTEMPTS} attempts")
