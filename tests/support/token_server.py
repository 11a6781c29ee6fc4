# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Docker token server for tests: threaded, stdlib HTTP(S), in-process.

Endpoints (the realm is ``<url>/token``):

``GET /token?service=<s>&scope=<s1>&scope=<s2>[&offline_token=true]``
    Docker token protocol. Optional Basic credentials; wrong ones get 401. Anonymous callers
    get a token without access, or with ``pull`` on repositories matching ``public_repos``.
    With ``offline_token=true`` and credentials the answer also carries a ``refresh_token``.
``POST /token`` (form: ``grant_type=password|refresh_token``, ``service``, ``client_id``,
``scope`` space-separated, ``username``/``password`` or ``refresh_token``, ``access_type``)
    The OAuth2 variant. Implemented by default so clients that prefer it can be tested; with
    ``oauth_post=False`` it answers 404, which makes clients such as go-containerregistry fall
    back to GET. Missing ``client_id`` or an unknown ``grant_type`` get 400.

The granted ``access`` claim is the intersection of the requested scopes and the user's
rights. Tokens are ES256 JWTs with an ``x5c`` header holding the signing certificate; the
registry verifies that chain against ``auth.token.rootcertbundle`` (the test CA). A ``kid``
header was tried too: distribution 2.8.2 only trusts key IDs of the certificates in the bundle
itself, so it rejects a leaf's key ID ("token signed by untrusted key").

Expiry: distribution 2.8.2 allows 60 seconds of leeway on ``exp`` and ``nbf``. A token with
``expires_in=1`` is therefore accepted for about a minute; set ``expires_in`` to -61 or lower
to hand out tokens the registry rejects at once.

Every request is recorded (method, grant, user, scopes asked and granted, status) for
assertions, optionally also as JSON lines in ``record_path``. Passwords and tokens are never
recorded or logged.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .ports import LOOPBACK, free_port

DEFAULT_EXPIRES_IN = 300  # seconds
REGISTRY_LEEWAY = 60  # seconds distribution 2.8.2 adds to exp and subtracts from nbf
MAX_FORM_BYTES = 64 * 1024
SOCKET_TIMEOUT = 10  # seconds a client may stay silent before its thread gives up
REPOSITORY_ACTIONS = ("pull", "push", "delete", "*")


class TokenServerError(Exception):
    """The token server could not start or was asked for something it cannot do."""


@dataclass(frozen=True)
class TokenUser:
    """A user of the token server and what it may do on every repository."""

    password: str
    actions: tuple[str, ...] = ("pull",)
    catalog: bool = False


@dataclass(frozen=True)
class Scope:
    """A parsed ``type:name:action[,action]`` scope."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        # Names may hold ':' (a registry host with a port), so type and actions are split off
        # the ends and the rest is the name.
        kind, unused_colon, rest = text.partition(":")
        name, unused_colon, actions = rest.rpartition(":")
        if not kind or not name:
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def claim(self, actions: tuple[str, ...]) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(actions)}


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered, without secrets."""

    method: str
    grant_type: str
    user: str | None
    service: str
    scopes: list[str]
    granted: list[dict[str, Any]]
    status: int
    offline: bool = False
    client_id: str = ""


