# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Harbor 2.x REST client: detection, credential checks, projects, repositories and quotas.

Harbor hides bad credentials: a wrong password is treated as an anonymous caller, who sees only
public projects. Every decision about a private project therefore starts with
:meth:`HarborClient.account`, which fails on rejected credentials instead of letting a project
look absent. Projects are always addressed by name with ``X-Is-Resource-Name: true`` (an
all-digit name would otherwise be read as an ID), and no cookie is ever kept: Harbor answers
CSRF 403 to API writes that carry its session cookie.

The second half turns ``harbor_project`` options into Harbor requests: normalising metadata
(string booleans, absent keys), comparing only what the user set, and planning the writes so
that check mode can stop right before them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.airgap.hangar.plugins.module_utils.auth import basic_header
from ansible_collections.airgap.hangar.plugins.module_utils.credentials import (
    ANONYMOUS,
    Credentials,
)
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.transport import (
    HttpClient,
    TransportError,
    TransportSettings,
    error_text,
    read_capped,
)

API_PATH = "/api/v2.0"

PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MAX_PROJECT_NAME = 255

# Harbor's quota ceiling (1024 TB); -1 means unlimited.
MAX_STORAGE = 1024 ** 5
UNLIMITED = -1

# A page of 100 projects is a few tens of KiB; anything near this cap is not Harbor.
JSON_LIMIT = 8 << 20
PAGE_SIZE = 100

SEVERITIES = ("none", "low", "medium", "high", "critical")

# Option name of harbor_project -> Harbor metadata key; all values are the strings "true"/"false".
BOOLEAN_OPTIONS = {
    "public": "public",
    "auto_scan": "auto_scan",
    "content_trust": "enable_content_trust",
    "content_trust_cosign": "enable_content_trust_cosign",
    "prevent_vulnerable": "prevent_vul",
    "reuse_sys_cve_allowlist": "reuse_sys_cve_allowlist",
    "auto_sbom_generation": "auto_sbom_generation",
}

SIZE_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5}
SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Errors


