# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image lists: the ``images`` option and ``images_file``, read with Hangar's rules.

Each line is stripped; blank lines and lines starting with ``#`` or ``//`` are skipped. A line
is one reference (``[REGISTRY/][PROJECT/]NAME[:TAG]``) or, for mirroring only, the three
columns ``SOURCE DEST TAG``. A line that fits neither is skipped with a warning, as Hangar does,
rather than failing the run; so is a repeat of an earlier line.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Optional, Tuple

from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.reference import (
    TAG_RE,
    TAG_RULE,
    Reference,
    ReferenceError,
    parse_reference,
)

OPTION_SOURCE_NAME = "images option"

_MIRROR_FORM = "SOURCE DEST TAG"


class ImageListError(HangarError, ValueError):
    """An image list file that cannot be read at all (missing, unreadable, not UTF-8)."""


@dataclasses.dataclass(frozen=True)
class ImageListEntry:
    """One usable line of an image list.

    ``destination`` is set only for the ``SOURCE DEST TAG`` form; its ``explicit_registry``
    tells whether DEST named a registry or the caller's destination registry applies.
    """

    line: str
    source: Reference
    destination: Optional[Reference] = None
    line_number: Optional[int] = None


@dataclasses.dataclass
class ImageList:
    entries: List[ImageListEntry] = dataclasses.field(default_factory=list)
    warnings: List[str] = dataclasses.field(default_factory=list)


class _LineProblem(Exception):
    """Why a line is skipped; it becomes a warning, never a failure."""


class _Collector:
    """Gathers entries from one or more sources, keeping the first of any repeated entry."""

    def __init__(self, allow_mirror_format: bool) -> None:
        self.allow_mirror_format = allow_mirror_format
        self.result = ImageList()
        self._first_seen: Dict[Tuple[Reference, Optional[Reference]], str] = {}

    def add_lines(self, lines: Iterable[str], source_name: str) -> None:
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if _is_skipped(line):
                continue

            where = f"{source_name} line {number}"
            try:
                entry = _parse_line(line, number, self.allow_mirror_format)
            except (ReferenceError, _LineProblem) as exc:
                self._warn(line, str(exc), where)
                continue

            self._keep(entry, where)

    def _keep(self, entry: ImageListEntry, where: str) -> None:
        key = (entry.source, entry.destination)
        first = self._first_seen.get(key)
        if first is not None:
            self._warn(entry.line, f"duplicate of {first}", where)
            return

        self._first_seen[key] = where
        self.result.entries.append(entry)

    def _warn(self, line: str, reason: str, where: str) -> None:
        self.result.warnings.append(f'Ignore image list line "{line}": {reason} ({where})')


def parse_image_list(
    lines: Iterable[str], *, allow_mirror_format: bool, source_name: str
) -> ImageList:
    """Parse list lines; ``source_name`` (a file name, ``images option``) goes in warnings."""
    collector = _Collector(allow_mirror_format)
    collector.add_lines(lines, source_name)
    return collector.result


def read_image_list_file(path: str, *, allow_mirror_format: bool) -> ImageList:
    """Read and parse the UTF-8 image list file at ``path``."""
    return parse_image_list(
        _read_lines(path), allow_mirror_format=allow_mirror_format, source_name=path
    )


def combine(
    images: Optional[List[str]], images_file: Optional[str], allow_mirror_format: bool
) -> ImageList:
    """The entries of the ``images`` option, then those of ``images_file``, without repeats."""
    collector = _Collector(allow_mirror_format)
    if images:
        collector.add_lines(images, OPTION_SOURCE_NAME)
    if images_file:
        collector.add_lines(_read_lines(images_file), images_file)
    return collector.result


def format_failed_lines(entries: Iterable[ImageListEntry]) -> str:
    """The original lines of ``entries``, one per line, ready to be used as ``images_file``."""
    return "".join(f"{entry.line}\n" for entry in entries)


def apply_overrides(
    ref: Reference, *, registry: Optional[str] = None, project: Optional[str] = None
) -> Reference:
    """Hangar's registry and project overrides (``--source``, ``--*-project``, ``--project``).

    The registry replaces the one of the reference, the project replaces the first repository
    component and keeps the rest (``a/b/c/image`` with project ``x`` is ``x/b/c/image``). An
    empty value means no override, as in Hangar.
    """
    if registry:
        ref = ref.with_registry(registry)
    if project:
        ref = ref.with_project(project)
    return ref


def _is_skipped(line: str) -> bool:
    return not line or line.startswith("#") or line.startswith("//")


def _parse_line(line: str, number: int, allow_mirror_format: bool) -> ImageListEntry:
    tokens = line.split()
    if len(tokens) == 1:
        return ImageListEntry(line=line, source=parse_reference(line), line_number=number)

    if len(tokens) == 3 and allow_mirror_format:
        source, destination = _parse_mirror_columns(*tokens)
        return ImageListEntry(line, source, destination, number)

    if len(tokens) == 3:
        raise _LineProblem(f"invalid format, the {_MIRROR_FORM} form is accepted by mirror only")
    expected = f"one reference or {_MIRROR_FORM}" if allow_mirror_format else "one reference"
    raise _LineProblem(f"invalid format, expected {expected} but found {len(tokens)} columns")


def _parse_mirror_columns(source: str, destination: str, tag: str) -> Tuple[Reference, Reference]:
    if _has_tag_or_digest(source) or _has_tag_or_digest(destination):
        raise _LineProblem(
            f"in the {_MIRROR_FORM} form SOURCE and DEST take no tag or digest; "
            "the third column is the tag of both"
        )

    if not TAG_RE.match(tag):
        raise _LineProblem(f'tag "{tag}" is invalid: use {TAG_RULE}')

    return parse_reference(source).with_tag(tag), parse_reference(destination).with_tag(tag)


def _has_tag_or_digest(text: str) -> bool:
    # A colon before the last "/" belongs to a registry port, not to a tag.
    return "@" in text or ":" in text.rpartition("/")[2]


def _read_lines(path: str) -> List[str]:
    prefix = f'cannot read image list file "{path}"'
    try:
        # utf-8-sig: editors on Windows often start UTF-8 files with a byte order mark.
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        raise ImageListError(f"{prefix}: it does not exist; check images_file") from None
    except UnicodeDecodeError as exc:
        raise ImageListError(
            f"{prefix}: it is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise ImageListError(
            f"{prefix}: {exc.strerror or exc}; check that it is a readable file"
        ) from exc
