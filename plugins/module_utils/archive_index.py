# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hangar archive index (``index.json``, schema v1.2.0) and the archive error family.

Hangar writes ``index.json`` with Go's ``json.Marshal``: compact, keys in struct-field order,
empty values omitted, map keys sorted, ``time`` always present. ``to_json()`` reproduces that so
an index we write reads like one Hangar wrote. ``from_json()`` checks what a load relies on (the
version, every digest that becomes a member name, tags that become helper tags) and keeps keys
it does not know, on the index, an image entry and a spec, so a rewrite loses nothing.

Our one extension is ``SOURCE_INDEX_KEY`` on an image entry: the descriptor
(``mediaType``, ``digest``, ``size``) of the source's top-level index or manifest list, whose
bytes are stored as an ordinary blob ``share/sha256/<hex>``. A load that keeps every platform
can push those original bytes and so keep the tag digest. Hangar's reader ignores the key (Go
matches JSON keys to field names case-insensitively; a key with ``.`` and ``/`` matches none) and
drops it when Hangar itself rewrites the index (``sync``, ``merge``); the blob then stays unused.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.media_types import (
    ATTESTATION_SUBJECT_KEY,
    ATTESTATION_TYPE,
    ATTESTATION_TYPE_KEY,
)

INDEX_VERSION = "v1.2.0"
SOURCE_INDEX_KEY = "airgap.hangar/sourceIndex"

# Stricter than reference.validate_digest: archive member names are built from these and
# Hangar's loader hard-codes share/sha256/, so only lowercase sha256 is accepted.
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_SEMVER_RE = re.compile(
    r"v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
)
_RFC3339_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})"
)
_UNKNOWN = "unknown"


class ArchiveError(HangarError):
    """Reading or writing a Hangar archive failed."""


class ArchiveFormatError(ArchiveError):
    """The archive's structure, member names, index or version is not usable."""


class ArchiveDigestError(ArchiveError):
    """Content does not match the sha256 digest or size it is stored under."""


class ArchiveMissingBlobError(ArchiveError):
    """A member the index refers to is not in the archive."""


class ArchiveSpaceError(ArchiveError):
    """The file system holding the archive is out of space."""


def _validate_digest(text: object) -> str:
    if not isinstance(text, str) or not _DIGEST_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not a lowercase sha256 digest")
    return text


def digest_hex(digest: object, where: str) -> str:
    """Return the hex part of a sha256 digest, or raise ArchiveFormatError naming ``where``."""
    try:
        return _validate_digest(digest).split(":", 1)[1]
    except ValueError as exc:
        raise ArchiveFormatError(
            f"{where}: {exc}; only digests of the form sha256:<64 lowercase hex> can name "
            "archive members; fix the index or re-save the image"
        ) from exc


def format_index_time(moment: Optional[datetime.datetime] = None) -> str:
    """Format a time as Go's RFC3339Nano does: trailing fraction zeros trimmed, ``Z`` for UTC."""
    moment = moment or datetime.datetime.now()
    if moment.tzinfo is None:
        moment = moment.astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    if fraction:
        text += "." + fraction

    offset = moment.utcoffset() or datetime.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def check_index_version(version: str, where: str) -> None:
    """Reject versions older than v1.2.0 with the message Hangar gives for them."""
    if not version:
        raise ArchiveFormatError(
            f"{where}: failed to compare index version: version is empty string; "
            "the index is not one Hangar v1.7+ wrote; re-save the images"
        )
    match = _SEMVER_RE.fullmatch(version)
    if not match:
        raise ArchiveFormatError(
            f"{where}: failed to compare index version: {version!r} is not a semantic "
            "version; the index is damaged or foreign; re-save the images"
        )

    core = tuple(int(part) for part in match.group(1, 2, 3))
    # A pre-release of 1.2.0 sorts before 1.2.0, as in semver.
    if core < (1, 2, 0) or (core == (1, 2, 0) and match.group(4)):
        raise ArchiveFormatError(
            f"{where}: this tool does not support index version {version}; the archive "
            "was written by Hangar v1.6 or older (tar.gz era); load it with that Hangar "
            "version or save the images again"
        )


