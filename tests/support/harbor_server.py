# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stateful stand-in for Harbor 2.x: the project API in memory, ``/v2/`` on a real registry.

Only the behaviour our modules depend on is modelled, but each rule is Harbor's own: the project
name grammar, 409 on duplicates, 412 on deleting a non-empty project, the anonymous fallback when
Basic credentials are wrong, 401/412 from ``users/current``, 404-or-403 for missing projects,
metadata as string booleans merged by PUT, the CSRF 403 for clients that send back the ``sid``
cookie, read-only mode and the ``adminonly`` creation restriction. ``/v2/`` is forwarded to a
loopback ``docker-registry`` after Harbor's registry authorisation (project lookup first, then
project membership), so pushes through it really land in a registry.

Every request is recorded (method, path, account name, status, whether a cookie came with it) so
tests can assert "no write happened" without ever seeing a credential.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import http.client
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

API = "/api/v2.0"
HARBOR_VERSION = "v2.11.0-fake"
TOKEN_SERVICE = "harbor-registry"

PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MAX_NAME = 255
MAX_PAGE_SIZE = 100
MAX_STORAGE = 1024 ** 5  # Harbor's ceiling for a quota: 1024 TB
API_BODY_LIMIT = 1 << 20
STREAM_BLOCK = 1 << 16

SEVERITIES = ("none", "low", "medium", "high", "critical")
BOOLEAN_METADATA = (
    "public", "enable_content_trust", "enable_content_trust_cosign", "prevent_vul", "auto_scan",
    "auto_sbom_generation", "reuse_sys_cve_allowlist", "proxy_cache_local_on_not_found",
    "proxy_referrer_api",
)
PROXY_ONLY_METADATA = (
    "proxy_speed_kb", "max_upstream_conn", "proxy_cache_local_on_not_found", "proxy_referrer_api",
    "proxy_cache_filter_pattern", "proxy_cache_filter_kind",
)
PROXY_CACHE_TYPES = (
    "docker-hub", "harbor", "aws-ecr", "azure-acr", "docker-registry", "quay", "google-gcr",
    "jfrog-artifactory", "github-ghcr",
)

ROLE_PROJECT_ADMIN, ROLE_DEVELOPER, ROLE_GUEST, ROLE_MAINTAINER = 1, 2, 3, 4
PUSH_ROLES = (ROLE_PROJECT_ADMIN, ROLE_DEVELOPER, ROLE_MAINTAINER)
DELETE_ROLES = (ROLE_PROJECT_ADMIN, ROLE_MAINTAINER)

# Headers that describe one hop of the connection, never forwarded by a proxy (RFC 9110 7.6.1),
# plus the ones Harbor consumes itself: the registry behind it has no authentication.
HOP_HEADERS = frozenset((
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "expect", "host", "authorization", "cookie", "content-length",
))

READ_ONLY_MESSAGE = "The system is in read only mode. Any modification is prohibited."


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------------------------
# Accounts and state


@dataclass
class Account:
    """A Harbor principal. ``kind`` is admin, user, system_robot or project_robot."""

    name: str
    password: str = field(repr=False)
    kind: str
    user_id: int = 0
    project: str = ""

    @property
    def robot(self) -> bool:
        return self.kind.endswith("robot")

    @property
    def sysadmin(self) -> bool:
        return self.kind == "admin"

    @property
    def covers_all(self) -> bool:
        # A system robot with every permission sees and manages every project like an admin,
        # but is no system administrator where Harbor asks for one (adminonly, proxy cache).
        return self.kind in ("admin", "system_robot")


ADMIN = Account("admin", "Harbor12345", "admin", user_id=1)
USER = Account("dev", "Dev-Passw0rd", "user", user_id=3)
OTHER_USER = Account("guest", "Guest-Passw0rd", "user", user_id=4)
SYSTEM_ROBOT = Account("robot$ci", "ci-robot-secret-1", "system_robot")


@dataclass
class Project:
    project_id: int
    name: str
    owner: Account
    metadata: Dict[str, str]
    registry_id: Optional[int] = None
    members: Dict[str, int] = field(default_factory=dict)
    repositories: Dict[str, Set[str]] = field(default_factory=dict)
    allowlist: Dict[str, Any] = field(default_factory=dict)
    creation_time: str = field(default_factory=now_iso)
    update_time: str = field(default_factory=now_iso)

    @property
    def public(self) -> bool:
        return self.metadata.get("public") == "true"


@dataclass
class Quota:
    quota_id: int
    project_id: int
    hard: int
    used: int = 0
    creation_time: str = field(default_factory=now_iso)
    update_time: str = field(default_factory=now_iso)


@dataclass
class Registry:
    registry_id: int
    name: str
    url: str
    type: str
    insecure: bool = False
    description: str = ""
    creation_time: str = field(default_factory=now_iso)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it; credentials are reduced to the account name."""

    method: str
    path: str
    query: str
    user: str
    status: int
    cookie: bool
    request_id: str

    @property
    def write(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    remaining: int


class HarborState:
    """Everything the fake remembers; one lock guards it all (requests are small and few)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.accounts: Dict[str, Account] = {}
        self.projects: Dict[str, Project] = {}
        self.quotas: Dict[int, Quota] = {}
        self.registries: Dict[int, Registry] = {}
        self.tokens: Dict[str, Tuple[Optional[Account], Dict[str, Set[str]]]] = {}
        self.creation_restriction = "everyone"
        self.read_only = False
        self.storage_per_project = -1
        self._ids = {"project": 0, "quota": 0, "registry": 0, "user": 10}
        for account in (ADMIN, USER, OTHER_USER, SYSTEM_ROBOT):
            self.accounts[account.name] = account

    def next_id(self, kind: str) -> int:
        with self.lock:
            self._ids[kind] += 1
            return self._ids[kind]

    def project_by_id(self, project_id: int) -> Optional[Project]:
        with self.lock:
            for project in self.projects.values():
                if project.project_id == project_id:
                    return project
        return None

    def quota_of(self, project: Project) -> Optional[Quota]:
        with self.lock:
            for quota in self.quotas.values():
                if quota.project_id == project.project_id:
                    return quota
        return None

    def registry_named(self, name: str) -> Optional[Registry]:
        with self.lock:
            for registry in self.registries.values():
                if registry.name == name:
                    return registry
        return None


# --------------------------------------------------------------------------------------------
# Harbor's rules, kept apart from HTTP so each reads as one sentence


