# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Damage copies of a good Hangar archive, one way each, for the failure cases of hangar_load.

    python craft_archive.py GOOD DIRECTORY REFERENCE

writes DIRECTORY/<kind>.zip for each kind:

truncated        the first half of GOOD, as after an interrupted copy.
flip-blob        one bit flipped in the first layer of REFERENCE, in place, so that the stored
                 CRC-32 and the digest no longer match the data.
missing-blob     the first layer of REFERENCE left out.
zip-slip         an extra member whose name climbs out of the extraction directory.
duplicate-index  a second index.json that lists no image.
old-version      index.json says version v1.1.0, which Hangar v1.7+ refuses.

REFERENCE is ``registry/repository:tag`` as the archive's index records it. The script prints
a JSON object of kind to the member it damaged (or null), for the playbook to match.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import warnings
import zipfile
from typing import Callable, Dict, List, Optional

INDEX = "index.json"
LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
KINDS = ("truncated", "flip-blob", "missing-blob", "zip-slip", "duplicate-index", "old-version")
ZIP_SLIP_NAME = "../../hangar-zip-slip"
OLD_VERSION = "v1.1.0"

# (name, data) of the members to write; a step returns the new list.
Members = List[tuple]


def read_members(path: str) -> Members:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def write_members(path: str, members: Members) -> None:
    # zipfile warns about a repeated name; duplicate-index wants exactly that.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            for name, data in members:
                archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)


def first_layer(members: Members, reference: str) -> str:
    """The member name of the first layer of the first platform of ``reference``."""
    index = json.loads(dict(members)[INDEX])
    for entry in index["list"]:
        if f"{entry['source']}:{entry['tag']}" == reference:
            return "share/sha256/" + entry["images"][0]["layers"][0].split(":", 1)[1]
    raise SystemExit(f"{reference} is not in the archive index; give it as registry/repo:tag")


def data_offset(path: str, name: str) -> tuple:
    """Where the stored bytes of member ``name`` start in the file, and how many there are."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        fields = LOCAL_HEADER.unpack(handle.read(LOCAL_HEADER.size))
    name_length, extra_length = fields[-2], fields[-1]
    return info.header_offset + LOCAL_HEADER.size + name_length + extra_length, info.compress_size


def truncate(good: str, bad: str) -> None:
    with open(good, "rb") as source:
        data = source.read()
    with open(bad, "wb") as target:
        target.write(data[:len(data) // 2])


def flip_bit(good: str, bad: str, name: str) -> None:
    shutil.copyfile(good, bad)
    start, size = data_offset(bad, name)
    with open(bad, "r+b") as handle:
        handle.seek(start + size // 2)
        byte = handle.read(1)[0]
        handle.seek(start + size // 2)
        handle.write(bytes([byte ^ 0x10]))


def with_old_version(members: Members) -> Members:
    result = []
    for name, data in members:
        if name == INDEX:
            index = json.loads(data)
            index["version"] = OLD_VERSION
            data = json.dumps(index, separators=(",", ":")).encode()
        result.append((name, data))
    return result


def rewrite(good: str, bad: str, change: Callable[[Members], Members]) -> None:
    write_members(bad, change(read_members(good)))


def craft(kind: str, good: str, bad: str, reference: str) -> Optional[str]:
    """Write BAD; return the member that was damaged or left out, if one was."""
    if kind == "truncated":
        truncate(good, bad)
        return None
    if kind in ("flip-blob", "missing-blob"):
        layer = first_layer(read_members(good), reference)
        if kind == "flip-blob":
            flip_bit(good, bad, layer)
        else:
            rewrite(good, bad, lambda members: [m for m in members if m[0] != layer])
        return layer
    changes: Dict[str, Callable[[Members], Members]] = {
        "zip-slip": lambda members: members + [(ZIP_SLIP_NAME, b"escaped")],
        "duplicate-index": lambda members: members + [
            (INDEX, b'{"version":"v1.2.0","time":"2026-01-01T00:00:00Z"}')],
        "old-version": with_old_version,
    }
    rewrite(good, bad, changes[kind])
    return ZIP_SLIP_NAME if kind == "zip-slip" else INDEX


def main(argv: List[str]) -> None:
    if len(argv) != 4:
        raise SystemExit(__doc__)
    good, directory, reference = argv[1:]
    members = {kind: craft(kind, good, os.path.join(directory, f"{kind}.zip"), reference)
               for kind in KINDS}
    print(json.dumps(members))


if __name__ == "__main__":
    main(sys.argv)
