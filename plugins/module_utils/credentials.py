# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry credentials: module options, auth files and Docker credential helpers.

Search order: the module's username/password, then ``auth_file``, then the containers and Docker
default files. Every secret found is handed to ``secret_sink`` (the module's ``no_log_values``)
before it is used, and never appears in a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError

DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"

# An auth file is a small JSON document; anything bigger is not one.
AUTH_FILE_LIMIT = 1 << 20

HELPER_TIMEOUT = 30

SecretSink = Callable[[str], None]


class CredentialsError(HangarError):
    """An auth file or credential helper the user configured cannot be used."""


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = "module options"

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.identity_token)


ANONYMOUS = Credentials(source="no credentials")


def normalize_auth_key(key: str) -> str:
    """Reduce an auths key (``https://host/v1/``, ``host/ns``) to its host[/path] form."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix):]
            key = key.split("/", 1)[0]
            break
    key = key.rstrip("/")
    host, unused_slash, path = key.partition("/")
    if host in DOCKER_HUB_KEYS:
        host = "docker.io"
    return f"{host}/{path}" if path else host


def default_auth_files() -> List[str]:
    """The standard locations, in the order containers tools search them."""
    files = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        files.append(os.path.join(runtime, "containers", "auth.json"))
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    files.append(os.path.join(config_home, "containers", "auth.json"))
    docker_config = os.environ.get("DOCKER_CONFIG")
    if docker_config:
        files.append(os.path.join(docker_config, "config.json"))
    else:
        files.append(os.path.expanduser("~/.docker/config.json"))
    return files


def load_auth_file(path: str) -> dict:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(AUTH_FILE_LIMIT + 1)
    except OSError as exc:
        raise CredentialsError(f"cannot read auth file {path}: {exc.strerror}") from exc
    if len(raw) > AUTH_FILE_LIMIT:
        raise CredentialsError(f"auth file {path} is larger than 1 MiB; it is not an auth file")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        # The content may hold secrets, so the parser's excerpt is not repeated here.
        raise CredentialsError(f"auth file {path} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise CredentialsError(f"auth file {path} does not hold a JSON object")
    return document


class CredentialStore:
    """Finds the credentials for a registry (and repository) the way containers tools do."""

    def __init__(self, *, username: Optional[str] = None, password: Optional[str] = None,
                 auth_file: Optional[str] = None, secret_sink: Optional[SecretSink] = None,
                 search_defaults: bool = True) -> None:
        self.username = username
        self.password = password
        self.auth_file = auth_file
        self.search_defaults = search_defaults
        self._sink = secret_sink or (lambda value: None)

    def describe_sources(self) -> str:
        """Where credentials were looked for, for 'authentication required' messages."""
        if self.username:
            return "username/password options"
        files = ([self.auth_file] if self.auth_file else []) + (
            default_auth_files() if self.search_defaults else [])
        return "auth files " + ", ".join(files) if files else "no credential source"

    def lookup(self, registry: str, repository: str = "") -> Credentials:
        if self.username:
            self._sink(self.password or "")
            return Credentials(self.username, self.password or "", source="module options")
        if self.password:
            raise CredentialsError(f"a password was given for {registry} without a username")
        for path in self._files():
            found = self._lookup_in_file(path, registry, repository)
            if found is not None:
                return found
        return ANONYMOUS

    def _files(self) -> List[str]:
        files = []
        if self.auth_file:
            if not os.path.exists(self.auth_file):
                raise CredentialsError(f"auth file {self.auth_file} does not exist")
            files.append(self.auth_file)
        if self.search_defaults:
            files.extend(path for path in default_auth_files() if os.path.isfile(path))
        return files

    def _lookup_in_file(self, path: str, registry: str, repository: str) -> Optional[Credentials]:
        document = load_auth_file(path)
        host = normalize_auth_key(registry)
        helper = (document.get("credHelpers") or {}).get(_helper_key(document, host))
        if helper:
            return self._from_helper(helper, registry, path)
        entry = _auths_entry(document.get("auths") or {}, host, repository)
        if entry is not None:
            return self._decode_entry(entry, path, host)
        if document.get("credsStore"):
            return self._from_helper(document["credsStore"], registry, path)
        return None

    def _decode_entry(self, entry: dict, path: str, host: str) -> Optional[Credentials]:
        source = f"auth file {path}"
        token = entry.get("identitytoken") or ""
        if token:
            self._sink(token)
        encoded = entry.get("auth") or ""
        if not encoded:
            return Credentials(identity_token=token, source=source) if token else None
        try:
            decoded = base64.b64decode(encoded, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise CredentialsError(f"the auth entry for {host} in {path} is not base64") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            # The decoded value is a secret, so say what is wrong without showing it.
            raise CredentialsError(
                f"the auth entry for {host} in {path} is malformed: it must encode user:password")
        password = password.rstrip("\x00")
        self._sink(password)
        self._sink(encoded)
        return Credentials(username, password, token, source=source)

    def _from_helper(self, helper: str, registry: str, path: str) -> Optional[Credentials]:
        program = f"docker-credential-{helper}"
        server = DOCKER_HUB_AUTH_KEY if normalize_auth_key(registry) == "docker.io" else registry
        try:
            result = subprocess.run(
                [program, "get"], input=server.encode(), capture_output=True,
                timeout=HELPER_TIMEOUT, check=False,
            )
        except FileNotFoundError as exc:
            raise CredentialsError(
                f"credential helper {program} (configured in {path} for {registry}) is not "
                "installed or not in PATH") from exc
        except subprocess.TimeoutExpired as exc:
            raise CredentialsError(
                f"credential helper {program} did not answer within {HELPER_TIMEOUT} s") from exc
        if result.returncode != 0:
            if b"not found" in result.stdout.lower() or b"not found" in result.stderr.lower():
                return None
            raise CredentialsError(
                f"credential helper {program} failed for {registry} (exit {result.returncode})")
        return self._decode_helper_output(result.stdout, program)

    def _decode_helper_output(self, output: bytes, program: str) -> Credentials:
        try:
            answer = json.loads(output.decode("utf-8"))
            username, secret = answer.get("Username", ""), answer.get("Secret", "")
        except (UnicodeDecodeError, ValueError, AttributeError) as exc:
            raise CredentialsError(
                f"credential helper {program} gave an unreadable answer") from exc
        self._sink(secret)
        source = f"credential helper {program}"
        if username == "<token>":
            return Credentials(identity_token=secret, source=source)
        return Credentials(username, secret, source=source)


def _helper_key(document: dict, host: str) -> str:
    """credHelpers keys are plain hosts; Docker Hub's may be spelled several ways."""
    helpers = document.get("credHelpers") or {}
    for key in helpers:
        if normalize_auth_key(key) == host:
            return key
    return host


def _auths_entry(auths: dict, host: str, repository: str) -> Optional[dict]:
    """The most specific auths entry: host/namespace/repo first, then shorter, then host."""
    normalized = {normalize_auth_key(key): value for key, value in auths.items()}
    candidates = []
    parts = repository.split("/") if repository else []
    for length in range(len(parts), 0, -1):
        candidates.append(host + "/" + "/".join(parts[:length]))
    candidates.append(host)
    for key in candidates:
        entry = normalized.get(key)
        if isinstance(entry, dict):
            return entry
    return None