class HarborFailure(Exception):
    """An error answer in Harbor's envelope."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Optional[List[Tuple[str, str]]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


def unauthorized(message: str = "unauthorized") -> HarborFailure:
    return HarborFailure(401, "UNAUTHORIZED", message)


def forbidden(message: str = "forbidden") -> HarborFailure:
    return HarborFailure(403, "FORBIDDEN", message)


def bad_request(message: str) -> HarborFailure:
    return HarborFailure(400, "BAD_REQUEST", message)


def unprocessable(message: str) -> HarborFailure:
    return HarborFailure(422, "UNPROCESSABLE_ENTITY", message)


def not_found(message: str) -> HarborFailure:
    return HarborFailure(404, "NOT_FOUND", message)


def role_of(account: Optional[Account], project: Project) -> Optional[int]:
    if account is None:
        return None
    if account.kind == "project_robot":
        return ROLE_DEVELOPER if account.project == project.name else None
    return project.members.get(account.name)


def can_read(account: Optional[Account], project: Project) -> bool:
    if project.public:
        return True
    return account is not None and (account.covers_all or role_of(account, project) is not None)


def can_manage(account: Optional[Account], project: Project) -> bool:
    """Update or delete the project itself: system-wide accounts and project admins."""
    if account is None:
        return False
    return account.covers_all or role_of(account, project) == ROLE_PROJECT_ADMIN


def can_push(account: Optional[Account], project: Project) -> bool:
    if account is None:
        return False
    return account.covers_all or role_of(account, project) in PUSH_ROLES


def can_delete_repository(account: Optional[Account], project: Project) -> bool:
    if account is None:
        return False
    return account.covers_all or role_of(account, project) in DELETE_ROLES


def validate_project_name(name: str) -> None:
    if not 1 <= len(name) <= MAX_NAME:
        raise bad_request(
            f"Project name {name} is illegal in length. (greater than 255 or less than 1)")
    if not PROJECT_NAME.match(name):
        raise bad_request("project name is not in lower case or contains illegal characters")


def validate_storage(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise unprocessable("storage_limit in body must be of type int64")
    if value == -1 or 0 < value <= MAX_STORAGE:
        return value
    if value > MAX_STORAGE:
        raise bad_request(f"exceeded 1024TB, which is 1125899906842624 Bytes, value={value}")
    raise bad_request(f"invalid non-positive value for quota limit, value={value}")


def check_metadata_types(metadata: Any) -> Dict[str, str]:
    """Harbor binds metadata to string fields: a JSON true is refused before any handler runs."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise unprocessable("metadata in body must be of type object")
    for key, value in metadata.items():
        if not isinstance(value, str):
            kind = type(value).__name__.replace("bool", "boolean")
            raise unprocessable(f'metadata.{key} in body must be of type string: "{kind}"')
    return dict(metadata)


def check_metadata_values(metadata: Dict[str, str]) -> None:
    public = metadata.get("public")
    if public is not None and public not in ("true", "false"):
        raise bad_request(
            f"metadata.public should only be 'true' or 'false', but got: '{public}'")
    severity = metadata.get("severity")
    if severity is not None and severity.lower() not in SEVERITIES:
        raise bad_request(f"invalid severity {severity}")
    if metadata.get("retention_id"):
        raise bad_request("retention_id cannot be set through the project API")


def shape_metadata(metadata: Dict[str, str], proxy: bool) -> Dict[str, str]:
    """Drop what Harbor drops: proxy keys on normal projects, content trust on proxy ones."""
    shaped = {}
    for key, value in metadata.items():
        if key in PROXY_ONLY_METADATA and not proxy:
            continue
        if key == "enable_content_trust" and proxy:
            continue
        shaped[key] = value.lower() if key == "severity" else value
    return shaped


def parse_query_filter(q: str) -> Dict[str, Tuple[str, str]]:
    """Harbor's ``q`` syntax, the parts the fake needs: ``k=v`` exact and ``k=~v`` fuzzy."""
    filters = {}
    for part in q.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        if value.startswith("~"):
            filters[key.strip()] = ("fuzzy", value[1:])
        else:
            filters[key.strip()] = ("exact", value)
    return filters


def page_window(params: Dict[str, str]) -> Tuple[int, int]:
    try:
        page = int(params.get("page", "1"))
        size = int(params.get("page_size", "10"))
    except ValueError as exc:
        raise unprocessable("page and page_size in query must be of type int64") from exc
    if size > MAX_PAGE_SIZE:
        raise unprocessable("page_size in query should be less than or equal to 100")
    if page < 1 or size < 1:
        raise unprocessable("page and page_size in query should be greater than or equal to 1")
    return page, size


def link_header(path: str, params: Dict[str, str], page: int, size: int, total: int) -> str:
    links = []
    base = {k: v for k, v in params.items() if k not in ("page", "page_size")}
    extra = "".join(f"&{k}={quote(v)}" for k, v in sorted(base.items()))
    if page > 1:
        links.append(f'<{path}?page={page - 1}&page_size={size}{extra}>; rel="prev"')
    if page * size < total:
        links.append(f'<{path}?page={page + 1}&page_size={size}{extra}>; rel="next"')
    return " , ".join(links)


# --------------------------------------------------------------------------------------------
# JSON views of the state


def project_view(project: Project, account: Optional[Account]) -> dict:
    role = role_of(account, project)
    view = {
        "project_id": project.project_id,
        "owner_id": project.owner.user_id,
        "owner_name": project.owner.name,
        "name": project.name,
        "creation_time": project.creation_time,
        "update_time": project.update_time,
        "repo_count": len(project.repositories),
        "current_user_role_id": role or 0,
        "current_user_role_ids": [role] if role else None,
        "metadata": dict(project.metadata),
        "cve_allowlist": {
            "id": project.project_id, "project_id": project.project_id,
            "items": list(project.allowlist.get("items", [])),
            "expires_at": project.allowlist.get("expires_at"),
            "creation_time": "0001-01-01T00:00:00.000Z",
            "update_time": "0001-01-01T00:00:00.000Z",
        },
    }
    if project.registry_id:
        view["registry_id"] = project.registry_id
    return view


def quota_view(quota: Quota, project: Project) -> dict:
    return {
        "id": quota.quota_id,
        "ref": {"id": project.project_id, "name": project.name,
                "owner_name": project.owner.name},
        "hard": {"storage": quota.hard},
        "used": {"storage": quota.used},
        "creation_time": quota.creation_time,
        "update_time": quota.update_time,
    }


def registry_view(registry: Registry) -> dict:
    return {
        "id": registry.registry_id, "name": registry.name, "url": registry.url,
        "type": registry.type, "insecure": registry.insecure,
        "description": registry.description, "status": "healthy",
        "credential": {"type": "basic", "access_key": "", "access_secret": "*****"},
        "creation_time": registry.creation_time, "update_time": registry.creation_time,
    }


