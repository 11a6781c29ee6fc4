# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references, registry names and digests, decomposed the way Hangar does it.

A reference is ``[REGISTRY/][PROJECT/]NAME[:TAG][@DIGEST]``. Hangar always expands it to
``registry/project/name:tag`` (``nginx`` is ``docker.io/library/nginx:latest``), so a
``Reference`` here always has a repository of at least two path components.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Tuple

from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DEFAULT_PROJECT = "library"
DEFAULT_TAG = "latest"

# Hosts that all name Docker Hub; references and credentials use the short one.
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")

# Many clients (distribution among them) refuse a "registry/repository" longer than this.
MAX_NAME_LENGTH = 255

DIGEST_RE = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")

_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST_RE = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::([0-9]+))?$")
_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

_REFERENCE_FORM = "[REGISTRY/][PROJECT/]NAME[:TAG][@DIGEST], e.g. docker.io/library/nginx:1.25"
_COMPONENT_RULE = "a-z, 0-9, separators . _ __ -"
TAG_RULE = "up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -"
_DIGEST_RULE = "sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"


class ReferenceError(HangarError, ValueError):
    """An image reference, registry name or digest that cannot be used.

    ``text`` is the offending input and ``problem`` says what is wrong with it and what a valid
    one looks like; the message joins them as ``invalid <what> "<text>": <problem>``.
    """

    def __init__(self, what: str, text: str, problem: str) -> None:
        super().__init__(f'invalid {what} "{text}": {problem}')
        self.what = what
        self.text = text
        self.problem = problem


def validate_digest(text: str) -> str:
    """Return ``text`` if it is a sha256 or sha512 digest in lowercase hex, else raise.

    Call it before a digest reaches a URL or a file path: a crafted digest could otherwise
    point a request or a write somewhere else.
    """
    if not isinstance(text, str) or not DIGEST_RE.match(text):
        raise ReferenceError("digest", str(text), f"expected {_DIGEST_RULE}")
    return text


def digest_hex(digest: str) -> str:
    """The hex part of a validated digest (``sha256:ab..`` gives ``ab..``)."""
    return validate_digest(digest).split(":", 1)[1]