def _take(obj: dict, key: str, kind: type, where: str) -> Any:
    # Go's decoder turns null and absent keys into zero values, so both read as empty.
    value = obj.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ArchiveFormatError(
            f"{where}: key {key!r} must be a JSON {kind.__name__}, got {type(value).__name__}; "
            "the index is damaged; re-save the images"
        )
    return value


def _take_strings(obj: dict, key: str, where: str) -> list:
    values = _take(obj, key, list, where)
    if not all(isinstance(value, str) for value in values):
        raise ArchiveFormatError(
            f"{where}: key {key!r} must be a list of strings; the index is damaged; "
            "re-save the images"
        )
    return list(values)


def _take_string_map(obj: dict, key: str, where: str) -> dict:
    values = _take(obj, key, dict, where)
    if not all(isinstance(value, str) for value in values.values()):
        raise ArchiveFormatError(
            f"{where}: key {key!r} must map strings to strings; the index is damaged; "
            "re-save the images"
        )
    return dict(values)


def _object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise ArchiveFormatError(
            f"{where}: expected a JSON object, got {type(value).__name__}; the index is "
            "damaged; re-save the images"
        )
    return value


def _unique(values: Iterable[str]) -> list:
    return list(dict.fromkeys(value for value in values if value))


def _omit_empty(pairs: Iterable) -> dict:
    return {key: value for key, value in pairs if value not in ("", [], {}, None)}


def _unknown_keys(obj: dict, known: Iterable[str]) -> dict:
    known = set(known)
    return {key: value for key, value in obj.items() if key not in known}


# (JSON key, attribute) in Go struct order, which is also Hangar's key order.
_SPEC_FIELDS = (
    ("arch", "arch"),
    ("os", "os"),
    ("osVersion", "os_version"),
    ("osFeatures", "os_features"),
    ("variant", "variant"),
    ("mediaType", "media_type"),
    ("layers", "layers"),
    ("config", "config"),
    ("digest", "digest"),
    ("annotations", "annotations"),
)


@dataclass
class ImageSpec:
    """One platform manifest of an image entry (Hangar's ``ImageSpec``)."""

    digest: str
    media_type: str = ""
    arch: str = ""
    os: str = ""
    os_version: str = ""
    os_features: list = field(default_factory=list)
    variant: str = ""
    layers: list = field(default_factory=list)
    config: str = ""
    annotations: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def is_attestation(self) -> bool:
        """True for a BuildKit attestation manifest, detected the way Hangar does."""
        return (
            self.arch == _UNKNOWN
            and self.os == _UNKNOWN
            and self.annotations.get(ATTESTATION_TYPE_KEY) == ATTESTATION_TYPE
        )

    @property
    def attested_digest(self) -> str:
        """Digest of the platform manifest an attestation describes, else ``""``."""
        return self.annotations.get(ATTESTATION_SUBJECT_KEY, "") if self.is_attestation else ""

    @property
    def platform(self) -> str:
        """Platform as Hangar prints it in logs: ``linux/arm64v8``."""
        return f"{self.os}/{self.arch}{self.variant}"

    def blob_digests(self) -> list:
        """Digests of the manifest, its config and its layers, each once."""
        return _unique([self.digest, self.config, *self.layers])

    def to_dict(self) -> dict:
        data = _omit_empty((key, getattr(self, attr)) for key, attr in _SPEC_FIELDS)
        if self.annotations:
            data["annotations"] = dict(sorted(self.annotations.items()))
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, obj: object, where: str) -> ImageSpec:
        obj = _object(obj, where)
        spec = cls(
            digest=_take(obj, "digest", str, where),
            media_type=_take(obj, "mediaType", str, where),
            arch=_take(obj, "arch", str, where),
            os=_take(obj, "os", str, where),
            os_version=_take(obj, "osVersion", str, where),
            os_features=_take_strings(obj, "osFeatures", where),
            variant=_take(obj, "variant", str, where),
            layers=_take_strings(obj, "layers", where),
            config=_take(obj, "config", str, where),
            annotations=_take_string_map(obj, "annotations", where),
            extra=_unknown_keys(obj, (pair[0] for pair in _SPEC_FIELDS)),
        )
        spec.check(where)
        return spec

    def check(self, where: str) -> None:
        """Validate every digest that will become an archive member name or a tag."""
        digest_hex(self.digest, f"{where} key 'digest'")
        if self.config:
            digest_hex(self.config, f"{where} key 'config'")
        for position, layer in enumerate(self.layers):
            digest_hex(layer, f"{where} key 'layers' item {position}")
        if self.is_attestation:
            digest_hex(self.attested_digest, f"{where} annotation {ATTESTATION_SUBJECT_KEY!r}")