def user_view(account: Account) -> dict:
    return {
        "user_id": account.user_id, "username": account.name,
        "email": f"{account.name}@example.invalid", "realname": account.name, "comment": "",
        "sysadmin_flag": account.sysadmin, "admin_role_in_auth": False,
        "creation_time": "2026-01-01T00:00:00.000Z", "update_time": "2026-01-01T00:00:00.000Z",
        "oidc_user_meta": None,
    }


def repository_view(project: Project, name: str, index: int) -> dict:
    return {
        "id": project.project_id * 1000 + index, "project_id": project.project_id,
        "name": name, "artifact_count": len(project.repositories[name]) or 1,
        "pull_count": 0, "creation_time": project.creation_time,
        "update_time": project.update_time, "description": "",
    }


# --------------------------------------------------------------------------------------------
# The request handler


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: List[Tuple[str, str]] = field(default_factory=list)


def json_response(status: int, value: Any, headers: Optional[list] = None) -> Response:
    return Response(status, json.dumps(value).encode(), headers=headers or [])


def envelope(failure: HarborFailure) -> Response:
    body = {"errors": [{"code": failure.code, "message": failure.message}]}
    return json_response(failure.status, body, list(failure.headers))


Route = Tuple[str, re.Pattern, Callable[..., Response]]


