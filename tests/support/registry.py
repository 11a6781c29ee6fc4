# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real ``docker-registry`` (distribution 2.8.2) instances on loopback, one per test need.

Modes:

``plain``       HTTP, no auth.
``tls``         HTTPS with the test CA, no auth.
``basic``       HTTPS + htpasswd (bcrypt) Basic auth.
``basic-http``  htpasswd Basic auth over plain HTTP (distribution allows it).
``token``       HTTPS + Bearer JWTs from an in-process :class:`TokenServer`.
``mtls``        HTTPS that requires a client certificate signed by the test CA.

Users: ``hangar`` (pull, push, delete) and ``reader``, each with a random password. Only the
token mode can restrict ``reader`` to pull: htpasswd gives every valid user full access.

Access log: distribution 2.8.2 writes one Apache combined-format line per request to stdout
(``127.0.0.1 - - [date] "PUT /v2/<name>/manifests/<ref> HTTP/1.1" 201 0 "" "agent"``); its own
logrus messages go to stderr. Both streams land in ``log_path``; the parser keeps only the
combined-format lines. A line is written after the response has been sent, so reading the log
right after a request can miss it: :meth:`RegistryServer.access_log_lines` first sends a
marker request and waits for its line, which orders every earlier request before it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import requests
import yaml

from .certs import CertBundle, generate_certs, write_cert_dir
from .ports import LOOPBACK, free_port
from .token_server import REPOSITORY_ACTIONS, TokenServer, TokenUser

REGISTRY_BINARY = "docker-registry"
MODES = ("plain", "tls", "basic", "basic-http", "token", "mtls")
TLS_MODES = ("tls", "basic", "token", "mtls")
PASSWORD_MODES = ("basic", "basic-http", "token")
SERVICE = "airgap-hangar-registry"
ISSUER = "airgap-hangar-token-issuer"
PUSH_USER = "hangar"
READ_USER = "reader"

START_TIMEOUT = 20  # seconds until /v2/ must answer
STOP_TIMEOUT = 5  # seconds between SIGTERM and SIGKILL
SYNC_TIMEOUT = 5  # seconds to wait for the marker request's access-log line
PORT_ATTEMPTS = 3
WRITE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})
SYNC_PARAMETER = "hangar-harness-sync"

# One Apache combined-format line as gorilla/handlers writes it for distribution.
_ACCESS_LINE = re.compile(
    r"^(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<uri>\S+) (?P<protocol>[^"]*)" '
    r"(?P<status>\d{3}) (?P<size>\d+|-)"
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?'
)


class RegistryHarnessError(Exception):
    """A test registry could not be configured, started, queried or stopped."""


@dataclass(frozen=True)
class AccessEntry:
    """One request from the registry's access log."""

    method: str
    path: str
    query: str
    status: int
    size: int
    user_agent: str

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


def parse_access_line(line: str) -> AccessEntry | None:
    """Parse one combined-format access-log line; anything else gives ``None``."""
    match = _ACCESS_LINE.match(line)
    if match is None:
        return None
    path, unused_mark, query = match["uri"].partition("?")
    size = match["size"]
    return AccessEntry(
        method=match["method"],
        path=path,
        query=query,
        status=int(match["status"]),
        size=0 if size == "-" else int(size),
        user_agent=match["agent"] or "",
    )