@dataclass
class SourceIndex:
    """Descriptor of the source's top-level index or manifest list (our extension)."""

    media_type: str
    digest: str
    size: int

    def to_dict(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @classmethod
    def from_dict(cls, obj: object, where: str) -> SourceIndex:
        obj = _object(obj, where)
        size = _take(obj, "size", int, where)
        media_type = _take(obj, "mediaType", str, where)
        if size <= 0 or not media_type:
            raise ArchiveFormatError(
                f"{where}: needs a mediaType and a positive size; the key was damaged; "
                f"remove {SOURCE_INDEX_KEY!r} from the entry or re-save the image"
            )
        digest = _take(obj, "digest", str, where)
        digest_hex(digest, f"{where} key 'digest'")
        return cls(media_type=media_type, digest=digest, size=size)


_ENTRY_KEYS = ("source", "tag", "archList", "osList", "images", SOURCE_INDEX_KEY)


@dataclass
class ImageEntry:
    """One saved ``source:tag`` and its platform manifests (Hangar's ``Image``)."""

    source: str
    tag: str
    specs: list = field(default_factory=list)
    arch_list: list = field(default_factory=list)
    os_list: list = field(default_factory=list)
    source_index: Optional[SourceIndex] = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        source: str,
        tag: str,
        specs: Iterable[ImageSpec],
        source_index: Optional[SourceIndex] = None,
    ) -> ImageEntry:
        """Make an entry whose ``archList``/``osList`` are derived from its specs."""
        entry = cls(source=source, tag=tag, specs=list(specs), source_index=source_index)
        entry.refresh_platform_lists()
        return entry

    def refresh_platform_lists(self) -> None:
        """Recompute ``archList``/``osList`` (distinct, first-seen order; Hangar's is random)."""
        self.arch_list = _unique(spec.arch for spec in self.specs)
        self.os_list = _unique(spec.os for spec in self.specs)

    @property
    def reference(self) -> str:
        return f"{self.source}:{self.tag}"

    @property
    def registry(self) -> str:
        return self.source.split("/", 1)[0]

    @property
    def project(self) -> str:
        return self.source.split("/")[1]

    @property
    def name(self) -> str:
        """Repository path below the project, e.g. ``nginx`` or ``b/c/image``."""
        return self.source.split("/", 2)[2]

    def select_specs(
        self,
        arches: Iterable[str] = (),
        oses: Iterable[str] = (),
        provenance: bool = True,
    ) -> list:
        """Specs a load keeps for these filters, by Hangar's rules.

        A spec passes when a filter list is empty or its value is empty or listed; variants
        are not filtered. An attestation is kept only with ``provenance`` and only when the
        platform manifest it describes was kept.
        """
        arches, oses = set(arches), set(oses)
        kept = [
            spec
            for spec in self.specs
            if not spec.is_attestation
            and (not arches or not spec.arch or spec.arch in arches)
            and (not oses or not spec.os or spec.os in oses)
        ]
        if provenance:
            digests = {spec.digest for spec in kept}
            kept += [
                spec
                for spec in self.specs
                if spec.is_attestation and spec.attested_digest in digests
            ]
        return kept

    def iter_blob_digests(self) -> Iterator[str]:
        """Every blob digest the entry needs, each once: manifests, configs, layers."""
        seen = set()
        for spec in self.specs:
            for digest in spec.blob_digests():
                if digest not in seen:
                    seen.add(digest)
                    yield digest
        if self.source_index and self.source_index.digest not in seen:
            yield self.source_index.digest

    def to_dict(self) -> dict:
        data = _omit_empty((
            ("source", self.source),
            ("tag", self.tag),
            ("archList", self.arch_list),
            ("osList", self.os_list),
            ("images", [spec.to_dict() for spec in self.specs]),
        ))
        if self.source_index:
            data[SOURCE_INDEX_KEY] = self.source_index.to_dict()
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, obj: object, where: str) -> ImageEntry:
        obj = _object(obj, where)
        source = _take(obj, "source", str, where)
        tag = _take(obj, "tag", str, where)
        _check_source_and_tag(source, tag, where)
        where = f"{where} ({source}:{tag})"

        specs = [
            ImageSpec.from_dict(item, f"{where} images[{position}]")
            for position, item in enumerate(_take(obj, "images", list, where))
        ]
        source_index = None
        if obj.get(SOURCE_INDEX_KEY) is not None:
            source_index = SourceIndex.from_dict(
                obj[SOURCE_INDEX_KEY], f"{where} key {SOURCE_INDEX_KEY!r}"
            )
        return cls(
            source=source,
            tag=tag,
            specs=specs,
            arch_list=_take_strings(obj, "archList", where),
            os_list=_take_strings(obj, "osList", where),
            source_index=source_index,
            extra=_unknown_keys(obj, _ENTRY_KEYS),
        )