class HarborHandler(BaseHTTPRequestHandler):
    """Dispatches ``/api/v2.0``, ``/service/token`` and ``/v2/``; the server holds the state."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, each answer waits for the
    # client's delayed ACK (about 40 ms on Linux).
    disable_nagle_algorithm = True
    server: "_HarborHTTPServer"

    # -- plumbing ---------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request stderr line; the request log replaces it."""

    def do_GET(self) -> None:
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    @property
    def harbor(self) -> "HarborServer":
        return self.server.harbor

    @property
    def state(self) -> HarborState:
        return self.server.harbor.state

    def dispatch(self) -> None:
        self.request_id = self.headers.get("X-Request-Id") or uuid.uuid4().hex
        self.account, self.bearer = self.authenticate()
        self.body_read = False
        self.recorded = False
        parts = urlsplit(self.path)
        self.route_path, self.query = parts.path, parts.query
        self.params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            self.answer()
        finally:
            self.record(0)

    def record(self, status: int) -> None:
        """Log the request once, before its answer leaves: a client that got the answer must
        find the request in the log."""
        if self.recorded:
            return
        self.recorded = True
        self.harbor.record(RequestRecord(
            self.command, self.route_path, self.query, self.user_name, status,
            "Cookie" in self.headers, self.request_id))

    def answer(self) -> None:
        try:
            self.check_common_rules()
            if self.route_path.startswith("/v2/") or self.route_path == "/v2":
                self.proxy_registry()
                return
            response = self.route()
        except HarborFailure as failure:
            response = envelope(failure)
        self.send(response)

    @property
    def user_name(self) -> str:
        return self.account.name if self.account else "anonymous"

    def authenticate(self) -> Tuple[Optional[Account], bool]:
        """The account behind the request; wrong credentials give anonymous, like Harbor."""
        header = self.headers.get("Authorization", "").partition(" ")
        scheme, value = header[0], header[2]
        if scheme.lower() == "bearer":
            grant = self.state.tokens.get(value.strip())
            return (grant[0] if grant else None), True
        if scheme.lower() != "basic":
            return None, False
        try:
            pair = base64.b64decode(value).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        account = self.state.accounts.get(pair[0])
        if account and hmac.compare_digest(account.password.encode(), pair[2].encode()):
            return account, False
        return None, False

    def check_common_rules(self) -> None:
        fault = self.harbor.take_fault(self.command, self.route_path)
        if fault is not None:
            raise HarborFailure(fault, "UNKNOWN", "internal server error")
        writes = self.command in ("POST", "PUT", "PATCH", "DELETE")
        # Harbor skips CSRF checks for API clients unless they carry the session cookie.
        if writes and self.has_session_cookie():
            raise HarborFailure(403, "FORBIDDEN", "CSRF token invalid")
        if writes and self.state.read_only and self.route_path != "/service/token":
            raise HarborFailure(403, "DENIED", READ_ONLY_MESSAGE)

    def has_session_cookie(self) -> bool:
        for cookie in self.headers.get_all("Cookie") or []:
            if re.search(r"(^|;)\s*sid=", cookie):
                return True
        return False

    def read_body(self) -> bytes:
        size = int(self.headers.get("Content-Length") or 0)
        if size > API_BODY_LIMIT:
            # Left unread: send() closes the connection instead of reading it.
            raise HarborFailure(413, "REQUEST_ENTITY_TOO_LARGE", "request body too large")
        self.body_read = True
        return self.rfile.read(size)

    def read_json(self) -> Any:
        raw = self.read_body()
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise bad_request(f"parsing the request body failed: {exc}") from exc

    def send(self, response: Response) -> None:
        self.record(response.status)
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        sent_body = chunked or int(self.headers.get("Content-Length") or 0) > 0
        unread = sent_body and not self.body_read
        self.send_response(response.status)
        self.send_header("X-Request-Id", self.request_id)
        self.send_header("Set-Cookie", f"sid={secrets.token_hex(16)}; Path=/; HttpOnly")
        for name, value in response.headers:
            self.send_header(name, value)
        if response.body or response.status not in (200, 201, 204):
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if unread:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    # -- API routing ------------------------------------------------------------------------

    def route(self) -> Response:
        path = self.route_path
        if path == "/service/token":
            return self.issue_token()
        if not path.startswith(API + "/"):
            return Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
        sub = path[len(API):]
        for method, pattern, handler in self.routes():
            match = pattern.fullmatch(sub)
            if match and (method == self.command or (method == "GET" and self.command == "HEAD")):
                return handler(*[unquote(g) for g in match.groups()])
        raise not_found(f"no route for {self.command} {path}")

    def routes(self) -> List[Route]:
        name = r"([^/]+)"
        return [
            ("GET", re.compile(r"/ping"), self.ping),
            ("GET", re.compile(r"/systeminfo"), self.system_info),
            ("GET", re.compile(r"/users/current"), self.current_user),
            ("HEAD", re.compile(r"/projects"), self.head_project),
            ("GET", re.compile(r"/projects"), self.list_projects),
            ("POST", re.compile(r"/projects"), self.create_project),
            ("GET", re.compile(rf"/projects/{name}"), self.get_project),
            ("PUT", re.compile(rf"/projects/{name}"), self.update_project),
            ("DELETE", re.compile(rf"/projects/{name}"), self.delete_project),
            ("GET", re.compile(rf"/projects/{name}/_deletable"), self.project_deletable),
            ("GET", re.compile(rf"/projects/{name}/summary"), self.project_summary),
            ("GET", re.compile(rf"/projects/{name}/repositories"), self.list_repositories),
            ("DELETE", re.compile(rf"/projects/{name}/repositories/{name}"),
             self.delete_repository),
            ("GET", re.compile(r"/quotas"), self.list_quotas),
            ("GET", re.compile(r"/quotas/(\d+)"), self.get_quota),
            ("PUT", re.compile(r"/quotas/(\d+)"), self.update_quota),
            ("GET", re.compile(r"/registries"), self.list_registries),
            ("POST", re.compile(r"/registries"), self.create_registry),
            ("GET", re.compile(r"/registries/(\d+)"), self.get_registry),
        ]

    # -- system -----------------------------------------------------------------------------

    def ping(self) -> Response:
        return Response(200, b"Pong", "text/plain; charset=utf-8")

    def system_info(self) -> Response:
        info = {"auth_mode": "db_auth", "primary_auth_mode": False, "self_registration": False,
                "banner_message": "", "current_time": now_iso()}
        if self.account is not None:
            info.update({
                "harbor_version": HARBOR_VERSION,
                "external_url": self.harbor.url,
                "registry_url": self.harbor.host,
                "read_only": self.state.read_only,
                "project_creation_restriction": self.state.creation_restriction,
                "has_ca_root": False, "with_notary": False, "notification_enable": True,
                "registry_storage_provider_name": "filesystem",
            })
        return json_response(200, info)

    def current_user(self) -> Response:
        if self.account is None:
            raise unauthorized()
        if self.account.robot:
            raise HarborFailure(412, "PRECONDITION",
                                "get current user not available for security context: robot")
        return json_response(200, user_view(self.account))

    def require_login(self) -> Account:
        if self.account is None:
            raise unauthorized()
        return self.account

    def require_admin(self) -> Account:
        account = self.require_login()
        if not account.sysadmin:
            raise forbidden()
        return account

    # -- projects ---------------------------------------------------------------------------

    def head_project(self) -> Response:
        self.require_login()
        name = self.params.get("project_name")
        if not name:
            raise unprocessable("project_name in query is required")
        with self.state.lock:
            exists = name in self.state.projects
        if not exists:
            raise not_found(f"project {name} not found")
        return Response(200)

    def find_project(self, name_or_id: str) -> Optional[Project]:
        by_name = self.headers.get("X-Is-Resource-Name", "").lower() == "true"
        if not by_name and name_or_id.isdigit():
            return self.state.project_by_id(int(name_or_id))
        if " " in name_or_id:
            raise bad_request(f"invalid project name: '{name_or_id}'")
        with self.state.lock:
            return self.state.projects.get(name_or_id)

    def access_project(self, name_or_id: str, allowed: Callable[..., bool]) -> Project:
        """Harbor's answers: 401 anonymous, 404 only to admins, 403 to everyone else."""
        project = self.find_project(name_or_id)
        if project is not None and allowed(self.account, project):
            return project
        if self.account is None:
            raise unauthorized()
        if project is None and self.account.sysadmin:
            raise not_found(f"project {name_or_id} not found")
        raise forbidden()

    def visible(self, project: Project) -> bool:
        return can_read(self.account, project)

    def list_projects(self) -> Response:
        page, size = page_window(self.params)
        filters = parse_query_filter(self.params.get("q", ""))
        with self.state.lock:
            found = [p for p in self.state.projects.values()
                     if self.visible(p) and self.matches(p, filters)]
            found.sort(key=lambda p: p.project_id)
            total = len(found)
            views = [project_view(p, self.account)
                     for p in found[(page - 1) * size:page * size]]
        headers = [("X-Total-Count", str(total))]
        link = link_header(API + "/projects", self.params, page, size, total)
        if link:
            headers.append(("Link", link))
        return json_response(200, views, headers)

    def matches(self, project: Project, filters: Dict[str, Tuple[str, str]]) -> bool:
        fuzzy_name = self.params.get("name")
        if fuzzy_name is not None and fuzzy_name not in project.name:
            return False
        public = self.params.get("public")
        if public is not None and project.public != (public.lower() == "true"):
            return False
        owner = self.params.get("owner")
        if owner is not None and project.owner.name != owner:
            return False
        mode, value = filters.get("name", ("", ""))
        if mode == "exact" and project.name != value:
            return False
        return not (mode == "fuzzy" and value not in project.name)

    def get_project(self, name_or_id: str) -> Response:
        project = self.access_project(name_or_id, can_read)
        with self.state.lock:
            return json_response(200, project_view(project, self.account))

    def create_project(self) -> Response:
        body = self.read_json()
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        name = body.get("project_name", "")
        if not isinstance(name, str):
            raise unprocessable("project_name in body must be of type string")
        if len(name) > MAX_NAME:
            raise unprocessable("project_name in body should be at most 255 chars long")
        metadata = check_metadata_types(body.get("metadata"))
        account = self.check_creation_allowed(body)
        storage = self.storage_for(body.get("storage_limit"), account)
        metadata = self.creation_metadata(body, metadata)
        registry_id = self.proxy_registry_id(body.get("registry_id"))
        validate_project_name(name)
        with self.state.lock:
            if name in self.state.projects:
                raise HarborFailure(409, "CONFLICT", f"The project named {name} already exists")
            # Robots own nothing: Harbor makes the first system admin the owner.
            project = self.harbor.add_project(
                name, owner=ADMIN if account.robot else account, metadata=metadata,
                registry_id=registry_id, storage_limit=storage)
        location = name if self.headers.get("X-Resource-Name-In-Location") == "true" \
            else str(project.project_id)
        return Response(201, headers=[("Location", f"{API}/projects/{location}")])

    def check_creation_allowed(self, body: dict) -> Account:
        account = self.require_login()
        if account.kind == "project_robot":
            raise forbidden("Only system level robot can create project")
        if self.state.creation_restriction == "adminonly" and not account.sysadmin:
            raise forbidden("Only system admin can create project")
        if body.get("registry_id") is not None and not account.sysadmin:
            raise forbidden("Only system admin can create proxy cache project")
        return account

    def storage_for(self, requested: Any, account: Account) -> int:
        # Non-admins and requests without a limit get the system default, as Harbor does.
        if requested in (None, 0) or not account.sysadmin:
            return self.state.storage_per_project
        return validate_storage(requested)

    def creation_metadata(self, body: dict, metadata: Dict[str, str]) -> Dict[str, str]:
        if "public" not in metadata:
            public = body.get("public")
            metadata["public"] = "true" if public is True else "false"
        check_metadata_values(metadata)
        return shape_metadata(metadata, body.get("registry_id") is not None)

    def proxy_registry_id(self, registry_id: Any) -> Optional[int]:
        if registry_id is None:
            return None
        if not isinstance(registry_id, int) or registry_id <= 0:
            raise bad_request(f"invalid value of registry_id {registry_id}")
        registry = self.state.registries.get(registry_id)
        if registry is None:
            raise bad_request(f"registry {registry_id} not found")
        if registry.type not in PROXY_CACHE_TYPES:
            raise bad_request(f"unsupported registry type {registry.type}")
        return registry_id

    def update_project(self, name_or_id: str) -> Response:
        project = self.access_project(name_or_id, can_manage)
        body = self.read_json()
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        metadata = check_metadata_types(body.get("metadata"))
        check_metadata_values(metadata)
        allowlist = self.checked_allowlist(body.get("cve_allowlist"), project)
        with self.state.lock:
            # Keys not sent are kept: Harbor merges metadata on update.
            project.metadata.update(shape_metadata(metadata, project.registry_id is not None))
            if allowlist is not None:
                project.allowlist = allowlist
            project.update_time = now_iso()
        return Response(200)

    def checked_allowlist(self, allowlist: Any, project: Project) -> Optional[dict]:
        if allowlist is None:
            return None
        owner = allowlist.get("project_id") or 0
        if owner not in (0, project.project_id):
            raise bad_request(
                f"project_id in cve_allowlist must be {project.project_id} but it's {owner}")
        return {"items": allowlist.get("items") or [], "expires_at": allowlist.get("expires_at")}

    def delete_project(self, name_or_id: str) -> Response:
        project = self.access_project(name_or_id, can_manage)
        with self.state.lock:
            if project.repositories:
                raise HarborFailure(412, "PRECONDITION",
                                    "the project contains repositories, can not be deleted")
            del self.state.projects[project.name]
            quota = self.state.quota_of(project)
            if quota:
                del self.state.quotas[quota.quota_id]
            for robot in [a for a in self.state.accounts.values() if a.project == project.name]:
                del self.state.accounts[robot.name]
        return Response(200)

    def project_deletable(self, name_or_id: str) -> Response:
        project = self.access_project(name_or_id, can_manage)
        if project.repositories:
            return json_response(200, {"deletable": False, "message":
                                       "the project contains repositories, can not be deleted"})
        return json_response(200, {"deletable": True, "message": ""})

    def project_summary(self, name_or_id: str) -> Response:
        project = self.access_project(name_or_id, can_read)
        with self.state.lock:
            quota = self.state.quota_of(project)
            summary: Dict[str, Any] = {
                "repo_count": len(project.repositories),
                "project_admin_count": list(project.members.values()).count(ROLE_PROJECT_ADMIN),
                "quota": {"hard": {"storage": quota.hard if quota else -1},
                          "used": {"storage": quota.used if quota else 0}},
            }
            if project.registry_id in self.state.registries:
                summary["registry"] = registry_view(self.state.registries[project.registry_id])
        return json_response(200, summary)

    # -- repositories -----------------------------------------------------------------------

    def list_repositories(self, name_or_id: str) -> Response:
        project = self.access_project(name_or_id, can_read)
        page, size = page_window(self.params)
        with self.state.lock:
            names = sorted(project.repositories)
            views = [repository_view(project, n, i) for i, n in enumerate(names)]
        window = views[(page - 1) * size:page * size]
        headers = [("X-Total-Count", str(len(views)))]
        link = link_header(f"{API}/projects/{project.name}/repositories", self.params, page,
                           size, len(views))
        if link:
            headers.append(("Link", link))
        return json_response(200, window, headers)

    def delete_repository(self, name_or_id: str, repository: str) -> Response:
        project = self.access_project(name_or_id, can_delete_repository)
        # The route already decoded once; Harbor wants "a/b" sent as "a%252Fb".
        full = f"{project.name}/{unquote(repository)}"
        with self.state.lock:
            tags = project.repositories.pop(full, None)
        if tags is None:
            raise not_found(f"repository {full} not found")
        self.harbor.delete_upstream(full, tags)
        return Response(200)

    # -- quotas -----------------------------------------------------------------------------

    def list_quotas(self) -> Response:
        self.require_admin()
        reference = self.params.get("reference")
        reference_id = self.params.get("reference_id")
        with self.state.lock:
            views = []
            for quota in sorted(self.state.quotas.values(), key=lambda q: q.quota_id):
                project = self.state.project_by_id(quota.project_id)
                if project is None or (reference not in (None, "project")):
                    continue
                if reference_id is not None and str(project.project_id) != reference_id:
                    continue
                views.append(quota_view(quota, project))
        return json_response(200, views, [("X-Total-Count", str(len(views)))])

    def get_quota(self, quota_id: str) -> Response:
        self.require_admin()
        quota, project = self.quota_and_project(int(quota_id))
        return json_response(200, quota_view(quota, project))

    def quota_and_project(self, quota_id: int) -> Tuple[Quota, Project]:
        with self.state.lock:
            quota = self.state.quotas.get(quota_id)
            project = self.state.project_by_id(quota.project_id) if quota else None
        if quota is None or project is None:
            raise not_found(f"quota {quota_id} not found")
        return quota, project

    def update_quota(self, quota_id: str) -> Response:
        self.require_admin()
        quota = self.quota_and_project(int(quota_id))[0]
        body = self.read_json()
        hard = body.get("hard") if isinstance(body, dict) else None
        if not isinstance(hard, dict) or "storage" not in hard:
            raise bad_request("resource storage not found")
        for resource in hard:
            if resource != "storage":
                raise bad_request(f"resource {resource} not support")
        storage = validate_storage(hard["storage"])
        with self.state.lock:
            quota.hard = storage
            quota.update_time = now_iso()
        return Response(200)

    # -- registry endpoints -----------------------------------------------------------------

    def list_registries(self) -> Response:
        self.require_admin()
        filters = parse_query_filter(self.params.get("q", ""))
        mode, value = filters.get("name", ("", ""))
        with self.state.lock:
            views = [registry_view(r) for r in sorted(self.state.registries.values(),
                                                      key=lambda r: r.registry_id)
                     if not mode or (r.name == value if mode == "exact" else value in r.name)]
        return json_response(200, views, [("X-Total-Count", str(len(views)))])

    def get_registry(self, registry_id: str) -> Response:
        self.require_admin()
        registry = self.state.registries.get(int(registry_id))
        if registry is None:
            raise not_found(f"registry {registry_id} not found")
        return json_response(200, registry_view(registry))

    def create_registry(self) -> Response:
        self.require_admin()
        body = self.read_json()
        if not isinstance(body, dict) or not body.get("name") or not body.get("url"):
            raise bad_request("name and url of the registry are required")
        with self.state.lock:
            if self.state.registry_named(body["name"]):
                raise HarborFailure(409, "CONFLICT",
                                    f"the registry whose name is {body['name']} already exists")
            registry = self.harbor.add_registry(body["name"], body["url"],
                                                body.get("type", "docker-registry"),
                                                bool(body.get("insecure", False)))
        return Response(201, headers=[("Location", f"{API}/registries/{registry.registry_id}")])

    # -- token service ----------------------------------------------------------------------

    def issue_token(self) -> Response:
        if self.params.get("service") != TOKEN_SERVICE:
            return Response(400, f"Unable to handle service: {self.params.get('service')}"
                            .encode(), "text/plain; charset=utf-8")
        if self.account is None and self.headers.get("Authorization"):
            return Response(401, b"", "text/plain; charset=utf-8")
        grants: Dict[str, Set[str]] = {}
        for scope in parse_qs(self.query).get("scope", []):
            for item in scope.split(" "):
                # repository:<name>:<actions>; the name may itself hold a host:port.
                kind, rest = item.partition(":")[0], item.partition(":")[2]
                name, actions = rest.rpartition(":")[0], rest.rpartition(":")[2]
                if kind == "repository" and name:
                    grants[name] = self.allowed_actions(name, set(actions.split(",")))
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.tokens[token] = (self.account, grants)
        return json_response(200, {"token": token, "access_token": token, "expires_in": 1800,
                                   "issued_at": now_iso()})

    def allowed_actions(self, repository: str, wanted: Set[str]) -> Set[str]:
        with self.state.lock:
            project = self.state.projects.get(repository.split("/", 1)[0])
        if project is None:
            return set()
        checks = {"pull": can_read, "push": can_push, "delete": can_delete_repository, "*":
                  can_delete_repository}
        return {a for a in wanted if a in checks and checks[a](self.account, project)}

    # -- /v2/ -------------------------------------------------------------------------------

    def proxy_registry(self) -> None:
        try:
            self.authorize_registry()
            if self.harbor.upstream is None:
                raise HarborFailure(503, "UNKNOWN", "no registry behind this Harbor")
        except HarborFailure as failure:
            failure.headers.append(("Docker-Distribution-Api-Version", "registry/2.0"))
            self.send(envelope(failure))
            return
        self.forward()

    def registry_target(self) -> Tuple[str, str]:
        """(kind, repository): kind is login, catalog or repository, as Harbor's v2auth has it."""
        path = self.route_path
        if path in ("/v2", "/v2/"):
            return "login", ""
        if path == "/v2/_catalog":
            return "catalog", ""
        match = re.match(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)(/.*)?$", path)
        return ("repository", match.group(1)) if match else ("login", "")

    def registry_action(self) -> str:
        if self.command in ("GET", "HEAD"):
            return "pull"
        return "delete" if self.command == "DELETE" else "push"

    def authorize_registry(self) -> None:
        kind, repository = self.registry_target()
        action = self.registry_action()
        if kind == "login" and self.account is None:
            raise self.registry_denied("unauthorized", repository, action)
        if kind == "catalog" and not (self.account and self.account.sysadmin):
            raise self.registry_denied("unauthorized to list catalog", repository, action)
        if kind != "repository":
            return
        if self.command == "HEAD" and not self.headers.get("Authorization"):
            raise self.registry_denied("authorize header needed to send HEAD to repository",
                                       repository, action)
        project = self.state.projects.get(repository.split("/", 1)[0])
        if project is None:
            # Harbor looks the project up before any permission check, and says so in a 401.
            raise HarborFailure(401, "UNAUTHORIZED",
                                f"project {repository.split('/', 1)[0]} not found",
                                [("Www-Authenticate", "")])
        if not self.registry_allows(project, repository, action):
            raise self.registry_denied(
                f"unauthorized to access repository: {repository}, action: {action}",
                repository, action)

    def registry_allows(self, project: Project, repository: str, action: str) -> bool:
        if self.bearer:
            token = self.headers.get("Authorization", "").partition(" ")[2].strip()
            grants = self.state.tokens.get(token, (None, {}))[1]
            return action in grants.get(repository, set())
        checks = {"pull": can_read, "push": can_push, "delete": can_delete_repository}
        return checks[action](self.account, project)

    def registry_denied(self, message: str, repository: str, action: str) -> HarborFailure:
        if self.headers.get("Authorization") or self.route_path == "/v2/_catalog":
            challenge = 'Basic realm="harbor"'
        else:
            actions = "pull,push" if action == "push" else action
            scope = f',scope="repository:{repository}:{actions}"' if repository else ""
            challenge = (f'Bearer realm="{self.harbor.url}/service/token",'
                         f'service="{TOKEN_SERVICE}"{scope}')
        return HarborFailure(401, "UNAUTHORIZED", message, [("Www-Authenticate", challenge)])

    def forward(self) -> None:
        """Relay the request to the registry, streaming both bodies and keeping every header."""
        upstream = self.harbor.upstream_connection()
        try:
            self.send_upstream_request(upstream)
            reply = upstream.getresponse()
            # Recorded before the client has its answer, so a test that reads the state right
            # after a push sees it.
            self.track_push(reply.status)
            self.relay_response(reply)
        finally:
            upstream.close()

    def send_upstream_request(self, upstream: http.client.HTTPConnection) -> None:
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        upstream.putheader("Host", self.harbor.upstream_netloc)
        for name, value in self.headers.items():
            if name.lower() not in HOP_HEADERS:
                upstream.putheader(name, value)
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = self.headers.get("Content-Length")
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        elif length is not None:
            upstream.putheader("Content-Length", length)
        upstream.endheaders()
        self.body_read = True
        if chunked:
            for chunk in read_chunked(self.rfile):
                upstream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            upstream.send(b"0\r\n\r\n")
        elif length:
            for chunk in read_exactly(self.rfile, int(length)):
                upstream.send(chunk)

    def relay_response(self, reply: http.client.HTTPResponse) -> None:
        self.record(reply.status)
        self.send_response(reply.status)
        for name, value in reply.getheaders():
            if name.lower() in HOP_HEADERS:
                continue
            if name.lower() == "location":
                value = self.harbor.rewrite_location(value)
            self.send_header(name, value)
        self.send_header("X-Request-Id", self.request_id)
        self.send_header("Set-Cookie", f"sid={secrets.token_hex(16)}; Path=/; HttpOnly")
        bodyless = self.command == "HEAD" or reply.status in (204, 304)
        if bodyless:
            if reply.length is not None:
                self.send_header("Content-Length", str(reply.length))
            self.end_headers()
            return
        if reply.length is not None:
            self.send_header("Content-Length", str(reply.length))
            self.end_headers()
            while True:
                chunk = reply.read(STREAM_BLOCK)
                if not chunk:
                    break
                self.wfile.write(chunk)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while True:
            chunk = reply.read(STREAM_BLOCK)
            if not chunk:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def track_push(self, status: int) -> None:
        match = re.match(r"^/v2/(.+)/manifests/([^/]+)$", self.route_path)
        if self.command != "PUT" or status != 201 or not match:
            return
        repository, reference = match.groups()
        with self.state.lock:
            project = self.state.projects.get(repository.split("/", 1)[0])
            if project is not None:
                tags = project.repositories.setdefault(repository, set())
                if ":" not in reference:
                    tags.add(reference)


