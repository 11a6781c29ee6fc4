# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compose archives from archives (Hangar's archive merge, export and init) and verify them."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.airgap.hangar.plugins.module_utils.archive import (
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
)
from ansible_collections.airgap.hangar.plugins.module_utils.archive_index import ImageEntry
from ansible_collections.airgap.hangar.plugins.module_utils.archive_io import entry_for
from ansible_collections.airgap.hangar.plugins.module_utils.archive_save import entry_label
from ansible_collections.airgap.hangar.plugins.module_utils.reference import Reference
from ansible_collections.airgap.hangar.plugins.module_utils.transport import iter_file

Selection = List[Tuple[ArchiveReader, ImageEntry]]


def select_entries(readers: List[ArchiveReader], wanted: Optional[List[Reference]],
                   warnings: List[str]) -> Selection:
    """The entries to put in the new archive; a later source wins a repeated reference."""
    chosen: Dict[str, Tuple[ArchiveReader, ImageEntry]] = {}
    for reader in readers:
        for entry in reader.images:
            if entry.reference in chosen and chosen[entry.reference][0] is not reader:
                warnings.append(f"{entry.reference} is in several sources; the copy from "
                                f"{reader.path} is used")
            chosen[entry.reference] = (reader, entry)
    if wanted is None:
        return list(chosen.values())
    selection = []
    for ref in wanted:
        found = [(reader, entry) for reader, entry in chosen.values()
                 if entry_for([entry], ref) is not None]
        if not found:
            warnings.append(f"{ref} is in none of the source archives; skipped")
        selection.extend(found)
    return selection


def labels_of(entries: List[ImageEntry]) -> List[str]:
    return sorted(entry_label(entry) for entry in entries)


def compose(dest: str, readers: List[ArchiveReader], wanted: Optional[List[Reference]],
            check_mode: bool) -> Dict[str, Any]:
    """Make ``dest`` hold exactly the selected entries; nothing is written when it already does."""
    warnings: List[str] = []
    selection = select_entries(readers, wanted, warnings)
    selected = [entry for unused_reader, entry in selection]
    existing = _entries_at(dest)
    # Labels name the source index, which a platform subset shares with the full image, so
    # the platform digests decide.
    changed = existing is None or contents_of(existing) != contents_of(selected)
    if changed and not check_mode:
        with ArchiveWriter(dest) as writer:
            for reader, entry in selection:
                writer.copy_image_from(reader, entry)
            writer.commit()
    return dict(changed=changed, before=labels_of(existing or []), after=labels_of(selected),
                warnings=warnings)


def contents_of(entries: List[ImageEntry]) -> List[tuple]:
    """(reference, platform digests) of each entry: what makes two archives hold the same."""
    return sorted((entry.reference, tuple(sorted(spec.digest for spec in entry.specs)))
                  for entry in entries)


def _entries_at(dest: str) -> Optional[List[ImageEntry]]:
    """The entries of the archive at ``dest``; None when there is no usable archive."""
    if not os.path.exists(dest):
        return None
    try:
        with ArchiveReader(dest) as reader:
            return list(reader.images)
    except ArchiveError:
        return None


def verify_archive(reader: ArchiveReader) -> List[Dict[str, str]]:
    """Re-hash every blob every entry needs; return the missing or corrupt members."""
    problems: List[Dict[str, str]] = []
    checked = set()
    for entry in reader.images:
        for member in reader.missing_members(entry):
            problems.append(dict(image=entry.reference, member=member, error="missing"))
        for digest in entry.iter_blob_digests():
            if digest in checked or not reader.has_blob(digest):
                continue
            checked.add(digest)
            try:
                for unused_chunk in iter_file(reader.open_blob(digest)):
                    pass
            except ArchiveError as error:
                problems.append(dict(image=entry.reference, member=digest, error=str(error)))
    return problems