@dataclasses.dataclass(frozen=True)
class Reference:
    """A fully expanded image reference: ``registry/repository[:tag][@digest]``.

    Every instance is valid: construction checks the registry, each repository component, the
    tag and the digest. ``explicit_registry`` is False when the registry was a default rather
    than written in the text; it takes no part in equality.
    """

    registry: str
    repository: str
    tag: Optional[str] = None
    digest: Optional[str] = None
    explicit_registry: bool = dataclasses.field(default=True, compare=False)

    def __post_init__(self) -> None:
        problem = _parts_problem(self.registry, self.repository, self.tag, self.digest)
        if problem:
            raise ReferenceError("image reference", _join(self), problem)

        # One spelling per registry, so equal references compare and hash equal.
        object.__setattr__(self, "registry", _canonical_host(self.registry))

    def __str__(self) -> str:
        return _join(self)

    @property
    def project(self) -> str:
        """The first repository component (Hangar's project, a Harbor project name)."""
        return self.repository.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The repository after the project; may itself hold ``/`` (``b/c/image``)."""
        return self.repository.split("/", 1)[1]

    @property
    def ident(self) -> str:
        """What goes in ``/v2/<repository>/manifests/<ident>``: the digest, else the tag."""
        return self.digest or self.tag_or_latest

    @property
    def tag_or_latest(self) -> str:
        return self.tag or DEFAULT_TAG

    @property
    def qualified_repository(self) -> str:
        """``registry/repository`` without tag or digest, the ``source`` of Hangar's index."""
        return f"{self.registry}/{self.repository}"

    def replace(self, **changes: object) -> Reference:
        return dataclasses.replace(self, **changes)

    def with_project(self, project: str) -> Reference:
        """Hangar's project override: the first repository component becomes ``project``."""
        if "/" in project or not COMPONENT_RE.match(project):
            raise ReferenceError(
                "project",
                project,
                f"a project is one lowercase repository component ({_COMPONENT_RULE})",
            )
        return self.replace(repository=f"{project}/{self.name}")

    def with_registry(self, registry: str) -> Reference:
        """The same repository in ``registry`` (``host[:port]``, no scheme)."""
        return self.replace(registry=normalize_registry(registry), explicit_registry=True)

    def with_tag(self, tag: str) -> Reference:
        """The reference to ``tag`` in the same repository.

        A digest pin is dropped: the result names what a push to the tag writes, and a kept
        digest would make ``ident`` point the push at the digest instead.
        """
        return self.replace(tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        """The reference pinned to ``digest``; the tag is kept for messages."""
        return self.replace(digest=digest)


def parse_reference(text: str, default_registry: str = DEFAULT_REGISTRY) -> Reference:
    """Decompose ``text`` as Hangar does, validate it and return the expanded reference.

    Path segments map to registry and repository by Hangar's table: 1 segment is
    ``<default>/library/<name>``; 2 segments take the first as registry only when it looks like
    one (has ``.`` or ``:``, or is ``localhost``); 3 segments always take the first as registry;
    more than 3 take it only when it looks like one. The tag defaults to ``latest`` unless a
    digest is given.
    """
    default = normalize_registry(default_registry)
    try:
        return _parse(text.strip(), default)
    except ReferenceError as exc:
        # Helpers see only a piece of the text; the user needs to see all of it.
        raise ReferenceError("image reference", text, exc.problem) from None


def normalize_registry(text: str) -> str:
    """``host[:port]`` with a lowercase host and Docker Hub aliases mapped to ``docker.io``.

    A trailing ``/`` is dropped; a scheme or a path is an error, since a registry option that
    takes a scheme goes through ``split_registry_url`` first.
    """
    host = text.strip().rstrip("/")
    if _SCHEME_RE.match(host):
        problem = "give host[:port] without a scheme, e.g. 127.0.0.1:5000"
        raise ReferenceError("registry", text, problem)

    problem = _registry_problem(host)
    if problem:
        raise ReferenceError("registry", text, problem)
    return _canonical_host(host)


def split_registry_url(text: str) -> Tuple[Optional[str], str]:
    """Split an option value like ``http://127.0.0.1:5000`` into ``("http", "127.0.0.1:5000")``.

    Without a scheme the first item is None and the caller picks one (HTTPS, or its TLS
    option). Only ``http`` and ``https`` are accepted.
    """
    scheme, sep, rest = text.strip().partition("://")
    if not sep:
        return None, normalize_registry(text)

    if scheme.lower() not in ("http", "https"):
        raise ReferenceError("registry", text, "the scheme must be http:// or https://")

    try:
        return scheme.lower(), normalize_registry(rest)
    except ReferenceError as exc:
        raise ReferenceError("registry", text, exc.problem) from None


def registry_api_host(registry: str) -> str:
    """The host that serves ``/v2/`` for ``registry``: Docker Hub's API lives elsewhere."""
    return DOCKER_HUB_API_HOST if registry == DEFAULT_REGISTRY else registry


def looks_like_registry(segment: str) -> bool:
    """Hangar's test for a registry as first path segment: a dot, a colon, or ``localhost``."""
    return "." in segment or ":" in segment or segment == "localhost"


def _parse(text: str, default_registry: str) -> Reference:
    _check_text(text)

    path, digest = _split_digest(text)
    path, tag = _split_tag(path)
    if tag is None and digest is None:
        tag = DEFAULT_TAG

    registry, repository = _split_path(path)
    return Reference(
        registry=registry or default_registry,
        repository=repository,
        tag=tag,
        digest=digest,
        explicit_registry=registry is not None,
    )


def _check_text(text: str) -> None:
    if not text:
        raise ReferenceError("image reference", text, f"it is empty; write {_REFERENCE_FORM}")

    if any(char.isspace() for char in text):
        raise ReferenceError(
            "image reference", text, f"it contains whitespace; write {_REFERENCE_FORM}"
        )

    if _SCHEME_RE.match(text):
        raise ReferenceError(
            "image reference",
            text,
            "a reference takes no URL scheme; drop it here and put it on the *_registry "
            "option instead (e.g. dest_registry: http://127.0.0.1:5000)",
        )


def _split_digest(text: str) -> Tuple[str, Optional[str]]:
    path, sep, digest = text.partition("@")
    if not sep:
        return text, None
    if not digest:
        problem = f'the digest after "@" is empty; expected {_DIGEST_RULE}'
        raise ReferenceError("image reference", text, problem)
    return path, digest


def _split_tag(path: str) -> Tuple[str, Optional[str]]:
    # Only the last segment can hold the tag: a colon before the last "/" is a registry port.
    head, slash, last = path.rpartition("/")
    name, colon, tag = last.partition(":")
    if not colon:
        return path, None
    if not tag:
        problem = 'the tag after ":" is empty; give one (e.g. :latest) or drop the ":"'
        raise ReferenceError("image reference", path, problem)
    return f"{head}{slash}{name}", tag


def _split_path(path: str) -> Tuple[Optional[str], str]:
    """Return the registry written in ``path`` (None when defaulted) and the repository."""
    segments = path.split("/")
    if "" in segments:
        problem = 'a path component is empty (a leading, trailing or double "/")'
        raise ReferenceError("image reference", path, problem)

    count = len(segments)
    first = segments[0]
    if count == 1:
        return None, f"{DEFAULT_PROJECT}/{first}"
    if count == 2:
        if looks_like_registry(first):
            return first, f"{DEFAULT_PROJECT}/{segments[1]}"
        return None, path
    if count == 3 and not looks_like_registry(first) and _registry_problem(first):
        raise ReferenceError(
            "image reference",
            path,
            f'with three path components the first one is the registry, and "{first}" is not '
            f"a valid host[:port]; write the registry in front (e.g. docker.io/{path})",
        )
    if count == 3 or looks_like_registry(first):
        return first, "/".join(segments[1:])
    return None, path


def _parts_problem(
    registry: str, repository: str, tag: Optional[str], digest: Optional[str]
) -> Optional[str]:
    """Why these parts make no valid reference, or None when they do."""
    registry_problem = _registry_problem(registry)
    if registry_problem:
        return f'registry "{registry}": {registry_problem}'

    problem = _repository_problem(repository)
    if problem:
        return problem

    if tag is not None and not TAG_RE.match(tag):
        return f'tag "{tag}" is invalid: use {TAG_RULE}'

    if digest is not None and not DIGEST_RE.match(digest):
        return f'digest "{digest}" is invalid: expected {_DIGEST_RULE}'

    length = len(registry) + 1 + len(repository)
    if length > MAX_NAME_LENGTH:
        return f'"registry/repository" is {length} characters long; the limit is {MAX_NAME_LENGTH}'
    return None


def _repository_problem(repository: str) -> Optional[str]:
    components = repository.split("/")
    if len(components) < 2:
        return (
            f'repository "{repository}" needs a project and a name, e.g. library/{repository}'
        )

    for component in components:
        if COMPONENT_RE.match(component):
            continue
        if COMPONENT_RE.match(component.lower()):
            return f"repository must be lowercase ({_COMPONENT_RULE})"
        return f'repository component "{component}" is invalid: use {_COMPONENT_RULE}'
    return None


def _registry_problem(host: str) -> Optional[str]:
    if "/" in host:
        return "a registry is host[:port] without a path; put the path in the repository"

    match = _HOST_RE.match(host)
    if not match:
        return "expected host[:port] (letters, digits, - and . in the host, or [IPv6])"

    port = match.group(1)
    if port is not None and not 0 < int(port) < 65536:
        return f"port {port} is out of range 1-65535"
    return None


def _canonical_host(host: str) -> str:
    host = host.lower()
    return DEFAULT_REGISTRY if host in DOCKER_HUB_ALIASES else host


def _join(ref: Reference) -> str:
    text = f"{ref.registry}/{ref.repository}"
    if ref.tag is not None:
        text = f"{text}:{ref.tag}"
    if ref.digest is not None:
        text = f"{text}@{ref.digest}"
    return text