def read_exactly(stream: Any, size: int) -> Iterator[bytes]:
    while size > 0:
        chunk = stream.read(min(size, STREAM_BLOCK))
        if not chunk:
            raise ConnectionError("client closed the connection in the middle of the body")
        size -= len(chunk)
        yield chunk


def read_chunked(stream: Any) -> Iterator[bytes]:
    """Decode a chunked request body, one chunk at a time."""
    while True:
        line = stream.readline(1024)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers carry nothing the registry needs
            return
        yield from read_exactly(stream, size)
        stream.readline(16)


# --------------------------------------------------------------------------------------------
# The server


class _HarborHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], harbor: "HarborServer",
                 tls: Optional[ssl.SSLContext]) -> None:
        self.harbor = harbor
        self.tls = tls
        super().__init__(address, HarborHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request's thread, so a silent client cannot stall accept.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class HarborServer:
    """The fake Harbor, run in a thread; use as a context manager.

    ``upstream`` is the base URL of a plain-HTTP loopback registry that receives ``/v2/``.
    ``cert``/``key`` switch the listener to HTTPS.
    """

    def __init__(self, upstream: Optional[str] = None, *, cert: Optional[str] = None,
                 key: Optional[str] = None, host: str = "127.0.0.1", port: int = 0,
                 record_path: Optional[Path] = None) -> None:
        self.state = HarborState()
        self.upstream = upstream.rstrip("/") if upstream else None
        self.record_path = Path(record_path) if record_path else None
        self._records: List[RequestRecord] = []
        self._faults: List[Fault] = []
        self._log_lock = threading.Lock()
        tls = None
        if cert:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(cert, key)
        self.scheme = "https" if tls else "http"
        self._httpd = _HarborHTTPServer((host, port), self, tls)
        self._thread: Optional[threading.Thread] = None
        self.add_project("library", public=True)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def host(self) -> str:
        address, port = self._httpd.server_address[:2]
        return f"{address}:{port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def start(self) -> "HarborServer":
        # A short poll interval keeps stop() quick; tests start and stop many servers.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="fake-harbor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "HarborServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- request log ------------------------------------------------------------------------

    def record(self, entry: RequestRecord) -> None:
        with self._log_lock:
            self._records.append(entry)
            if self.record_path:
                with self.record_path.open("a") as lines:
                    lines.write(json.dumps(entry.__dict__) + "\n")

    @property
    def requests(self) -> List[RequestRecord]:
        with self._log_lock:
            return list(self._records)

    def writes(self, prefix: str = API + "/") -> List[RequestRecord]:
        """Requests that could change state (POST, PUT, PATCH, DELETE) under ``prefix``."""
        return [r for r in self.requests if r.write and r.path.startswith(prefix)]

    def clear_log(self) -> None:
        with self._log_lock:
            self._records.clear()

    def fail_next(self, method: str, path_regex: str, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``status`` and Harbor's 5xx body."""
        with self._log_lock:
            self._faults.append(Fault(method, re.compile(path_regex), status, times))

    def take_fault(self, method: str, path: str) -> Optional[int]:
        with self._log_lock:
            for fault in self._faults:
                if fault.remaining and fault.method == method and fault.path.search(path):
                    fault.remaining -= 1
                    return fault.status
        return None

    # -- state set-up for tests -------------------------------------------------------------

    def add_project(self, name: str, *, public: bool = False, owner: Account = ADMIN,
                    metadata: Optional[Dict[str, str]] = None, registry_id: Optional[int] = None,
                    storage_limit: int = -1) -> Project:
        merged = {"public": "true" if public else "false", **(metadata or {})}
        with self.state.lock:
            project = Project(self.state.next_id("project"), name, owner, merged, registry_id)
            project.members[owner.name] = ROLE_PROJECT_ADMIN
            self.state.projects[name] = project
            quota_id = self.state.next_id("quota")
            self.state.quotas[quota_id] = Quota(quota_id, project.project_id, storage_limit)
        return project

    def add_member(self, project: str, account: Account, role: int = ROLE_DEVELOPER) -> None:
        with self.state.lock:
            self.state.projects[project].members[account.name] = role

    def add_repository(self, project: str, repository: str,
                       tags: Tuple[str, ...] = ("v1",)) -> None:
        """Pretend a push happened (no upstream content); ``repository`` is without the project."""
        with self.state.lock:
            self.state.projects[project].repositories[f"{project}/{repository}"] = set(tags)

    def add_project_robot(self, project: str, name: str = "push") -> Account:
        robot = Account(f"robot${project}+{name}", secrets.token_urlsafe(16), "project_robot",
                        project=project)
        with self.state.lock:
            self.state.accounts[robot.name] = robot
        return robot

    def add_registry(self, name: str, url: str, type: str = "docker-registry",  # noqa: A002
                     insecure: bool = False) -> Registry:
        with self.state.lock:
            registry = Registry(self.state.next_id("registry"), name, url, type, insecure)
            self.state.registries[registry.registry_id] = registry
        return registry

    def project(self, name: str) -> Optional[Project]:
        with self.state.lock:
            return self.state.projects.get(name)

    def quota(self, name: str) -> Optional[Quota]:
        project = self.project(name)
        return self.state.quota_of(project) if project else None

    # -- upstream registry ------------------------------------------------------------------

    @property
    def upstream_netloc(self) -> str:
        return urlsplit(self.upstream or "").netloc

    def upstream_connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.upstream or "")
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def rewrite_location(self, location: str) -> str:
        """Upload URLs name the registry itself; clients must come back through Harbor."""
        if self.upstream and location.startswith(self.upstream):
            return self.url + location[len(self.upstream):]
        return location

    def delete_upstream(self, repository: str, tags: Set[str]) -> None:
        """Remove a repository's tagged manifests from the registry (best effort)."""
        if not self.upstream:
            return
        accept = ", ".join((
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ))
        for tag in tags:
            connection = self.upstream_connection()
            try:
                connection.request("HEAD", f"/v2/{repository}/manifests/{tag}",
                                   headers={"Accept": accept})
                reply = connection.getresponse()
                reply.read()
                digest = reply.getheader("Docker-Content-Digest")
                if digest:
                    connection.request("DELETE", f"/v2/{repository}/manifests/{digest}")
                    connection.getresponse().read()
            except OSError:
                pass
            finally:
                connection.close()


# --------------------------------------------------------------------------------------------
# Running as a separate process, for shell scripts and ``python -m tests.support``

# Keys of the Ansible vars file, as tests/support/__main__.py writes them for registries,
# plus the robot account and the request log of the fake.
ANSIBLE_KEYS = (
    "registry", "url", "username", "password", "reader_username", "reader_password",
    "robot_username", "robot_password", "project_robot_username", "project_robot_password",
    "ca_path", "client_cert", "client_key", "cert_dir",
    "auth_file", "log", "requests_log", "upstream_url", "mode",
)
READY_TIMEOUT = 60  # seconds; the registry behind may need a few port attempts


def start_harbor(state_dir: Path, name: str, *, tls: bool = False,
                 timeout: float = READY_TIMEOUT) -> dict:
    """Start the fake Harbor and its own loopback registry in a background process.

    Writes ``<state_dir>/<name>.json`` and ``<state_dir>/<name>.yml`` the way
    ``python -m tests.support start`` does for registries (so ``stop`` ends it: the JSON has
    ``pid`` and ``registry_pid``), and returns the JSON state: ``url``, ``registry``
    (host:port), ``username``/``password`` (admin), ``reader_username``/``reader_password``
    (a user that is no administrator), ``robot_username``/``robot_password`` (a system robot),
    ``project_robot_username``/``project_robot_password`` (``robot$library+push``),
    ``ca_path``/``cert_dir`` (HTTPS only), ``auth_file`` (admin, for skopeo), ``log``,
    ``requests_log`` (one JSON line per request) and ``upstream_url``.
    """
    state_dir = Path(state_dir).resolve()
    workdir = state_dir / name
    workdir.mkdir(parents=True, exist_ok=True)
    state_file = state_dir / f"{name}.json"
    state_file.unlink(missing_ok=True)
    log_path = workdir / "harbor.log"
    command = [sys.executable, "-m", "tests.support.harbor_server", "serve",
               f"--state-dir={state_dir}", f"--name={name}"] + (["--tls"] if tls else [])
    with log_path.open("ab") as log:
        # A new session keeps the server alive when the calling shell or CI step exits.
        process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[2],
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state_file.exists():
            return json.loads(state_file.read_text())
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"fake Harbor {name} exited ({process.returncode}):\n{tail}")
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"fake Harbor {name} wrote no {state_file} within {timeout:g} s; "
                       f"see {log_path}")