class HarborError(HangarError):
    """A Harbor request failed or cannot be made; the message says which, where and why."""

    def __init__(self, message: str, *, status: Optional[int] = None, code: str = "",
                 harbor_message: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.harbor_message = harbor_message
        self.request_id = request_id


class HarborAuthError(HarborError):
    """Harbor rejected or needs credentials (401)."""


class HarborForbidden(HarborError):
    """The account may not do this (403)."""


class HarborReadOnly(HarborForbidden):
    """Harbor is in read-only mode: no project, quota or image may change."""


class HarborNotFound(HarborError):
    """The project, repository, quota or registry endpoint does not exist (404)."""


class HarborConflict(HarborError):
    """The resource already exists (409)."""


class HarborPrecondition(HarborError):
    """Harbor refused because of the resource's state, e.g. a project that holds images (412)."""


class HarborInvalid(HarborError):
    """A value is not acceptable to Harbor (400/422 or checked before sending)."""


class NotHarbor(HarborError):
    """The URL does not serve the Harbor 2.x API."""


ERRORS_BY_STATUS = {
    400: HarborInvalid, 401: HarborAuthError, 403: HarborForbidden, 404: HarborNotFound,
    409: HarborConflict, 412: HarborPrecondition, 422: HarborInvalid,
}


@dataclass(frozen=True)
class Diagnostic:
    """What Harbor said about a failed request: status, error code, message and request ID."""

    status: int
    code: str = ""
    message: str = ""
    request_id: str = ""

    def __str__(self) -> str:
        text = " ".join(part for part in (str(self.status), self.code, self.message) if part)
        return f"{text} (X-Request-Id {self.request_id})" if self.request_id else text


def diagnostic_of(response: Any) -> Diagnostic:
    """Parse Harbor's ``{"errors":[{"code","message"}]}`` envelope; tolerate anything else."""
    request_id = response.headers.get("X-Request-Id", "")
    text = error_text(response)
    try:
        first = json.loads(text)["errors"][0]
        return Diagnostic(response.status_code, str(first.get("code", "")),
                          str(first.get("message", "")), request_id)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return Diagnostic(response.status_code, "", text.strip()[:200], request_id)


def error_for(diagnostic: Diagnostic, what: str, hint: str = "") -> HarborError:
    cls = ERRORS_BY_STATUS.get(diagnostic.status, HarborError)
    if diagnostic.status == 403 and diagnostic.code == "DENIED" and "read only" in \
            diagnostic.message:
        cls = HarborReadOnly
    message = f"{what} failed: {diagnostic}"
    if hint:
        message = f"{message}. {hint}"
    return cls(message, status=diagnostic.status, code=diagnostic.code,
               harbor_message=diagnostic.message, request_id=diagnostic.request_id)


# --------------------------------------------------------------------------------------------
# Values


def validate_project_name(name: str) -> str:
    """Refuse a name Harbor would refuse, before any request is sent."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_PROJECT_NAME:
        raise HarborInvalid(
            f"Harbor project name {name!r} is invalid: it must be 1 to {MAX_PROJECT_NAME} "
            "characters long")
    if not PROJECT_NAME.match(name):
        raise HarborInvalid(
            f"Harbor project name {name!r} is invalid: it must match {PROJECT_NAME.pattern} "
            "(lower case letters and digits, single '.', '_' or '-' between them)")
    return name


def parse_storage(value: Any) -> int:
    """Bytes from an int or a size such as ``10G``; units are binary (1K = 1024 bytes).

    ``-1`` means unlimited. Harbor accepts 1 byte to 1024 TB.
    """
    if isinstance(value, bool):
        raise HarborInvalid(f"storage quota {value!r} is not a size")
    if isinstance(value, int):
        size = value
    else:
        text = str(value).strip()
        if text == str(UNLIMITED):
            return UNLIMITED
        match = SIZE_PATTERN.match(text)
        if not match:
            raise HarborInvalid(
                f"storage quota {value!r} is not a size: give bytes, -1 for unlimited, or a "
                "number with a binary unit such as 500M, 10G or 1.5T")
        size = int(float(match.group(1)) * SIZE_UNITS[match.group(2).upper()])
    if size == UNLIMITED or 1 <= size <= MAX_STORAGE:
        return size
    raise HarborInvalid(
        f"storage quota {value!r} is out of range: Harbor accepts -1 (unlimited) or 1 byte to "
        "1024T")


def metadata_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def metadata_bool(metadata: Dict[str, Any], key: str) -> bool:
    """Harbor omits boolean keys that were never set; absent means false."""
    return str(metadata.get(key, "false")).lower() == "true"


def project_base_url(url_or_host: str) -> Tuple[str, str]:
    """(scheme or "", host[:port]) of a Harbor address; a path such as /api/v2.0 is dropped."""
    text = (url_or_host or "").strip()
    if "://" not in text and text.split("/", 1)[0]:
        return "", text.split("/", 1)[0]
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HarborInvalid(
            f"Harbor address {url_or_host!r} is not usable: write https://host[:port], "
            "http://host[:port] or host[:port]")
    return parts.scheme, parts.netloc


@dataclass(frozen=True)
class Account:
    """Who the credentials belong to, as far as Harbor tells: a user (maybe admin) or a robot."""

    username: str
    robot: bool = False
    sysadmin: bool = False

    @property
    def project_robot(self) -> bool:
        # Project robots are named robot$<project>+<name>; system robots have no '+'.
        return self.robot and "+" in self.username


@dataclass(frozen=True)
class Quota:
    hard: int
    used: int
    quota_id: Optional[int] = None


# --------------------------------------------------------------------------------------------
# The client


class HarborClient:
    """Talks to the Harbor API at ``base_url`` (scheme://host[:port]) with one account."""

    def __init__(self, base_url: str, http: HttpClient,
                 credentials: Optional[Credentials] = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.credentials = credentials or ANONYMOUS
        self._account: Optional[Account] = None
        self._system_info: Optional[dict] = None

    # -- finding Harbor ---------------------------------------------------------------------

    @classmethod
    def detect(cls, url_or_host: str, settings: TransportSettings,
               credentials: Optional[Credentials] = None) -> Optional["HarborClient"]:
        """A client when ``url_or_host`` serves Harbor 2.x, None when it is another registry.

        HTTPS is tried first; plain HTTP only when the address says ``http://``, or as a
        fallback when certificate validation is off (as skopeo treats insecure registries).
        Connection failures other than that fallback are raised as transport errors.
        """
        scheme, host = project_base_url(url_or_host)
        http = HttpClient(host, settings)
        schemes = [scheme] if scheme else ["https"]
        if not scheme and not settings.tls.validate_certs:
            schemes.append("http")
        for position, candidate in enumerate(schemes):
            last = position == len(schemes) - 1
            client = cls(f"{candidate}://{host}", http, credentials)
            try:
                if client.is_harbor(retry=last):
                    return client
                http.close()
                return None
            except TransportError:
                if last:
                    http.close()
                    raise
            except HarborError:
                http.close()
                raise
        return None

    @classmethod
    def connect(cls, url_or_host: str, settings: TransportSettings,
                credentials: Optional[Credentials] = None) -> "HarborClient":
        """Like :meth:`detect`, but a host that is not Harbor is an error."""
        client = cls.detect(url_or_host, settings, credentials)
        if client is None:
            raise NotHarbor(
                f"{url_or_host} does not serve the Harbor 2.x API: GET {API_PATH}/ping did not "
                "answer 'Pong'. Check the address; Harbor 1.x is not supported")
        return client

    def is_harbor(self, retry: bool = True) -> bool:
        """Ping answers ``Pong`` and systeminfo is a JSON object: both, since proxies lie.

        Without ``retry`` a host that does not answer is given up at once, so that the next
        scheme can be tried.
        """
        ping = self.http.request("GET", self.api_url("/ping"), stream=True, replayable=retry)
        if ping.status_code >= 500:
            # A plain registry answers 404 here; a busy or broken Harbor must not pass as one.
            raise error_for(diagnostic_of(ping), f"checking whether {self.base_url} is Harbor",
                            "Try again when the server is healthy")
        body = read_capped(ping, 1024, "Harbor ping answer") if ping.status_code == 200 else b""
        ping.close()
        if body.strip() != b"Pong":
            return False
        info = self.http.request("GET", self.api_url("/systeminfo"), stream=True,
                                 headers=self.headers())
        if info.status_code != 200:
            info.close()
            return False
        document = self.parse_json(info, "Harbor system information")
        if not isinstance(document, dict) or "auth_mode" not in document:
            return False
        self._system_info = document
        return True

    def close(self) -> None:
        self.http.close()

    # -- requests ---------------------------------------------------------------------------

    def api_url(self, path: str, params: Optional[Dict[str, Any]] = None) -> str:
        url = f"{self.base_url}{API_PATH}{path}"
        return f"{url}?{urlencode(params)}" if params else url

    def headers(self, by_name: bool = False) -> Dict[str, str]:
        headers = {"Accept": "application/json"}
        if not self.credentials.anonymous:
            headers["Authorization"] = basic_header(self.credentials)
        if by_name:
            headers["X-Is-Resource-Name"] = "true"
        return headers

    def call(self, method: str, path: str, what: str, *, ok: Tuple[int, ...] = (200,),
             params: Optional[Dict[str, Any]] = None, body: Any = None,
             by_name: bool = False, hint: str = "") -> Any:
        """Send one API request; raise the matching HarborError unless the status is in ``ok``."""
        headers = self.headers(by_name)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        response = self.http.request(method, self.api_url(path, params), headers=headers,
                                     data=data, stream=True)
        if response.status_code not in ok:
            raise error_for(diagnostic_of(response), f"{what} on {self.base_url}", hint)
        return response

    def parse_json(self, response: Any, what: str) -> Any:
        raw = read_capped(response, JSON_LIMIT, what)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HarborError(f"{what} from {self.base_url} is not JSON: {exc}") from exc

    def get_json(self, path: str, what: str, **kwargs: Any) -> Any:
        return self.parse_json(self.call("GET", path, what, **kwargs), what)

    def pages(self, path: str, what: str, params: Optional[Dict[str, Any]] = None,
              by_name: bool = False) -> Iterator[dict]:
        """Every item of a paged list, following X-Total-Count rather than an empty page."""
        page = 1
        while True:
            query = dict(params or {}, page=page, page_size=PAGE_SIZE)
            response = self.call("GET", path, what, params=query, by_name=by_name)
            items = self.parse_json(response, what) or []
            yield from items
            total = response.headers.get("X-Total-Count", "")
            done = int(total) <= page * PAGE_SIZE if total.isdigit() else len(items) < PAGE_SIZE
            if done or not items:
                return
            page += 1

    # -- account and system -----------------------------------------------------------------

    def system_info(self) -> dict:
        """systeminfo as the account sees it (read_only and the creation restriction need auth)."""
        if self._system_info is None:
            self._system_info = self.get_json("/systeminfo", "reading Harbor system information")
        return self._system_info

    @property
    def read_only(self) -> bool:
        return bool(self.system_info().get("read_only"))

    @property
    def admin_only_creation(self) -> bool:
        return self.system_info().get("project_creation_restriction") == "adminonly"

    def account(self) -> Account:
        """Check the credentials once; a rejected password is an error, never "anonymous"."""
        if self._account is not None:
            return self._account
        if self.credentials.anonymous:
            raise HarborAuthError(
                f"Harbor at {self.base_url} needs credentials to manage projects: give a user "
                "name and password (or a robot account and its secret)")
        response = self.call("GET", "/users/current", "checking the Harbor credentials",
                             ok=(200, 401, 412))
        if response.status_code == 401:
            response.close()
            raise HarborAuthError(
                f"Harbor at {self.base_url} rejected the credentials of "
                f"{self.credentials.username!r} (GET {API_PATH}/users/current answered 401). "
                "Harbor treats wrong credentials as anonymous, so check the user name and "
                "password before trusting any 'project absent' answer")
        if response.status_code == 412:
            # Harbor answers 412 only to a robot that authenticated; the secret is right.
            response.close()
            self._account = Account(self.credentials.username, robot=True)
        else:
            user = self.parse_json(response, "the current Harbor user")
            self._account = Account(user.get("username", self.credentials.username),
                                    sysadmin=bool(user.get("sysadmin_flag")))
        return self._account

    def require_writable(self) -> None:
        if self.read_only:
            raise HarborReadOnly(
                f"Harbor at {self.base_url} is in read-only mode (systeminfo read_only: true): "
                "no project, quota or image can change until an administrator turns it off")

    def require_creation_allowed(self, name: str) -> None:
        """Explain up front what Harbor would refuse with a bare 403."""
        account = self.account()
        if account.project_robot:
            raise HarborForbidden(
                f"cannot create Harbor project {name!r}: {account.username} is a project robot "
                "account and only system robots or users can create projects")
        if self.admin_only_creation and not account.robot and not account.sysadmin:
            raise HarborForbidden(
                f"cannot create Harbor project {name!r}: Harbor at {self.base_url} lets only "
                f"system administrators create projects (project_creation_restriction: "
                f"adminonly) and {account.username} is not one. Ask an administrator to create "
                "it, or use an administrator account")

    # -- projects ---------------------------------------------------------------------------

    def project_exists(self, name: str) -> bool:
        """Exact existence check; HEAD needs authentication, so a bad password cannot pass."""
        validate_project_name(name)
        response = self.call("HEAD", "/projects", f"checking whether Harbor project {name!r} "
                             "exists", ok=(200, 404), params={"project_name": name})
        response.close()
        return response.status_code == 200

    def get_project(self, name: str) -> Optional[dict]:
        """The project, or None when it does not exist.

        Harbor answers 404 for a missing project only to system administrators; everyone else,
        robots included, gets 403 for missing and forbidden projects alike.
        """
        validate_project_name(name)
        what = f"reading Harbor project {name!r}"
        response = self.call("GET", f"/projects/{quote(name)}", what, ok=(200, 403, 404),
                             by_name=True)
        if response.status_code == 200:
            return self.parse_json(response, what)
        forbidden = diagnostic_of(response)
        if response.status_code == 404 or not self.project_exists(name):
            return None
        raise error_for(forbidden, f"{what} on {self.base_url}",
                        f"{self.credentials.username} is not a member of the project; add the "
                        "account to it or use an administrator account")

    def create_project(self, name: str, *, public: bool = False,
                       metadata: Optional[Dict[str, Any]] = None,
                       storage_limit: Optional[int] = None,
                       registry_id: Optional[int] = None) -> None:
        """Create a project; raises HarborConflict when it already exists."""
        validate_project_name(name)
        strings = {key: metadata_string(value) for key, value in (metadata or {}).items()}
        strings.setdefault("public", metadata_string(public))
        body: Dict[str, Any] = {"project_name": name, "metadata": strings}
        if storage_limit is not None:
            body["storage_limit"] = storage_limit
        if registry_id is not None:
            body["registry_id"] = registry_id
        self.call("POST", "/projects", f"creating Harbor project {name!r}", ok=(201,),
                  body=body, hint=self.creation_hint(registry_id)).close()

    def creation_hint(self, registry_id: Optional[int]) -> str:
        if registry_id is not None:
            return "Only Harbor system administrators can create proxy cache projects"
        if self._system_info and self.admin_only_creation:
            return ("Harbor lets only system administrators create projects "
                    "(project_creation_restriction: adminonly)")
        return ""

    def update_project(self, name: str, metadata: Dict[str, Any]) -> None:
        """Set metadata keys; Harbor keeps the keys that are not sent."""
        strings = {key: metadata_string(value) for key, value in metadata.items()}
        self.call("PUT", f"/projects/{quote(name)}", f"updating Harbor project {name!r}",
                  body={"metadata": strings}, by_name=True).close()

    def delete_project(self, name: str, purge: bool = False) -> bool:
        """Delete a project (its repositories first when ``purge``); False when it was absent."""
        validate_project_name(name)
        if purge and self.project_exists(name):
            for repository in self.list_repositories(name):
                self.delete_repository(name, repository)
        what = f"deleting Harbor project {name!r}"
        response = self.call("DELETE", f"/projects/{quote(name)}", what,
                             ok=(200, 403, 404, 412), by_name=True)
        if response.status_code == 200:
            response.close()
            return True
        refusal = diagnostic_of(response)
        where = f"{what} on {self.base_url}"
        if response.status_code == 412:
            raise error_for(refusal, where, "The project still contains repositories; delete "
                            "them first (purge)")
        # 403 also hides a missing project from accounts that are not system administrators.
        if response.status_code == 403 and self.project_exists(name):
            raise error_for(refusal, where, "Only project admins and system administrators "
                            "can delete a project")
        return False

    def ensure_projects(self, names: List[str], *, check_mode: bool) -> List[str]:
        """Create the missing projects as private ones; return those created (or to create).

        A project created by someone else between the check and the POST (409) counts as
        present. Raises HarborError naming the project when Harbor would not allow it.
        """
        wanted = []
        for name in names:
            if validate_project_name(name) not in wanted:
                wanted.append(name)
        self.account()
        missing = [name for name in wanted if not self.project_exists(name)]
        if missing:
            self.require_writable()
        created = []
        for name in missing:
            self.require_creation_allowed(name)
            if not check_mode and not self.create_if_absent(name):
                continue
            created.append(name)
        return created

    def create_if_absent(self, name: str) -> bool:
        try:
            self.create_project(name, public=False)
        except HarborConflict:
            return False
        return True

    # -- repositories -----------------------------------------------------------------------

    def list_repositories(self, project: str) -> List[str]:
        """Full repository names (``project/repo``) of a project."""
        items = self.pages(f"/projects/{quote(project)}/repositories",
                           f"listing the repositories of Harbor project {project!r}",
                           by_name=True)
        return [item["name"] for item in items]

    def delete_repository(self, project: str, repository: str) -> None:
        """Delete ``project/repo`` with all its artifacts; an absent repository is fine."""
        short = repository[len(project) + 1:] if repository.startswith(project + "/") \
            else repository
        # Harbor decodes the path once before routing, so a '/' inside must be sent as %252F.
        encoded = quote(quote(short, safe=""), safe="")
        self.call("DELETE", f"/projects/{quote(project)}/repositories/{encoded}",
                  f"deleting repository {project}/{short} from Harbor", ok=(200, 404),
                  by_name=True).close()

    # -- quotas -----------------------------------------------------------------------------

    def project_quota(self, name: str) -> Optional[Quota]:
        """Hard and used storage from the project summary, which project members can read."""
        summary = self.get_json(f"/projects/{quote(name)}/summary",
                                f"reading the summary of Harbor project {name!r}", by_name=True)
        quota = summary.get("quota") if isinstance(summary, dict) else None
        if not quota:
            return None
        return Quota(int(quota.get("hard", {}).get("storage", UNLIMITED)),
                     int(quota.get("used", {}).get("storage", 0)))

    def quota_of(self, project_id: int) -> Quota:
        """The quota object (with its ID) of a project; reading it needs a system admin."""
        items = self.get_json("/quotas", f"reading the quota of Harbor project {project_id}",
                              params={"reference": "project", "reference_id": project_id},
                              hint=self.quota_hint())
        if not items:
            raise HarborNotFound(f"Harbor at {self.base_url} has no quota for project "
                                 f"ID {project_id}")
        item = items[0]
        return Quota(int(item["hard"]["storage"]), int(item.get("used", {}).get("storage", 0)),
                     int(item["id"]))

    def set_storage_quota(self, project_id: int, storage: int) -> None:
        quota = self.quota_of(project_id)
        self.call("PUT", f"/quotas/{quota.quota_id}",
                  f"setting the storage quota of Harbor project {project_id}",
                  body={"hard": {"storage": storage}}, hint=self.quota_hint()).close()

    @staticmethod
    def quota_hint() -> str:
        return "Only Harbor system administrators can read and change quotas"

    # -- registry endpoints (proxy cache) ---------------------------------------------------

    def find_registry(self, name_or_id: str) -> dict:
        """A registry endpoint by ID or exact name (the name filter of the API is fuzzy)."""
        hint = "Only Harbor system administrators can list registry endpoints"
        text = str(name_or_id)
        if text.isdigit():
            return self.get_json(f"/registries/{text}", f"reading Harbor registry endpoint "
                                 f"{text}", hint=hint)
        for item in self.pages("/registries", "listing Harbor registry endpoints",
                               params={"q": f"name={text}"}):
            if item.get("name") == text:
                return item
        raise HarborNotFound(
            f"Harbor at {self.base_url} has no registry endpoint named {text!r}; create it "
            "under Administration > Registries first")

    def registry_name(self, registry_id: int) -> str:
        """The name of a registry endpoint, or its ID as text when it cannot be read."""
        try:
            return str(self.find_registry(str(registry_id)).get("name", registry_id))
        except HarborError:
            return str(registry_id)


# --------------------------------------------------------------------------------------------
# harbor_project: desired state, comparison and the plan


@dataclass(frozen=True)
class ProjectSpec:
    """What the user asked for; None means "not managed" for every field."""

    name: str
    booleans: Dict[str, bool] = field(default_factory=dict)
    severity: Optional[str] = None
    storage_quota: Optional[int] = None
    proxy_cache_registry: Optional[str] = None

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> "ProjectSpec":
        booleans = {opt: params[opt] for opt in BOOLEAN_OPTIONS if params.get(opt) is not None}
        quota = params.get("storage_quota")
        registry = params.get("proxy_cache_registry")
        spec = cls(
            name=validate_project_name(params["name"]),
            booleans=booleans,
            severity=params.get("severity"),
            storage_quota=parse_storage(quota) if quota not in (None, "") else None,
            proxy_cache_registry=str(registry) if registry not in (None, "") else None,
        )
        spec.check_consistency()
        return spec

    def check_consistency(self) -> None:
        if self.proxy_cache_registry and self.booleans.get("content_trust"):
            raise HarborInvalid(
                f"Harbor project {self.name!r}: content_trust cannot be enabled on a proxy cache "
                "project; Harbor drops that setting, so it could never converge")

    def metadata(self) -> Dict[str, str]:
        """The Harbor metadata keys this spec manages, as Harbor's strings."""
        wanted = {BOOLEAN_OPTIONS[opt]: metadata_string(v) for opt, v in self.booleans.items()}
        if self.severity is not None:
            wanted["severity"] = self.severity
        return wanted

    def managed_keys(self) -> List[str]:
        keys = list(self.booleans)
        keys += [k for k in ("severity", "storage_quota", "proxy_cache_registry")
                 if getattr(self, k) is not None]
        return keys


def normalize_project(project: dict, quota: Optional[Quota],
                      registry_name: Optional[str] = None) -> dict:
    """A project as the module returns it: booleans as booleans, quota in bytes."""
    metadata = project.get("metadata") or {}
    normalized: Dict[str, Any] = {
        "name": project.get("name"),
        "project_id": project.get("project_id"),
        "owner_name": project.get("owner_name"),
        "repo_count": project.get("repo_count", 0),
        "creation_time": project.get("creation_time"),
        "update_time": project.get("update_time"),
        "registry_id": project.get("registry_id") or None,
        "proxy_cache_registry": registry_name,
        "severity": (metadata.get("severity") or "").lower() or None,
        "storage_quota": quota.hard if quota else None,
        "storage_used": quota.used if quota else None,
        "metadata": dict(metadata),
    }
    for option, key in BOOLEAN_OPTIONS.items():
        normalized[option] = metadata_bool(metadata, key)
    return normalized


def metadata_changes(current: Dict[str, Any], spec: ProjectSpec) -> Dict[str, str]:
    """Metadata keys whose value differs, comparing normalised values (absent = false)."""
    changes = {}
    for key, value in spec.metadata().items():
        if key == "severity":
            have = str(current.get(key) or "").lower()
        else:
            have = "true" if metadata_bool(current, key) else "false"
        if have != value:
            changes[key] = value
    return changes


def managed_view(normalized: dict, spec: ProjectSpec, state: str) -> dict:
    """Only the keys the user manages, for the diff."""
    view = {"name": spec.name, "state": state}
    if state == "present":
        view.update({key: normalized.get(key) for key in spec.managed_keys()})
    return view


@dataclass
class ProjectResult:
    changed: bool
    project: dict
    before: dict
    after: dict
    actions: List[str] = field(default_factory=list)

    @property
    def project_id(self) -> Optional[int]:
        return self.project.get("project_id")


class ProjectManager:
    """Brings one Harbor project to the state of a spec; check mode stops before each write."""

    def __init__(self, client: HarborClient, check_mode: bool) -> None:
        self.client = client
        self.check_mode = check_mode

    def present(self, spec: ProjectSpec) -> ProjectResult:
        self.client.account()
        current = self.client.get_project(spec.name)
        if current is None:
            return self.create(spec)
        return self.update(spec, current)

    def absent(self, name: str, purge: bool) -> ProjectResult:
        validate_project_name(name)
        self.client.account()
        current = self.client.get_project(name)
        gone = {"name": name, "state": "absent"}
        if current is None:
            return ProjectResult(False, {}, gone, gone)
        repositories = self.client.list_repositories(name) if current.get("repo_count") else []
        if repositories and not purge:
            raise HarborPrecondition(
                f"cannot delete Harbor project {name!r}: it still contains "
                f"{len(repositories)} repositories ({', '.join(repositories[:5])}). Set "
                "purge: true to delete them with the project")
        self.client.require_writable()
        actions = [f"deleted repository {r}" for r in repositories]
        actions.append(f"deleted project {name}")
        if not self.check_mode:
            for repository in repositories:
                self.client.delete_repository(name, repository)
            self.client.delete_project(name)
        before = {"name": name, "state": "present"}
        return ProjectResult(True, {}, before, gone, actions)

    # -- creation ---------------------------------------------------------------------------

    def create(self, spec: ProjectSpec) -> ProjectResult:
        self.client.require_writable()
        self.client.require_creation_allowed(spec.name)
        registry = self.proxy_registry(spec)
        self.check_quota_allowed(spec)
        predicted = self.predicted(spec, registry)
        before = {"name": spec.name, "state": "absent"}
        after = managed_view(predicted, spec, "present")
        actions = [f"created project {spec.name}"]
        if self.check_mode:
            return ProjectResult(True, predicted, before, after, actions)
        self.post_project(spec, registry)
        project, quota = self.read(spec.name)
        if spec.storage_quota is not None and (quota is None or quota.hard != spec.storage_quota):
            self.client.set_storage_quota(project["project_id"], spec.storage_quota)
            project, quota = self.read(spec.name)
        normalized = normalize_project(project, quota, registry and registry.get("name"))
        return ProjectResult(True, normalized, before, managed_view(normalized, spec, "present"),
                             actions)

    def post_project(self, spec: ProjectSpec, registry: Optional[dict]) -> None:
        metadata: Dict[str, Any] = {"public": "false", **spec.metadata()}
        try:
            self.client.create_project(
                spec.name, metadata=metadata, storage_limit=spec.storage_quota,
                registry_id=registry["id"] if registry else None)
        except HarborConflict as exc:
            raise HarborConflict(
                f"Harbor project {spec.name!r} was created by someone else while this task "
                "ran; run the task again to converge it") from exc

    def proxy_registry(self, spec: ProjectSpec) -> Optional[dict]:
        if spec.proxy_cache_registry is None:
            return None
        account = self.client.account()
        if not account.sysadmin and not account.robot:
            raise HarborForbidden(
                f"cannot create proxy cache project {spec.name!r}: only Harbor system "
                f"administrators can, and {account.username} is not one")
        return self.client.find_registry(spec.proxy_cache_registry)

    def check_quota_allowed(self, spec: ProjectSpec) -> None:
        account = self.client.account()
        if spec.storage_quota is not None and not account.sysadmin and not account.robot:
            raise HarborForbidden(
                f"cannot set storage_quota of Harbor project {spec.name!r}: only system "
                f"administrators can change quotas and {account.username} is not one. Leave "
                "storage_quota unset or use an administrator account")

    def predicted(self, spec: ProjectSpec, registry: Optional[dict]) -> dict:
        """What a created project will look like, for check mode."""
        metadata = {"public": "false", **spec.metadata()}
        project = {"name": spec.name, "project_id": None, "repo_count": 0, "metadata": metadata,
                   "registry_id": registry["id"] if registry else None}
        quota = Quota(spec.storage_quota, 0) if spec.storage_quota is not None else None
        return normalize_project(project, quota, registry and registry.get("name"))

    # -- update -----------------------------------------------------------------------------

    def update(self, spec: ProjectSpec, current: dict) -> ProjectResult:
        quota = self.client.project_quota(spec.name)
        registry_name = self.check_proxy_unchanged(spec, current)
        normalized = normalize_project(current, quota, registry_name)
        changes = metadata_changes(current.get("metadata") or {}, spec)
        quota_change = spec.storage_quota is not None and (
            quota is None or quota.hard != spec.storage_quota)
        before = managed_view(normalized, spec, "present")
        if not changes and not quota_change:
            return ProjectResult(False, normalized, before, before)
        self.client.require_writable()
        if quota_change:
            self.check_quota_allowed(spec)
        actions = self.update_actions(spec.name, changes, quota_change, spec.storage_quota)
        if self.check_mode:
            after = self.apply_locally(normalized, changes, spec.storage_quota if quota_change
                                       else None)
            return ProjectResult(True, after, before, managed_view(after, spec, "present"),
                                 actions)
        self.write(spec, current["project_id"], changes, quota_change)
        project, quota = self.read(spec.name)
        after = normalize_project(project, quota, registry_name)
        return ProjectResult(True, after, before, managed_view(after, spec, "present"), actions)

    def write(self, spec: ProjectSpec, project_id: int, changes: Dict[str, str],
              quota_change: bool) -> None:
        if changes:
            self.client.update_project(spec.name, changes)
        if quota_change:
            self.client.set_storage_quota(project_id, spec.storage_quota)

    def check_proxy_unchanged(self, spec: ProjectSpec, current: dict) -> Optional[str]:
        """proxy_cache_registry is create-only; returns the current registry's name, if any."""
        current_id = current.get("registry_id") or None
        if spec.proxy_cache_registry is None:
            return self.client.registry_name(current_id) if current_id else None
        wanted = self.client.find_registry(spec.proxy_cache_registry)
        if wanted.get("id") == current_id:
            return str(wanted.get("name"))
        have = f"registry endpoint {self.client.registry_name(current_id)!r}" if current_id \
            else "no registry (it is not a proxy cache project)"
        raise HarborInvalid(
            f"proxy_cache_registry of Harbor project {spec.name!r} can only be set when the "
            f"project is created: it has {have} and {spec.proxy_cache_registry!r} was asked. "
            "Delete the project and create it again to change it")

    @staticmethod
    def update_actions(name: str, changes: Dict[str, str], quota_change: bool,
                       storage: Optional[int]) -> List[str]:
        actions = [f"set {key}={value} on project {name}" for key, value in sorted(
            changes.items())]
        if quota_change:
            actions.append(f"set storage quota of project {name} to {storage} bytes")
        return actions

    @staticmethod
    def apply_locally(normalized: dict, changes: Dict[str, str],
                      storage: Optional[int]) -> dict:
        metadata = dict(normalized["metadata"], **changes)
        project = {key: normalized[key] for key in ("name", "project_id", "owner_name",
                                                    "repo_count", "creation_time",
                                                    "update_time", "registry_id")}
        project["metadata"] = metadata
        hard = storage if storage is not None else normalized["storage_quota"]
        quota = Quota(hard, normalized["storage_used"] or 0) if hard is not None else None
        return normalize_project(project, quota, normalized["proxy_cache_registry"])

    def read(self, name: str) -> Tuple[dict, Optional[Quota]]:
        project = self.client.get_project(name)
        if project is None:
            raise HarborNotFound(f"Harbor project {name!r} disappeared while this task ran")
        return project, self.client.project_quota(name)
