# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A client for one registry speaking the OCI distribution / Docker Registry HTTP API v2.

One protocol step per method: ping, manifest get/head/put, blob check/get/mount/upload, tag list.
Every manifest and blob read is checked against its digest before anyone can use it, and every
digest is validated before it is put into a URL.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional
from urllib.parse import urljoin, urlencode

from ansible_collections.airgap.hangar.plugins.module_utils import media_types as mt
from ansible_collections.airgap.hangar.plugins.module_utils.auth import (
    AuthError,
    Authenticator,
    Scopes,
    merge_scopes,
    parse_challenge,
    repository_scope,
)
from ansible_collections.airgap.hangar.plugins.module_utils.credentials import (
    Credentials,
    CredentialStore,
)
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.reference import validate_digest
from ansible_collections.airgap.hangar.plugins.module_utils.tls import CaBundles
from ansible_collections.airgap.hangar.plugins.module_utils.transport import (
    IO_BLOCK,
    BodyTooLarge,
    HttpClient,
    SizedBody,
    TransportError,
    TransportSettings,
    TransportTimeout,
    error_text,
    is_timeout,
    read_capped,
    root_cause,
    safe_url,
)

try:
    import requests
    import urllib3
except ImportError:  # reported by the module through missing_required_lib
    pass

# containers/image caps manifests at 4 MiB; a bigger "manifest" is an attack or a mistake.
MANIFEST_LIMIT = 4 << 20
CONFIG_LIMIT = 4 << 20

# Blobs up to this size go up in one streamed PUT; bigger ones in PATCH chunks, so a broken
# connection costs one chunk, and registries with a request-size limit still take them.
CHUNKED_UPLOAD_THRESHOLD = 512 << 20
UPLOAD_CHUNK = 64 << 20

TAGS_PAGE = 1000

ACCEPT_MANIFESTS = ", ".join(mt.MANIFEST_TYPES)

HTTP_TO_HTTPS_TEXT = "Client sent an HTTP request to an HTTPS server"

HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


class RegistryError(HangarError):
    """A registry answered with an error, or with something that cannot be trusted."""

    def __init__(self, message: str, *, registry: str = "", status: Optional[int] = None,
                 code: str = "") -> None:
        super().__init__(message)
        self.registry = registry
        self.status = status
        self.code = code


class ManifestUnknown(RegistryError):
    """The repository, tag or digest does not exist."""


class AuthenticationRequired(RegistryError):
    """The registry wants credentials, or better ones."""


class ProjectNotFound(AuthenticationRequired):
    """Harbor's answer (401) to a request into a project that does not exist."""


class AccessDenied(RegistryError):
    """The credentials are valid but not allowed to do this."""


class DigestMismatch(RegistryError):
    """Content does not hash to the digest it was asked for or announced with."""


class UnsupportedMediaType(RegistryError):
    """A manifest of a type this collection cannot copy."""


class BlobUploadFailed(RegistryError):
    """An upload session failed; it can be restarted from the beginning."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as served: its bytes are what gets pushed and hashed."""

    raw: bytes
    media_type: str
    digest: str

    @property
    def document(self) -> dict:
        return json.loads(self.raw)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))

    @property
    def is_index(self) -> bool:
        return mt.is_index(self.media_type)


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{HASHES[algorithm](data).hexdigest()}"


def is_digest(ident: str) -> bool:
    return ident.startswith(("sha256:", "sha512:"))