@dataclass
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Signer:
    """Signs JWTs with ES256 and names its certificate in the ``x5c`` header."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TokenServerError(f"signing key {key_path} is not an EC P-256 key; use certs.py")
        self._key = key
        der = cert.public_bytes(serialization.Encoding.DER)
        self._header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = _b64url(json.dumps(self._header).encode()) + "."
        signing_input += _b64url(json.dumps(claims).encode())
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS wants the raw 64-byte r||s form, not the DER sequence cryptography returns.
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        self.request.settimeout(SOCKET_TIMEOUT)
        # The TLS handshake runs here, in the request thread, so a stuck client cannot block
        # the accept loop.
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet: the access log is the request record, and it never holds secrets."""

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            self._send(_Answer(404, {"errors": [{"code": "NOT_FOUND", "message": self.path}]}))
            return
        query = urllib.parse.parse_qs(url.query)
        self._send(self.server.owner.answer_get(query, self.headers.get("Authorization")))

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if url.path != "/token" or not self.server.owner.oauth_post:
            self._discard(length)
            self._send(_Answer(404, {"errors": [{"code": "NOT_FOUND", "message": self.path}]}))
            return
        if length > MAX_FORM_BYTES:
            self._send(_Answer(413, {"error": "invalid_request", "error_description": "too big"}))
            self.close_connection = True
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))
        self._send(self.server.owner.answer_post(form))

    def _discard(self, length: int) -> None:
        if length > MAX_FORM_BYTES:
            self.close_connection = True
        else:
            self.rfile.read(length)

    def _send(self, answer: _Answer) -> None:
        body = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: TokenServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Drop broken connections quietly (clients probing TLS, tests killing sockets)."""


class TokenServer:
    """Token server on a free loopback port; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        signing_cert: Path,
        signing_key: Path,
        service: str,
        issuer: str,
        users: dict[str, TokenUser],
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        public_repos: str | None = None,
        expires_in: int = DEFAULT_EXPIRES_IN,
        oauth_post: bool = True,
        record_path: Path | None = None,
    ) -> None:
        self.service = service
        self.issuer = issuer
        self.users = dict(users)
        self.public_repos = public_repos
        self.expires_in = expires_in
        self.oauth_post = oauth_post
        self.record_path = Path(record_path) if record_path else None
        self._signer = _Signer(signing_cert, signing_key)
        self._tls = (tls_cert, tls_key) if tls_cert and tls_key else None
        self._requests: list[TokenRequest] = []
        self._refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    @property
    def realm(self) -> str:
        return self.url + "/token"

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> TokenServer:
        self.port = free_port()
        httpd = _HTTPServer((LOOPBACK, self.port), _Handler)
        httpd.owner = self
        if self._tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self._tls[0]), str(self._tls[1]))
            httpd.socket = context.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"token-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def issue(
        self, user: str | None, access: list[dict[str, Any]], expires_in: int | None = None
    ) -> str:
        """Mint a token directly, e.g. to hand a test an expired or over-privileged one."""
        now = int(time.time())
        lifetime = self.expires_in if expires_in is None else expires_in
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + lifetime,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        return self._signer.sign(claims)

    def grant(self, user: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        """The access claim *user* (``None`` = anonymous) gets for the requested *scopes*."""
        granted = []
        for text in scopes:
            scope = Scope.parse(text)
            if scope is None:
                continue
            allowed = tuple(a for a in scope.actions if a in self._rights(user, scope))
            if allowed:
                granted.append(scope.claim(allowed))
        return granted

    def _rights(self, user: str | None, scope: Scope) -> tuple[str, ...]:
        account = self.users.get(user) if user else None
        if scope.type == "registry" and scope.name == "catalog":
            return ("*",) if account and account.catalog else ()
        if scope.type != "repository":
            return ()
        if account:
            return account.actions
        if self.public_repos and fnmatch.fnmatchcase(scope.name, self.public_repos):
            return ("pull",)
        return ()

    def _check_password(self, user: str, password: str) -> bool:
        account = self.users.get(user)
        return account is not None and secrets.compare_digest(account.password, password)

    def _basic_user(self, authorization: str | None) -> tuple[bool, str | None]:
        """(credentials accepted, user) for an optional ``Authorization: Basic`` header."""
        if not authorization:
            return True, None
        scheme, unused_space, encoded = authorization.partition(" ")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False, None
        user, unused_colon, password = decoded.partition(":")
        if scheme.lower() != "basic" or not self._check_password(user, password):
            return False, user or None
        return True, user

    def answer_get(self, query: dict[str, list[str]], authorization: str | None) -> _Answer:
        """Answer ``GET <realm>?service=..&scope=..`` with optional Basic credentials."""
        values = {name: found[0] for name, found in query.items() if found}
        service = values.get("service", "")
        scopes = query.get("scope", [])
        record = {"method": "GET", "grant_type": "", "service": service, "scopes": scopes}
        record["client_id"] = values.get("client_id", "")

        accepted, user = self._basic_user(authorization)
        if not accepted:
            headers = {"WWW-Authenticate": 'Basic realm="airgap.hangar token server"'}
            answer = _Answer(401, _error("UNAUTHORIZED", "invalid username or password"), headers)
            return self._finish(answer, user=user, **record)
        if service != self.service:
            answer = _Answer(400, _error("INVALID_REQUEST", f"unknown service {service!r}"))
            return self._finish(answer, user=user, **record)

        offline = values.get("offline_token", "").lower() == "true" and user is not None
        return self._token_answer(user, scopes, offline, record)

    def answer_post(self, form: dict[str, list[str]]) -> _Answer:
        """Answer the OAuth2 form ``POST <realm>`` (password or refresh_token grant)."""
        values = {name: found[0] for name, found in form.items() if found}
        grant_type, service = values.get("grant_type", ""), values.get("service", "")
        scopes = values.get("scope", "").split()
        record = {"method": "POST", "grant_type": grant_type, "service": service, "scopes": scopes}
        record["client_id"] = values.get("client_id", "")

        if not record["client_id"] or service != self.service:
            failure = _Answer(400, _oauth_error("invalid_request", "client_id and service needed"))
            return self._finish(failure, user=None, **record)
        user, failure = self._post_user(values)
        if failure is not None:
            return self._finish(failure, user=user, **record)

        offline = grant_type == "password" and values.get("access_type") == "offline"
        return self._token_answer(user, scopes, offline, record)

    def _post_user(self, values: dict[str, str]) -> tuple[str | None, _Answer | None]:
        """The user a POST form authenticates, or the answer that refuses it."""
        grant_type = values.get("grant_type", "")
        if grant_type == "password":
            user = values.get("username", "")
            if self._check_password(user, values.get("password", "")):
                return user, None
            return user or None, _Answer(401, _oauth_error("invalid_grant", "invalid password"))
        if grant_type == "refresh_token":
            with self._lock:
                user = self._refresh_tokens.get(values.get("refresh_token", ""))
            if user is not None:
                return user, None
            return None, _Answer(401, _oauth_error("invalid_grant", "unknown refresh token"))
        return None, _Answer(400, _oauth_error("unsupported_grant_type", repr(grant_type)))

    def _token_answer(
        self, user: str | None, scopes: list[str], offline: bool, record: dict[str, Any]
    ) -> _Answer:
        granted = self.grant(user, scopes)
        token = self.issue(user, granted)
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if offline and user is not None:
            refresh = secrets.token_urlsafe(24)
            with self._lock:
                self._refresh_tokens[refresh] = user
            body["refresh_token"] = refresh
        answer = _Answer(200, body)
        return self._finish(answer, user=user, granted=granted, offline=offline, **record)

    def _finish(self, answer: _Answer, *, granted: list | None = None, **record: Any) -> _Answer:
        entry = TokenRequest(granted=granted or [], status=answer.status, **record)
        with self._lock:
            self._requests.append(entry)
            if self.record_path:
                with self.record_path.open("a") as stream:
                    stream.write(json.dumps(asdict(entry)) + "\n")
        return answer


def _error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


def _oauth_error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description}