def serve(state_dir: Path, name: str, tls: bool) -> None:
    """Run Harbor and its registry until SIGTERM or SIGINT (the body of ``start_harbor``)."""
    from tests.support.registry import (  # pylint: disable=import-outside-toplevel
        RegistryServer,
        write_auth_file,
    )

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    workdir = state_dir / name
    cert, key, ca, cert_dir = _server_certs(workdir) if tls else (None, None, None, None)
    with RegistryServer("plain", workdir=workdir / "registry") as registry, \
            HarborServer(registry.url, cert=cert, key=key,
                         record_path=workdir / "requests.jsonl") as harbor:
        auth_file = write_auth_file(workdir / "auth.json", harbor.host, ADMIN.name,
                                    ADMIN.password)
        project_robot = harbor.add_project_robot("library")
        state = {
            "name": name, "pid": os.getpid(), "registry_pid": registry.pid,
            "mode": "harbor", "registry": harbor.host, "url": harbor.url,
            "username": ADMIN.name, "password": ADMIN.password,
            "reader_username": USER.name, "reader_password": USER.password,
            "robot_username": SYSTEM_ROBOT.name, "robot_password": SYSTEM_ROBOT.password,
            "project_robot_username": project_robot.name,
            "project_robot_password": project_robot.password,
            "ca_path": ca, "client_cert": None, "client_key": None, "cert_dir": cert_dir,
            "auth_file": str(auth_file), "log": str(workdir / "harbor.log"),
            "requests_log": str(workdir / "requests.jsonl"), "upstream_url": registry.url,
            "workdir": str(workdir),
        }
        _write_state(state_dir, name, state)
        stopping.wait()