def manifest_media_type(raw: bytes, content_type: str, where: str) -> str:
    """The media type of a manifest, cross-checked between header and body (CVE-2021-41190)."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise RegistryError(f"manifest of {where} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise RegistryError(f"manifest of {where} is not a JSON object")
    if "manifests" in document and ("layers" in document or "config" in document):
        raise RegistryError(f"manifest of {where} is ambiguous: it has both manifests and layers")
    declared = document.get("mediaType") or ""
    header = content_type.split(";", 1)[0].strip()
    if header in mt.MANIFEST_TYPES:
        if declared and declared != header:
            raise RegistryError(
                f"manifest of {where} says mediaType {declared} but was served as {header}")
        return header
    media_type = declared or _guess_media_type(document)
    if media_type not in mt.MANIFEST_TYPES:
        raise UnsupportedMediaType(
            f'unsupported MIME type "{media_type or header}" for {where}; supported: '
            + ", ".join(mt.MANIFEST_TYPES))
    return media_type


def _guess_media_type(document: dict) -> str:
    if document.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1_SIGNED if "signatures" in document else mt.DOCKER_SCHEMA1
    if "manifests" in document:
        return mt.OCI_INDEX
    if "layers" in document:
        return mt.OCI_MANIFEST
    return ""


class BlobStream:
    """Streams one blob, verifying size and digest, resuming with Range after a broken read."""

    def __init__(self, client: "RegistryClient", repository: str, digest: str,
                 size: Optional[int]) -> None:
        self.client = client
        self.repository = repository
        self.digest = validate_digest(digest)
        self.size = size
        self._hash = HASHES[digest.split(":", 1)[0]]()
        self.received = 0

    def __iter__(self) -> Iterator[bytes]:
        failures = 0
        while True:
            response = self.client.blob_response(self.repository, self.digest, self.received)
            try:
                yield from self._read(response)
                break
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                failures += 1
                if failures > self.client.http.settings.retries:
                    raise self._broken(exc, failures) from exc
            finally:
                response.close()
        self._verify()

    def _broken(self, exc: BaseException, failures: int) -> TransportError:
        where = f"blob {self.digest} from {self.client.registry}/{self.repository}"
        attempts = f"at byte {self.received} ({failures} attempts)"
        if is_timeout(exc):
            return TransportTimeout(
                f"download of {where} stalled {attempts}: no data for "
                f"{self.client.settings.timeout:g} s; raise the timeout option if the registry "
                "is slow", self.client.registry)
        return TransportError(f"download of {where} broke {attempts}: {root_cause(exc)}",
                              self.client.registry)

    def _read(self, response: Any) -> Iterator[bytes]:
        skip = self._resume_offset(response)
        for chunk in response.raw.stream(IO_BLOCK, decode_content=False):
            if skip:
                chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                if not chunk:
                    continue
            self.received += len(chunk)
            if self.size is not None and self.received > self.size:
                raise DigestMismatch(self._mismatch(f"more than the {self.size} bytes announced"))
            self._hash.update(chunk)
            yield chunk

    def _resume_offset(self, response: Any) -> int:
        """Bytes to drop from a response: a 200 restarts from zero, a 206 starts where asked."""
        if self.received == 0 or response.status_code == 206:
            return 0
        return self.received

    def _verify(self) -> None:
        if self.size is not None and self.received != self.size:
            raise DigestMismatch(self._mismatch(f"{self.received} bytes, expected {self.size}"))
        got = f"{self.digest.split(':', 1)[0]}:{self._hash.hexdigest()}"
        if got != self.digest:
            raise DigestMismatch(self._mismatch(f"content hashes to {got}"))

    def _mismatch(self, detail: str) -> str:
        return (f"digest did not match for blob {self.digest} of {self.client.registry}/"
                f"{self.repository}: {detail}")


class RegistryClient:
    """Talks to one registry. Safe to share between the worker threads of one module run."""

    def __init__(self, registry: str, *, credentials: Optional[CredentialStore] = None,
                 settings: Optional[TransportSettings] = None,
                 bundles: Optional[CaBundles] = None,
                 secret_sink: Optional[Callable[[str], None]] = None) -> None:
        self.scheme, self.registry = split_scheme(registry)
        self.api_host = "registry-1.docker.io" if self.registry == "docker.io" else self.registry
        self.settings = settings or TransportSettings()
        self.http = HttpClient(self.api_host, self.settings, bundles)
        self.credential_store = credentials or CredentialStore()
        self._sink = secret_sink
        self._auth: Optional[Authenticator] = None
        # Auth files may hold credentials per namespace (host/project); one Authenticator per
        # set of credentials, found once per repository.
        self._repository_auth: Dict[str, Authenticator] = {}
        self._auth_lock = threading.Lock()
        self._base_url = ""
        self._detect_lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    # -- connection -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        with self._detect_lock:
            if not self._base_url:
                self._base_url = self._detect_scheme()
            return self._base_url

    @property
    def auth(self) -> Authenticator:
        if self._auth is None:
            credentials = self.credential_store.lookup(self.registry)
            self._auth = Authenticator(self.registry, self.http, credentials, self._sink)
        return self._auth

    def auth_for(self, repository: str) -> Authenticator:
        """The authenticator with the most specific credentials for ``repository``."""
        with self._auth_lock:
            found = self._repository_auth.get(repository)
            if found is None:
                found = self._new_auth_for(repository)
                self._repository_auth[repository] = found
        # The registry's challenge is learnt once, by the host-wide authenticator.
        found.challenge = self.auth.challenge
        return found

    def _new_auth_for(self, repository: str) -> Authenticator:
        credentials = self.credential_store.lookup(self.registry, repository)
        if credentials == self.auth.credentials:
            return self.auth
        for known in self._repository_auth.values():
            if known.credentials == credentials:
                return known
        return Authenticator(self.registry, self.http, credentials, self._sink)

    def _detect_scheme(self) -> str:
        """HTTPS unless told http://; fall back to HTTP only when TLS checks are off."""
        if self.scheme == "http":
            self._ping("http")
            return f"http://{self.api_host}"
        try:
            self._ping("https")
            return f"https://{self.api_host}"
        except TransportError:
            if self.scheme == "https" or self.settings.tls.validate_certs:
                raise
        self._ping("http")
        return f"http://{self.api_host}"

    def _ping(self, scheme: str) -> None:
        url = f"{scheme}://{self.api_host}/v2/"
        response = self.http.request("GET", url)
        body = error_text(response) if response.status_code != 200 else ""
        if response.status_code == 401:
            self.auth.challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        elif response.status_code == 400 and HTTP_TO_HTTPS_TEXT in body:
            raise RegistryError(
                f"HTTP request to an HTTPS server: {self.registry} only speaks HTTPS. Write the "
                f"registry without http:// and give its CA (ca_path) if it is self-signed",
                registry=self.registry, status=400)
        elif response.status_code != 200 or _is_html(response):
            # A captive portal or a web server answers 200 with a page to every path; a
            # registry answers /v2/ with JSON (or nothing), never with HTML.
            raise RegistryError(
                f"{scheme}://{self.api_host}/v2/ answered {response.status_code}"
                f"{_html_hint(response)}: {self.registry} does not look like a registry",
                registry=self.registry, status=response.status_code)
        response.close()

    # -- requests -------------------------------------------------------------------------------

    def request(self, method: str, repository: str, path: str, *, push: bool = False,
                extra_scopes: Iterable[str] = (), headers: Optional[dict] = None,
                data: Any = None, stream: bool = False, url: str = "",
                replayable: Optional[bool] = None) -> Any:
        """Send an authorised request; on 401 refresh or widen the token once and resend."""
        scopes = frozenset([repository_scope(repository, "pull,push" if push else "pull")])
        scopes = merge_scopes(scopes, frozenset(extra_scopes))
        target = url or self.base_url + path
        can_resend = data is None or isinstance(data, bytes)
        self.base_url  # pylint: disable=pointless-statement  # the ping sets the challenge
        auth = self.auth_for(repository)
        for attempt in range(2):
            response = self._send(auth, method, target, scopes, headers, data, stream,
                                  replayable)
            if response.status_code != 401 or attempt or not can_resend:
                return response
            scopes = self._reauthorize(auth, response, scopes)
            response.close()
        return response

    def _send(self, auth: Authenticator, method: str, url: str, scopes: Scopes,
              headers: Optional[dict], data: Any, stream: bool,
              replayable: Optional[bool]) -> Any:
        headers = dict(headers or {})
        authorization = auth.header(scopes)
        if authorization:
            headers["Authorization"] = authorization
        return self.http.request(method, url, headers=headers, data=data, stream=stream,
                                 replayable=replayable)

    def _reauthorize(self, auth: Authenticator, response: Any, scopes: Scopes) -> Scopes:
        """Learn from a 401: a new challenge, wider scopes, or an expired token."""
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        auth.forget(scopes)
        if challenge is None:
            return scopes
        if self.auth.challenge is None or challenge.scheme != self.auth.challenge.scheme:
            self.auth.challenge = auth.challenge = challenge
        if challenge.error == "insufficient_scope" and challenge.scopes:
            return merge_scopes(scopes, challenge.scopes)
        return scopes

    def fail(self, response: Any, operation: str, target: str) -> RegistryError:
        """Build the error for an unexpected answer; ``target`` is repository[:tag|@digest]."""
        status = response.status_code
        code, message = registry_error(response)
        where = f"{self.registry}/{target}"
        if status == 401:
            kind = ProjectNotFound if _harbor_missing_project(message) else \
                AuthenticationRequired
            return kind(self._auth_message(operation, where, message),
                        registry=self.registry, status=status, code=code)
        if status == 403 or code == "DENIED":
            return AccessDenied(
                f"{operation} {where}: access denied ({message or 'forbidden'}); the credentials "
                f"from {self._credentials_of(target).source} are not allowed to do this",
                registry=self.registry, status=status, code=code)
        detail = f"{code}: {message}" if code else (message or response.reason or "")
        if status == 429:
            return RegistryError(
                f"{operation} {where}: rate limited by {self.registry} (429 {detail}), still "
                f"after {self.settings.retries} retries; lower jobs or try again later",
                registry=self.registry, status=status, code=code)
        return RegistryError(
            f"{operation} {where}: {status} {detail}{_html_hint(response)}".rstrip(),
            registry=self.registry, status=status, code=code)

    def _auth_message(self, operation: str, where: str, message: str) -> str:
        project = _harbor_missing_project(message)
        if project:
            return (f"{operation} {where}: project {project} not found on {self.registry}. "
                    "Create it first (create_projects: true does that on Harbor)")
        credentials = self._credentials_of(where[len(self.registry) + 1:])
        if credentials.anonymous:
            return (f"{operation} {where}: authentication required by {self.registry}; tried "
                    f"no credentials (searched {self.credential_store.describe_sources()}). "
                    "Give the username and password options of this side, or an auth_file "
                    "with an entry for this registry")
        return (f"{operation} {where}: authentication required by {self.registry}; tried "
                f"{credentials.source}, which it refused; check the user name and password")

    def _credentials_of(self, target: str) -> Credentials:
        """The credentials used for ``target`` (repository[:tag|@digest])."""
        repository = target.split("@", maxsplit=1)[0]
        head, slash, last = repository.rpartition("/")
        return self.auth_for(head + slash + last.split(":", maxsplit=1)[0]).credentials

    # -- manifests ------------------------------------------------------------------------------

    def get_manifest(self, repository: str, ident: str) -> Manifest:
        """Fetch a manifest by tag or digest and prove its bytes match the digest."""
        where = f"{self.registry}/{repository}{_ident_suffix(ident)}"
        raw, content_type, announced = self._fetch_manifest(repository, ident, where)
        if "html" in content_type.lower():
            raise RegistryError(
                f"{where} answered with an HTML page, not a manifest: this is a web server or "
                "proxy, not the registry API; check the registry address", registry=self.registry)
        # Hash before parsing: bytes changed on the way are a digest mismatch, whatever they
        # parse as.
        digest = self._verified_manifest_digest(raw, ident, announced, where)
        media_type = manifest_media_type(raw, content_type, where)
        return Manifest(raw, media_type, digest)

    def _fetch_manifest(self, repository: str, ident: str, where: str) -> tuple:
        """(bytes, Content-Type, Docker-Content-Digest); a body that breaks is fetched again."""
        path = f"/v2/{repository}/manifests/{_checked_ident(ident)}"
        for attempt in range(1 + self.settings.retries):
            response = self.request("GET", repository, path,
                                    headers={"Accept": ACCEPT_MANIFESTS}, stream=True)
            with response:
                if response.status_code == 404:
                    raise self._unknown(response, where)
                if response.status_code != 200:
                    raise self.fail(response, "fetching manifest of",
                                    repository + _ident_suffix(ident))
                try:
                    raw = read_capped(response, MANIFEST_LIMIT, f"the manifest of {where}")
                except BodyTooLarge:
                    raise
                except TransportError:
                    if attempt == self.settings.retries:
                        raise
                    continue
                return (raw, response.headers.get("Content-Type", ""),
                        response.headers.get("Docker-Content-Digest", ""))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _verified_manifest_digest(self, raw: bytes, ident: str, announced: str, where: str) -> str:
        if is_digest(ident):
            digest = compute_digest(raw, ident.split(":", 1)[0])
            if digest != ident:
                raise DigestMismatch(
                    f"manifest does not match the digest asked for: {where} hashes to {digest}",
                    registry=self.registry)
            return digest
        digest = compute_digest(raw)
        if announced.startswith("sha256:") and announced != digest:
            raise DigestMismatch(
                f"manifest of {where} hashes to {digest} but the registry announced {announced}",
                registry=self.registry)
        return digest

    def _unknown(self, response: Any, where: str) -> ManifestUnknown:
        code, message = registry_error(response)
        detail = f" ({message})" if message and message != "manifest unknown" else ""
        return ManifestUnknown(
            f"manifest unknown: {where} does not exist{detail}; check the repository name "
            "and tag",
            registry=self.registry, status=404, code=code or "MANIFEST_UNKNOWN")

    def head_manifest(self, repository: str, ident: str) -> Optional[Descriptor]:
        """The descriptor at a tag or digest, or None when absent; one request when possible."""
        path = f"/v2/{repository}/manifests/{_checked_ident(ident)}"
        response = self.request("HEAD", repository, path, headers={"Accept": ACCEPT_MANIFESTS})
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, "checking manifest of", repository + _ident_suffix(ident))
        digest = response.headers.get("Docker-Content-Digest", "")
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        size = response.headers.get("Content-Length", "")
        if not is_digest(digest) or media_type not in mt.MANIFEST_TYPES:
            # Some registries omit the digest on HEAD; the full GET is the reliable answer.
            return self.get_manifest(repository, ident).descriptor
        return Descriptor(media_type, validate_digest(digest), int(size) if size.isdigit() else 0)

    def put_manifest(self, repository: str, ident: str, raw: bytes, media_type: str) -> str:
        """Push manifest bytes unchanged; the registry must store them under their digest."""
        digest = compute_digest(raw)
        path = f"/v2/{repository}/manifests/{_checked_ident(ident)}"
        response = self.request("PUT", repository, path, push=True, data=raw,
                                headers={"Content-Type": media_type})
        with response:
            if response.status_code not in (200, 201, 202):
                raise self.fail(response, "pushing manifest to", repository + _ident_suffix(ident))
            stored = response.headers.get("Docker-Content-Digest", "")
        if stored.startswith("sha256:") and stored != digest:
            raise DigestMismatch(
                f"{self.registry}/{repository} stored the manifest as {stored}, expected {digest}",
                registry=self.registry)
        return digest

    def list_tags(self, repository: str) -> List[str]:
        """All tags of a repository, following ``Link`` pagination."""
        tags: List[str] = []
        url = f"{self.base_url}/v2/{repository}/tags/list?" + urlencode({"n": TAGS_PAGE})
        while url:
            response = self.request("GET", repository, "", url=url)
            with response:
                if response.status_code == 404:
                    return tags
                if response.status_code != 200:
                    raise self.fail(response, "listing tags of", repository)
                page = json.loads(read_capped(response, MANIFEST_LIMIT, "tag list") or b"{}")
                link = response.headers.get("Link", "")
            tags.extend(page.get("tags") or [])
            url = _next_link(link, url)
        return tags

    # -- blobs ----------------------------------------------------------------------------------

    def blob_size(self, repository: str, digest: str) -> Optional[int]:
        """The size of a blob in a repository, or None when the repository lacks it."""
        path = f"/v2/{repository}/blobs/{validate_digest(digest)}"
        response = self.request("HEAD", repository, path)
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, "checking blob", f"{repository}@{digest}")
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else 0

    def blob_response(self, repository: str, digest: str, offset: int = 0) -> Any:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        path = f"/v2/{repository}/blobs/{validate_digest(digest)}"
        response = self.request("GET", repository, path, headers=headers, stream=True)
        if response.status_code not in (200, 206):
            with response:
                raise self.fail(response, "fetching blob", f"{repository}@{digest}")
        return response

    def open_blob(self, repository: str, digest: str, size: Optional[int] = None) -> BlobStream:
        return BlobStream(self, repository, digest, size)

    def read_blob(self, repository: str, digest: str, limit: int = CONFIG_LIMIT) -> bytes:
        """A small blob (a config) read whole, after its digest is verified."""
        data = bytearray()
        for chunk in self.open_blob(repository, digest):
            data.extend(chunk)
            if len(data) > limit:
                raise RegistryError(f"blob {digest} of {self.registry}/{repository} is larger "
                                    f"than the {limit} bytes allowed for it")
        return bytes(data)

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> bool:
        """Ask the registry to link a blob it holds in another repository; True when it did."""
        query = urlencode({"mount": validate_digest(digest), "from": source_repository})
        response = self.request(
            "POST", repository, f"/v2/{repository}/blobs/uploads/?{query}", push=True,
            extra_scopes=[repository_scope(source_repository, "pull")], replayable=True)
        with response:
            if response.status_code == 201:
                return True
            location = response.headers.get("Location", "")
        if response.status_code == 202 and location:
            self._cancel_upload(repository, urljoin(response.url, location))
        return False

    def upload_blob(self, repository: str, digest: str, size: int,
                    open_source: Callable[[int], Iterable[bytes]]) -> None:
        """Upload a blob whose bytes come from ``open_source(offset)``.

        A failed session is restarted from the beginning; the source verifies its own digest,
        and the registry verifies it again at the final PUT.
        """
        validate_digest(digest)
        attempts = 1 + self.settings.retries
        for attempt in range(attempts):
            try:
                self._upload_once(repository, digest, size, open_source)
                return
            except (BlobUploadFailed, TransportError):
                if attempt == attempts - 1:
                    raise

    def _upload_once(self, repository: str, digest: str, size: int,
                     open_source: Callable[[int], Iterable[bytes]]) -> None:
        location = self._start_upload(repository)
        if size > CHUNKED_UPLOAD_THRESHOLD:
            location = self._patch_chunks(repository, digest, location, open_source(0), size)
            body: Any = b""
        else:
            body = SizedBody(open_source(0), size)
        self._commit_upload(repository, location, digest, body)

    def _start_upload(self, repository: str) -> str:
        response = self.request("POST", repository, f"/v2/{repository}/blobs/uploads/",
                                push=True, replayable=True)
        with response:
            if response.status_code != 202 or not response.headers.get("Location"):
                raise self.fail(response, "starting blob upload to", repository)
            return urljoin(response.url, response.headers["Location"])

    def _patch_chunks(self, repository: str, digest: str, location: str,
                      chunks: Iterable[bytes], size: int) -> str:
        # Each PATCH streams its share of the source, so memory stays at one I/O block.
        stream = _PieceStream(chunks, f"{repository}@{digest}")
        for offset in range(0, size, UPLOAD_CHUNK):
            length = min(UPLOAD_CHUNK, size - offset)
            headers = {"Content-Type": "application/octet-stream",
                       "Content-Range": f"{offset}-{offset + length - 1}"}
            body = SizedBody(stream.take(length), length)
            response = self.request("PATCH", repository, "", url=location, push=True,
                                    headers=headers, data=body, replayable=False)
            with response:
                if response.status_code not in (201, 202):
                    raise self._upload_error(response, repository, digest, "sending a chunk of")
                location = urljoin(location, response.headers.get("Location", location))
        return location

    def _commit_upload(self, repository: str, location: str, digest: str, body: Any) -> None:
        separator = "&" if "?" in location else "?"
        url = location + separator + urlencode({"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        response = self.request("PUT", repository, "", url=url, push=True, headers=headers,
                                data=body, replayable=False)
        with response:
            if response.status_code != 201:
                raise self._upload_error(response, repository, digest, "finishing upload of")

    def _upload_error(self, response: Any, repository: str, digest: str,
                      operation: str) -> RegistryError:
        error = self.fail(response, operation, f"{repository}@{digest}")
        if response.status_code >= 500 or response.status_code in (404, 408, 416, 429):
            return BlobUploadFailed(str(error), registry=self.registry,
                                    status=response.status_code, code=error.code)
        return error

    def _cancel_upload(self, repository: str, location: str) -> None:
        # distribution wants a delete scope to cancel, which push tokens lack: ignore failures.
        try:
            self.request("DELETE", repository, "", url=location, push=True).close()
        except (RegistryError, TransportError, AuthError):
            pass


def split_scheme(registry: str) -> tuple:
    """``http://host:5000`` → ("http", "host:5000"); a bare host has no forced scheme."""
    for scheme in ("http", "https"):
        prefix = scheme + "://"
        if registry.startswith(prefix):
            return scheme, registry[len(prefix):].rstrip("/")
    return "", registry.rstrip("/")


def registry_error(response: Any) -> tuple:
    """(code, message) of the first error in a registry's JSON error body, if any."""
    text = error_text(response) if response.request.method != "HEAD" else ""
    try:
        errors = json.loads(text).get("errors") or []
        first = errors[0]
        return str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, AttributeError, IndexError, TypeError):
        return "", text.strip()[:200] if not _is_html(response) else ""


