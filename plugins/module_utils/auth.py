# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry authentication: challenges, scopes and the Bearer token cache.

A registry answers 401 with ``WWW-Authenticate``. For ``Basic`` the credentials go on every request;
for ``Bearer`` a token for the needed scopes is fetched from the realm, cached until shortly before
it expires, and fetched again with wider scopes when the registry says ``insufficient_scope``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Optional, Tuple
from urllib.parse import urlencode, urlparse

from ansible_collections.airgap.hangar.plugins.module_utils.credentials import Credentials
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.transport import (
    HttpClient,
    error_text,
    read_capped,
)

TOKEN_BODY_LIMIT = 1 << 20

# Tokens without expires_in live 60 s by the token spec; renew a little early so a request in
# flight does not carry a token that expires on the way.
DEFAULT_TOKEN_LIFETIME = 60
EXPIRY_MARGIN = 10

CHALLENGE_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')

Scopes = FrozenSet[str]
SecretSink = Callable[[str], None]


class AuthError(HangarError):
    """The registry or its token service refused the credentials."""


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: Dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def error(self) -> str:
        return self.params.get("error", "")

    @property
    def scopes(self) -> Scopes:
        return frozenset(self.params.get("scope", "").split()) if "scope" in self.params \
            else frozenset()


def parse_challenge(header: str) -> Optional[Challenge]:
    """Parse ``Bearer realm="...",service="..."``; None when the header is empty."""
    header = (header or "").strip()
    if not header:
        return None
    scheme, _space, rest = header.partition(" ")
    params = {}
    for match in CHALLENGE_PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = value.replace('\\"', '"')
    return Challenge(scheme.lower(), params)


def repository_scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


def merge_scopes(held: Scopes, wanted: Scopes) -> Scopes:
    """Union of scopes, merging the actions of scopes on the same resource."""
    actions: Dict[Tuple[str, str], set] = {}
    for scope in held | wanted:
        kind, name, acts = split_scope(scope)
        actions.setdefault((kind, name), set()).update(acts.split(","))
    return frozenset(
        f"{kind}:{name}:{','.join(sorted(acts))}" for (kind, name), acts in actions.items()
    )


def split_scope(scope: str) -> Tuple[str, str, str]:
    """Split ``type:name:actions``; the name may contain ``host:port``, so split from the right."""
    head, _colon, acts = scope.rpartition(":")
    kind, _colon, name = head.partition(":")
    return kind, name, acts


def basic_header(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode("utf-8")
    return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass
class Token:
    value: str
    expires_at: float

    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at


class TokenCache:
    """Bearer tokens by scope set, shared by the worker threads of one registry client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: Dict[Scopes, Token] = {}

    def get(self, scopes: Scopes) -> Optional[str]:
        with self._lock:
            for held, token in self._tokens.items():
                if token.fresh() and merge_scopes(held, scopes) == held:
                    return token.value
        return None

    def put(self, scopes: Scopes, token: Token) -> None:
        with self._lock:
            self._tokens[scopes] = token

    def drop(self, scopes: Scopes) -> None:
        with self._lock:
            self._tokens.pop(scopes, None)


class Authenticator:
    """Turns a challenge and the needed scopes into an ``Authorization`` header value."""

    def __init__(self, registry: str, http: HttpClient, credentials: Credentials,
                 secret_sink: Optional[SecretSink] = None) -> None:
        self.registry = registry
        self.http = http
        self.credentials = credentials
        self.challenge: Optional[Challenge] = None
        self.tokens = TokenCache()
        self._sink = secret_sink or (lambda value: None)
        self._fetch_lock = threading.Lock()

    def header(self, scopes: Scopes) -> Optional[str]:
        """The header for a request needing ``scopes``, or None when the registry is open."""
        if self.challenge is None:
            return None
        if self.challenge.scheme == "basic":
            return None if self.credentials.anonymous else basic_header(self.credentials)
        if self.challenge.scheme != "bearer":
            raise AuthError(
                f"{self.registry} asks for {self.challenge.scheme} authentication, which is not "
                "supported (only Basic and Bearer are)")
        cached = self.tokens.get(scopes)
        if cached:
            return "Bearer " + cached
        with self._fetch_lock:
            cached = self.tokens.get(scopes)
            return "Bearer " + (cached or self._fetch_token(scopes))

    def forget(self, scopes: Scopes) -> None:
        self.tokens.drop(scopes)

    def _fetch_token(self, scopes: Scopes) -> str:
        realm = self.challenge.realm if self.challenge else ""
        if not realm or urlparse(realm).scheme not in ("http", "https"):
            raise AuthError(f"{self.registry} sent a Bearer challenge without a usable realm")
        query = [("service", self.challenge.params.get("service", ""))] if \
            self.challenge.params.get("service") else []
        # Some token servers read only the first scope, so the repository scope goes first.
        query += [("scope", scope) for scope in sorted(scopes, key=_scope_order)]
        response = self._request_token(realm, query, scopes)
        return self._store_token(response, scopes, realm)

    def _request_token(self, realm: str, query: list, scopes: Scopes):
        if self.credentials.identity_token:
            form = dict(query[:1], grant_type="refresh_token", client_id="airgap.hangar",
                        refresh_token=self.credentials.identity_token,
                        scope=" ".join(sorted(scopes)))
            return self.http.request(
                "POST", realm, data=urlencode(form).encode(), replayable=True,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
        headers = {}
        if not self.credentials.anonymous:
            headers["Authorization"] = basic_header(self.credentials)
        separator = "&" if "?" in realm else "?"
        return self.http.request("GET", realm + separator + urlencode(query), headers=headers)

    def _store_token(self, response, scopes: Scopes, realm: str) -> str:
        host = urlparse(realm).netloc
        if response.status_code in (401, 403):
            detail = error_text(response)[:200]
            raise AuthError(
                f"authentication required: the token service {host} of {self.registry} refused "
                f"the credentials from {self.credentials.source} ({response.status_code}"
                f"{': ' + detail.strip() if detail.strip() else ''}). Check the username and "
                "password or the auth file")
        if response.status_code != 200:
            raise AuthError(
                f"the token service {host} of {self.registry} answered {response.status_code} "
                f"{response.reason}")
        try:
            body = json.loads(read_capped(response, TOKEN_BODY_LIMIT, "token response"))
            value = body.get("token") or body.get("access_token")
            lifetime = int(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError) as exc:
            raise AuthError(f"the token service {host} sent an unreadable answer") from exc
        if not value:
            raise AuthError(f"the token service {host} sent no token")
        self._sink(value)
        expires = time.monotonic() + lifetime - min(EXPIRY_MARGIN, lifetime / 4)
        self.tokens.put(scopes, Token(value, expires))
        return value


def _scope_order(scope: str) -> Tuple[int, str]:
    return (0 if ",push" in scope or "push," in scope else 1, scope)