def _server_certs(workdir: Path) -> Tuple[str, str, str, str]:
    from tests.support.certs import (  # pylint: disable=import-outside-toplevel
        generate_certs,
        write_cert_dir,
    )

    bundle = generate_certs(workdir / "certs")
    cert_dir = write_cert_dir(bundle, workdir / "cert-dir")
    return (str(bundle.server_cert), str(bundle.server_key), str(bundle.ca_cert),
            str(cert_dir))


def _write_state(state_dir: Path, name: str, state: dict) -> None:
    variables = "".join(f"{name}_{key}: {json.dumps(state.get(key))}\n" for key in ANSIBLE_KEYS)
    for path, text in ((state_dir / f"{name}.yml", variables),
                       (state_dir / f"{name}.json", json.dumps(state, indent=2))):
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(text)
        temp.chmod(0o600)
        # The JSON file comes last: its presence tells start_harbor that all is ready.
        os.replace(temp, path)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.harbor_server",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "serve"),
                        help="start: in the background; serve: in the foreground")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--name", default="harbor")
    parser.add_argument("--tls", action="store_true", help="HTTPS with a fresh test CA")
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    if args.command == "serve":
        serve(state_dir, args.name, args.tls)
        return 0
    state = start_harbor(state_dir, args.name, tls=args.tls)
    print(f"{args.name}: fake Harbor at {state['url']} (PID {state['pid']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