def _is_html(response: Any) -> bool:
    return "html" in response.headers.get("Content-Type", "").lower()


def _html_hint(response: Any) -> str:
    if not _is_html(response):
        return ""
    return (f" (an HTML page from {safe_url(response.url)}: this is a web server or proxy, "
            "not the registry API; check the registry address)")


def _harbor_missing_project(message: str) -> str:
    """Harbor answers a push into a missing project with 401 'project <p> not found'."""
    words = message.split()
    if len(words) >= 4 and words[0] == "project" and words[-2:] == ["not", "found"]:
        return " ".join(words[1:-2])
    return ""


def _checked_ident(ident: str) -> str:
    if is_digest(ident):
        return validate_digest(ident)
    if not ident or "/" in ident or "?" in ident or "#" in ident:
        raise RegistryError(f'invalid tag "{ident}"')
    return ident


def _ident_suffix(ident: str) -> str:
    return f"@{ident}" if is_digest(ident) else f":{ident}"


def _next_link(link: str, current: str) -> str:
    """The URL of ``Link: <...>; rel="next"``, resolved against the current page."""
    for part in link.split(","):
        if 'rel="next"' in part and "<" in part and ">" in part:
            return urljoin(current, part[part.index("<") + 1:part.index(">")])
    return ""


class _PieceStream:
    """Consecutive pieces of one byte stream, each read straight through without buffering.

    Each iterator from take() must be used up before the next is asked for, as sequential
    PATCH requests do.
    """

    def __init__(self, chunks: Iterable[bytes], what: str) -> None:
        self._chunks = iter(chunks)
        self._carry = b""
        self._what = what

    def take(self, length: int) -> Iterator[bytes]:
        while length > 0:
            chunk = self._carry or next(self._chunks, b"")
            if not chunk:
                raise BlobUploadFailed(f"the source of {self._what} ended {length} bytes early")
            head, self._carry = chunk[:length], chunk[length:]
            length -= len(head)
            yield head