def parse_access_log(text: str) -> list[AccessEntry]:
    """All requests in a registry log, skipping logrus lines and the harness's marker requests."""
    entries = []
    for line in text.splitlines():
        entry = parse_access_line(line)
        if entry is not None and SYNC_PARAMETER not in entry.query:
            entries.append(entry)
    return entries


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """Write an htpasswd file; distribution 2.8 reads bcrypt hashes only."""
    # Cost 4 is the bcrypt minimum: the registry checks the hash on every request.
    lines = [
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"
        for user, password in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_auth_file(path: Path, host: str, user: str | None, password: str | None) -> Path:
    """Write a containers auth.json (skopeo ``--authfile``) with one entry, or none."""
    auths = {}
    if user and password:
        auths[host] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    path.write_text(json.dumps({"auths": auths}))
    path.chmod(0o600)
    return path


def request_kwargs(
    ca_path: Path | None, client_cert: Path | None, client_key: Path | None
) -> dict[str, Any]:
    """``requests`` arguments that trust the test CA and present the client pair, if any."""
    kwargs: dict[str, Any] = {"timeout": 10}
    if ca_path:
        kwargs["verify"] = str(ca_path)
    if client_cert and client_key:
        kwargs["cert"] = (str(client_cert), str(client_key))
    return kwargs


def skopeo_args(prefix: str, auth_file: Path, cert_dir: Path | None) -> list[str]:
    """skopeo flags for one side of a copy (*prefix* ``src``/``dest``) or for inspect (``""``).

    An auth file is always passed, even an empty one, so credentials the user running the
    tests keeps in ``~/.docker`` or ``$XDG_RUNTIME_DIR`` never reach a test registry.
    """
    dash = f"--{prefix}-" if prefix else "--"
    args = [f"{dash}authfile={auth_file}"]
    if cert_dir is None:
        args.append(f"{dash}tls-verify=false")
    else:
        args.append(f"{dash}cert-dir={cert_dir}")
    return args


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class RegistryServer:
    """A ``docker-registry serve`` process in one of :data:`MODES`.

    Use as a context manager or call :meth:`start` and :meth:`stop`. Everything it writes
    (config, certificates, htpasswd, storage, log) lives in *workdir*, a new temporary directory
    removed on stop unless one was given.
    """

    def __init__(
        self,
        mode: str = "plain",
        *,
        workdir: Path | None = None,
        token_expires_in: int = 300,
        public_repos: str | None = None,
        oauth_post: bool = True,
        log_level: str = "info",
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        if mode not in MODES:
            raise RegistryHarnessError(f"registry mode {mode!r} is unknown; use one of {MODES}")
        self.mode = mode
        self._given_workdir = Path(workdir) if workdir else None
        self._token_options = {
            "expires_in": token_expires_in,
            "public_repos": public_repos,
            "oauth_post": oauth_post,
        }
        self._log_level = log_level
        self._extra_config = extra_config or {}
        self._passwords = {user: secrets.token_urlsafe(12) for user in (PUSH_USER, READ_USER)}
        self._process: subprocess.Popen | None = None
        self._log_stream: Any = None
        self.workdir: Path | None = None
        self.certs: CertBundle | None = None
        self.token_server: TokenServer | None = None
        self.port = 0

    # Addresses and credentials.

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.mode in TLS_MODES else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def ca_path(self) -> Path | None:
        return self.certs.ca_cert if self.certs and self.mode in TLS_MODES else None

    @property
    def client_cert(self) -> Path | None:
        return self.certs.client_cert if self.certs and self.mode == "mtls" else None

    @property
    def client_key(self) -> Path | None:
        return self.certs.client_key if self.certs and self.mode == "mtls" else None

    @property
    def username(self) -> str | None:
        return PUSH_USER if self.mode in PASSWORD_MODES else None

    @property
    def password(self) -> str | None:
        return self._passwords[PUSH_USER] if self.mode in PASSWORD_MODES else None

    @property
    def reader_username(self) -> str | None:
        return READ_USER if self.mode in PASSWORD_MODES else None

    @property
    def reader_password(self) -> str | None:
        return self._passwords[READ_USER] if self.mode in PASSWORD_MODES else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _path(self, name: str) -> Path:
        if self.workdir is None:
            raise RegistryHarnessError("the registry has no work directory yet; call start()")
        return self.workdir / name

    @property
    def log_path(self) -> Path:
        return self._path("registry.log")

    @property
    def config_path(self) -> Path:
        return self._path("config.yml")

    @property
    def data_dir(self) -> Path:
        return self._path("data")

    @property
    def cert_dir(self) -> Path | None:
        """A containers-certs.d style directory for skopeo ``--cert-dir`` (TLS modes)."""
        return self._path("cert-dir") if self.mode in TLS_MODES else None

    @property
    def auth_file(self) -> Path:
        """A containers auth.json holding the ``hangar`` credentials (empty without auth)."""
        return self._path("auth.json")

    def request_kwargs(self) -> dict[str, Any]:
        """``timeout``, ``verify`` and ``cert`` arguments for ``requests`` calls."""
        return request_kwargs(self.ca_path, self.client_cert, self.client_key)

    def skopeo_args(self, prefix: str = "") -> list[str]:
        """TLS and credential flags for skopeo; *prefix* is ``src``, ``dest`` or ``""``."""
        return skopeo_args(prefix, self.auth_file, self.cert_dir)

    def describe(self) -> dict[str, Any]:
        """Plain data about this registry for JSON/YAML state files."""
        return {
            "mode": self.mode,
            "registry": self.host,
            "url": self.url,
            "username": self.username,
            "password": self.password,
            "reader_username": self.reader_username,
            "reader_password": self.reader_password,
            "ca_path": str(self.ca_path) if self.ca_path else None,
            "client_cert": str(self.client_cert) if self.client_cert else None,
            "client_key": str(self.client_key) if self.client_key else None,
            "cert_dir": str(self.cert_dir) if self.cert_dir else None,
            "auth_file": str(self.auth_file),
            "log": str(self.log_path),
            "workdir": str(self.workdir),
            "registry_pid": self.pid,
            "token_realm": self.token_server.realm if self.token_server else None,
        }

    # Lifecycle.

    def start(self) -> RegistryServer:
        if self.running:
            return self
        if shutil.which(REGISTRY_BINARY) is None:
            raise RegistryHarnessError(
                f"{REGISTRY_BINARY} is not on PATH; install the Debian package docker-registry"
            )
        self.workdir = self._given_workdir or Path(tempfile.mkdtemp(prefix="hangar-registry-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._prepare_files()
            self._start_process()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the registry by PID (SIGTERM, then SIGKILL) and the token server."""
        if self._process is not None:
            terminate(self._process)
            self._process = None
        if self._log_stream is not None:
            self._log_stream.close()
            self._log_stream = None
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None
        if self._given_workdir is None and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _prepare_files(self) -> None:
        if self.mode in TLS_MODES:
            self.certs = generate_certs(self._path("certs"))
            write_cert_dir(self.certs, self._path("cert-dir"), client=self.mode == "mtls")
        if self.mode in ("basic", "basic-http"):
            write_htpasswd(self._path("htpasswd"), self._passwords)
        if self.mode == "token":
            self.token_server = self._make_token_server().start()

    def _make_token_server(self) -> TokenServer:
        assert self.certs is not None
        users = {
            PUSH_USER: TokenUser(self._passwords[PUSH_USER], REPOSITORY_ACTIONS, catalog=True),
            READ_USER: TokenUser(self._passwords[READ_USER], ("pull",)),
        }
        return TokenServer(
            signing_cert=self.certs.signing_cert,
            signing_key=self.certs.signing_key,
            tls_cert=self.certs.server_cert,
            tls_key=self.certs.server_key,
            service=SERVICE,
            issuer=ISSUER,
            users=users,
            record_path=self._path("token-requests.jsonl"),
            **self._token_options,
        )

    def _start_process(self) -> None:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.port = free_port()
            write_auth_file(self.auth_file, self.host, self.username, self.password)
            self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
            self._spawn()
            if self._wait_ready():
                return
            # Another process may take the port between our probe and the registry's bind.
            log = self.log_path.read_text(errors="replace")
            if "address already in use" not in log or attempt == PORT_ATTEMPTS:
                raise RegistryHarnessError(
                    f"docker-registry ({self.mode}) did not answer {self.url}/v2/ within "
                    f"{START_TIMEOUT} s; config {self.config_path}, log tail:\n{log[-2000:]}"
                )

    def config(self) -> dict[str, Any]:
        """The registry configuration (written to ``config.yml`` by :meth:`start`)."""
        http: dict[str, Any] = {"addr": self.host, "secret": secrets.token_hex(16)}
        if self.mode in TLS_MODES:
            assert self.certs is not None
            http["tls"] = {
                "certificate": str(self.certs.server_cert),
                "key": str(self.certs.server_key),
            }
            if self.mode == "mtls":
                http["tls"]["clientcas"] = [str(self.certs.ca_cert)]
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": self._log_level, "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        }
        auth = self._auth_config()
        if auth:
            config["auth"] = auth
        return _deep_merge(config, self._extra_config)

    def _auth_config(self) -> dict[str, Any]:
        if self.mode in ("basic", "basic-http"):
            return {"htpasswd": {"realm": "airgap.hangar", "path": str(self._path("htpasswd"))}}
        if self.mode == "token":
            assert self.token_server is not None and self.certs is not None
            return {
                "token": {
                    "realm": self.token_server.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(self.certs.ca_cert),
                }
            }
        return {}

    def _spawn(self) -> None:
        if self._log_stream is not None:
            self._log_stream.close()
        self._log_stream = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        # stdout carries the access log, stderr the registry's own messages: one file for both.
        self._process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_stream,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                return False
            try:
                answer = requests.get(f"{self.url}/v2/", **{**self.request_kwargs(), "timeout": 1})
            except requests.RequestException:
                time.sleep(0.05)
                continue
            # Another server may have won the port race; only a registry sends this header.
            return "Docker-Distribution-Api-Version" in answer.headers
        terminate(self._process)
        return False

    # Access log.

    def access_log_lines(self) -> list[AccessEntry]:
        """Every request the registry logged so far (marker requests excluded)."""
        if self.running:
            self._sync_log()
        return parse_access_log(self.log_path.read_text(errors="replace"))

    def log_mark(self) -> int:
        """A position in the access log, for :meth:`requests_since`."""
        return len(self.access_log_lines())

    def requests_since(self, mark: int) -> list[AccessEntry]:
        """Requests logged after :meth:`log_mark` returned *mark*."""
        return self.access_log_lines()[mark:]

    def _sync_log(self) -> None:
        token = secrets.token_hex(8)
        url = f"{self.url}/v2/?{SYNC_PARAMETER}={token}"
        try:
            requests.get(url, **self.request_kwargs())
        except requests.RequestException as exc:
            raise RegistryHarnessError(f"marker request to {url} failed: {exc}") from exc

        deadline = time.monotonic() + SYNC_TIMEOUT
        while time.monotonic() < deadline:
            if token in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.01)
        raise RegistryHarnessError(
            f"the access log {self.log_path} never showed marker request {url}; "
            "is log.accesslog.disabled set in extra_config?"
        )


@dataclass(frozen=True)
class AttachedRegistry:
    """A registry started by another process (the CLI), rebuilt from its state file."""

    mode: str
    host: str
    url: str
    auth_file: Path
    log_path: Path
    cert_dir: Path | None = None
    ca_path: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    username: str | None = None
    password: str | None = None
    reader_username: str | None = None
    reader_password: str | None = None

    @classmethod
    def load(cls, state_file: Path) -> AttachedRegistry:
        """Read ``<state-dir>/<name>.json`` as written by ``python -m tests.support start``."""
        try:
            state = json.loads(Path(state_file).read_text())
        except (OSError, ValueError) as exc:
            raise RegistryHarnessError(
                f"cannot read registry state {state_file}: {exc}; was 'start' run for it?"
            ) from exc

        def path(key: str) -> Path | None:
            return Path(state[key]) if state.get(key) else None

        return cls(
            mode=state["mode"],
            host=state["registry"],
            url=state["url"],
            auth_file=Path(state["auth_file"]),
            log_path=Path(state["log"]),
            cert_dir=path("cert_dir"),
            ca_path=path("ca_path"),
            client_cert=path("client_cert"),
            client_key=path("client_key"),
            username=state.get("username"),
            password=state.get("password"),
            reader_username=state.get("reader_username"),
            reader_password=state.get("reader_password"),
        )

    def request_kwargs(self) -> dict[str, Any]:
        return request_kwargs(self.ca_path, self.client_cert, self.client_key)

    def skopeo_args(self, prefix: str = "") -> list[str]:
        return skopeo_args(prefix, self.auth_file, self.cert_dir)

    def access_log_lines(self) -> list[AccessEntry]:
        """Requests logged so far; without the marker request, the last ones may be missing."""
        return parse_access_log(self.log_path.read_text(errors="replace"))


def terminate(process: subprocess.Popen | None, timeout: float = STOP_TIMEOUT) -> None:
    """Stop a child process: SIGTERM, wait *timeout* seconds, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def pid_alive(pid: int) -> bool:
    """Tell whether *pid* is a live process (zombies count as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"