def _check_source_and_tag(source: str, tag: str, where: str) -> None:
    # Loads derive the destination project, repository and helper tags from these two.
    segments = source.split("/")
    if len(segments) < 3 or not all(segments) or ".." in segments:
        raise ArchiveFormatError(
            f"{where}: source {source!r} is not a fully expanded registry/project/name "
            "reference; the index is damaged or foreign; re-save the image"
        )
    if not _TAG_RE.fullmatch(tag):
        raise ArchiveFormatError(
            f"{where}: tag {tag!r} of {source} is not a valid tag; the index is damaged; "
            "re-save the image"
        )


@dataclass
class ArchiveIndex:
    """The whole ``index.json``: ``list`` of image entries, ``version`` and ``time``."""

    images: list = field(default_factory=list)
    version: str = INDEX_VERSION
    time: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def new(cls, moment: Optional[datetime.datetime] = None) -> ArchiveIndex:
        """An empty index stamped with the current (or given) local time."""
        return cls(time=format_index_time(moment))

    def find(self, source: str, tag: str) -> list:
        """Entries for ``source:tag`` in index order; Hangar's load uses the last one."""
        return [entry for entry in self.images if entry.source == source and entry.tag == tag]

    def replace(self, entry: ImageEntry) -> None:
        """Put ``entry`` where the first entry with its ``source:tag`` was; drop the others."""
        positions = [
            position
            for position, old in enumerate(self.images)
            if (old.source, old.tag) == (entry.source, entry.tag)
        ]
        if not positions:
            self.images.append(entry)
            return
        self.images[positions[0]] = entry
        for position in reversed(positions[1:]):
            del self.images[position]

    def manifest_digests(self) -> set:
        """Digests of every platform manifest in the index (Hangar's ``save validate`` set)."""
        return {spec.digest for entry in self.images for spec in entry.specs}

    def to_dict(self) -> dict:
        data = _omit_empty((
            ("list", [entry.to_dict() for entry in self.images]),
            ("version", self.version),
        ))
        data["time"] = self.time or format_index_time()
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        """Compact JSON in Hangar's key order."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: object, where: str = "index.json") -> ArchiveIndex:
        """Parse and validate ``index.json``; ``where`` names it in error messages."""
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ArchiveFormatError(
                f"{where}: not valid JSON ({exc}); the archive is damaged or was not written "
                "by Hangar v1.7+; re-save the images"
            ) from exc
        obj = _object(obj, where)

        version = _take(obj, "version", str, where)
        check_index_version(version, where)
        time = _take(obj, "time", str, where)
        if time and not _RFC3339_RE.fullmatch(time):
            raise ArchiveFormatError(
                f"{where}: time {time!r} is not RFC 3339; Hangar could not read this index; "
                "re-save the images"
            )

        images = [
            ImageEntry.from_dict(item, f"{where} list[{position}]")
            for position, item in enumerate(_take(obj, "list", list, where))
        ]
        return cls(
            images=images,
            version=version,
            time=time,
            extra=_unknown_keys(obj, ("list", "version", "time")),
        )
