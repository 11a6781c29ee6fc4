# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS settings of one registry host: CA bundle, client certificate, certs.d directories.

The containers ``certs.d`` convention keeps one directory per ``host[:port]``: ``*.crt`` files are
extra certificate authorities, ``*.cert`` with a ``*.key`` of the same base name is a client pair.
"""

from __future__ import annotations

import glob
import os
import tempfile
import shutil
import threading
import weakref
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError

CERTS_D_SEARCH = (
    "~/.config/containers/certs.d",
    "/etc/containers/certs.d",
    "/etc/docker/certs.d",
)

Verify = Union[bool, str]
ClientPair = Optional[Tuple[str, str]]


class TlsConfigError(HangarError):
    """A certificate file or directory given by the user cannot be used."""


@dataclass(frozen=True)
class TlsSettings:
    validate_certs: bool = True
    ca_path: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    certs_dir: Optional[str] = None


@dataclass(frozen=True)
class HostTls:
    """What requests needs for one host: ``verify`` and ``cert`` arguments."""

    verify: Verify
    cert: ClientPair
    ca_files: Tuple[str, ...] = ()


def certs_d_directories(host: str, certs_dir: Optional[str]) -> list:
    """Directories that may hold certificates for ``host``, most specific first."""
    bases = [certs_dir] if certs_dir else list(CERTS_D_SEARCH)
    found = []
    for base in bases:
        path = os.path.join(os.path.expanduser(base), host)
        if os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK):
            found.append(path)
    return found


def client_pair_in(directory: str) -> ClientPair:
    """The ``*.cert``/``*.key`` pair of a certs.d directory, refusing half pairs."""
    certs = sorted(glob.glob(os.path.join(directory, "*.cert")))
    keys = sorted(glob.glob(os.path.join(directory, "*.key")))
    for cert in certs:
        key = cert[: -len(".cert")] + ".key"
        if key not in keys:
            raise TlsConfigError(
                f"missing key {os.path.basename(key)} for client certificate {cert}. "
                "Note that CA certificates should use the extension .crt"
            )
    for key in keys:
        cert = key[: -len(".key")] + ".cert"
        if cert not in certs:
            raise TlsConfigError(
                f"missing client certificate {os.path.basename(cert)} for key {key}")
    if certs:
        return certs[0], certs[0][: -len(".cert")] + ".key"
    return None


def _check_readable(path: str, option: str) -> str:
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise TlsConfigError(f"{option} {path!r} is not a readable file")
    return path


class CaBundles:
    """Builds one CA bundle per set of extra CA files: the default bundle plus those files.

    requests' ``verify=<path>`` replaces the default trust store, while certs.d adds to it,
    so the extra certificates are appended to a copy of the default bundle.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bundles: dict = {}
        self._dir: Optional[str] = None

    def bundle_for(self, ca_files: Tuple[str, ...]) -> str:
        with self._lock:
            if ca_files not in self._bundles:
                self._bundles[ca_files] = self._write_bundle(ca_files)
            return self._bundles[ca_files]

    def _write_bundle(self, ca_files: Tuple[str, ...]) -> str:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="hangar-ca-")
            # Clients that are never closed must not leave bundles behind either.
            weakref.finalize(self, shutil.rmtree, self._dir, True)
        fd, path = tempfile.mkstemp(suffix=".pem", dir=self._dir)
        with os.fdopen(fd, "wb") as bundle:
            for ca_file in (default_ca_bundle(),) + ca_files:
                if ca_file:
                    with open(ca_file, "rb") as source:
                        bundle.write(source.read().rstrip(b"\n") + b"\n")
        return path

    def cleanup(self) -> None:
        with self._lock:
            for path in self._bundles.values():
                _remove_quietly(path)
            if self._dir:
                _remove_quietly(self._dir, directory=True)
            self._bundles.clear()


def default_ca_bundle() -> Optional[str]:
    """The bundle requests would use on its own (certifi's, or the system's)."""
    try:
        from requests.utils import DEFAULT_CA_BUNDLE_PATH  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    return DEFAULT_CA_BUNDLE_PATH if os.path.isfile(DEFAULT_CA_BUNDLE_PATH) else None


def _remove_quietly(path: str, directory: bool = False) -> None:
    try:
        if directory:
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError:
        pass


def resolve_host_tls(settings: TlsSettings, host: str, bundles: CaBundles) -> HostTls:
    """Combine the module options with the certs.d directories of ``host``."""
    cert: ClientPair = None
    if settings.client_cert or settings.client_key:
        if not (settings.client_cert and settings.client_key):
            raise TlsConfigError("client_cert and client_key must be given together")
        cert = (
            _check_readable(settings.client_cert, "client_cert"),
            _check_readable(settings.client_key, "client_key"),
        )

    ca_files = []
    if settings.ca_path:
        ca_files.append(_check_readable(settings.ca_path, "ca_path"))
    for directory in certs_d_directories(host, settings.certs_dir):
        ca_files.extend(sorted(glob.glob(os.path.join(directory, "*.crt"))))
        if cert is None:
            cert = client_pair_in(directory)

    if not settings.validate_certs:
        return HostTls(verify=False, cert=cert, ca_files=tuple(ca_files))
    if not ca_files:
        return HostTls(verify=True, cert=cert)
    return HostTls(verify=bundles.bundle_for(tuple(ca_files)), cert=cert, ca_files=tuple(ca_files))
