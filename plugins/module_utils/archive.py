# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and write Hangar image archives: a zip of blobs, per-platform OCI layouts and index.json.

Layout (Hangar v1.7+)::

    share/sha256/<hex>        every blob once: layers, configs, platform manifests
    <hex>/index.json          one-descriptor OCI index per platform manifest <hex>
    <hex>/oci-layout          {"imageLayoutVersion":"1.0.0"}
    index.json                Hangar's index (archive_index.py), exactly one, the last member

Why a small zip codec of our own instead of ``zipfile``: an append must drop the old
``index.json`` (``zipfile`` would add a duplicate, and Hangar reads the first one), a member
whose content fails verification must be undone, ``zipfile`` cuts names at NUL and returns the
last of duplicate names, and CPython 3.11.7 misses overlapping members (CVE-2024-0450). The
subset needed is small: STORED members whose size is known before the data.

Writing. Each member gets a local header with its final sizes and a zero CRC-32, its data in
1 MiB blocks (sha256 and CRC-32 computed on the way), then the CRC-32 patched into the local
header: no data descriptor. Sizes or offsets from 4 GiB on get ZIP64 extra fields, 65535 members
or more a ZIP64 end record. Every member: method STORED, Unix host, regular file 0644. Go's
``archive/zip`` (Hangar), ``unzip`` and ``zipfile`` read the result.

A new archive is written to ``.<name>.<random>.hangar-tmp`` beside the destination, locked with
flock from its creation on, fsynced, renamed over the destination and the directory fsynced;
abort() or an exception removes it, and the next writer removes temp files whose writer died.

Append (Hangar's ``sync``) rewrites only the archive's tail: the old ``index.json`` when it is
the last member, as Hangar and we write it, and the central directory. Before any byte changes,
the tail from its first byte to EOF is saved in ``<archive>.hangar-journal`` (written under a
temp name, fsynced, renamed, directory fsynced). New members go where the tail began; commit()
writes the new ``index.json``, central directory and end record, truncates, fsyncs, and then
removes the journal: that removal is the commit point. An appender holds the archive's flock
for its whole life. Whoever next opens the archive (ArchiveReader, or an ArchiveWriter in
append mode) and finds a journal takes the flock; if it gets it the appender is gone, so it
writes the saved tail back and truncates to the old size, giving the archive byte for byte as
it was before the append. A journal still under its temp name means the crash came before the
archive was touched; it is deleted. So a kill -9 at any byte leaves the previous archive.

Threads: ArchiveReader.open_blob gives each caller its own file handle, so several threads
can stream different blobs. ArchiveWriter.add_blob holds the writer's lock while it writes one
member. Workers that download in parallel reserve a slot instead (reserve_blob): the blob's size
is known from its descriptor, so the writer places the member's local header at once and each
worker writes its bytes into its own slot with pwrite, without the lock, then the CRC-32 is
patched into the header. Every byte is written once and no worker waits for another. A slot
given back (a failed download) leaves a gap that commit() closes by moving the later members
down, so the archive on disk is always contiguous, as Hangar writes it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Union

from ansible_collections.airgap.hangar.plugins.module_utils.archive_index import (
    ArchiveDigestError,
    ArchiveError,
    ArchiveFormatError,
    ArchiveIndex,
    ArchiveMissingBlobError,
    ArchiveSpaceError,
    ImageEntry,
    digest_hex,
)
from ansible_collections.airgap.hangar.plugins.module_utils.media_types import (
    INDEX_TYPES,
    OCI_MANIFEST,
)

__all__ = [
    "ArchiveDigestError",
    "ArchiveError",
    "ArchiveFormatError",
    "ArchiveMissingBlobError",
    "ArchiveSpaceError",
    "ArchiveReader",
    "ArchiveWriter",
    "BlobReader",
    "blob_member_name",
    "ensure_free_space",
    "layout_member_names",
    "recover_archive",
]

INDEX_NAME = "index.json"
JOURNAL_SUFFIX = ".hangar-journal"
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'

BLOCK_SIZE = 1 << 20
READ_LIMIT = 4 << 20  # default cap of read_blob(): manifests and configs, not layers
_MAX_INDEX_BYTES = 64 << 20  # a 600-image Rancher index is about 1 MiB
_MAX_CENTRAL_DIRECTORY = 256 << 20  # about two million members
_MAX_LAYOUT_BYTES = 1 << 20

# Sizes, offsets and counts from these on need ZIP64 records.
_ZIP64_LIMIT = 0xFFFFFFFF
_ZIP64_COUNT_LIMIT = 0xFFFF

_STORED = 0
_DEFLATED = 8
_FLAG_ENCRYPTED = 0x41
_FLAG_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_UNIX_HOST = 3
_FILE_ATTR = stat.S_IFREG | 0o644
# A data descriptor is at most signature, CRC-32 and two 8-byte sizes.
_DESCRIPTOR_MAX = 24

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sBBHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")
_EXTRA = struct.Struct("<HH")
_LOCAL_SIG = b"PK\x03\x04"
_CENTRAL_SIG = b"PK\x01\x02"
_END_SIG = b"PK\x05\x06"
_END64_SIG = b"PK\x06\x06"
_LOCATOR64_SIG = b"PK\x06\x07"
_ZIP64_EXTRA_ID = 0x0001
_CRC_OFFSET = 14
_GZIP_MAGIC = b"\x1f\x8b"

_JOURNAL = struct.Struct("<8sQQQ")
_JOURNAL_MAGIC = b"HGRJRNL1"
_TEMP_SUFFIX = ".hangar-tmp"
_DRIVE_RE = re.compile(r"[A-Za-z]:")

Source = Union[bytes, bytearray, memoryview, str, os.PathLike, io.IOBase, Iterable[bytes]]


def blob_member_name(digest: str) -> str:
    """Member holding the blob ``digest``: ``share/sha256/<hex>``."""
    return "share/sha256/" + digest_hex(digest, f"blob digest {digest!r}")


def layout_member_names(digest: str) -> tuple:
    """The two OCI layout members of platform manifest ``digest``."""
    hex_ = digest_hex(digest, f"manifest digest {digest!r}")
    return (f"{hex_}/index.json", f"{hex_}/oci-layout")


def _required_members(entry: ImageEntry) -> list:
    names = [blob_member_name(digest) for digest in entry.iter_blob_digests()]
    for spec in entry.specs:
        names.extend(layout_member_names(spec.digest))
    return names


def _member_label(name: str) -> str:
    """``blob sha256:<hex>`` for a blob member, the member name for anything else."""
    if name.startswith("share/sha256/"):
        return "blob sha256:" + name.rsplit("/", 1)[1]
    return name


def _human(size: float) -> str:
    if size < 1024:
        return f"{int(size)} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"


def ensure_free_space(directory: str, needed_bytes: int) -> None:
    """Raise ArchiveSpaceError unless ``directory``'s file system has ``needed_bytes`` free."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        raise ArchiveError(
            f"cannot check free space in {directory}: {exc.strerror}; check that the "
            "directory exists"
        ) from exc
    if free < needed_bytes:
        raise ArchiveSpaceError(
            f"not enough space in {directory}: the archive needs about "
            f"{_human(needed_bytes)}, {_human(free)} are free; free some space or write the "
            "archive to another file system"
        )


def _fsync_directory(path: str) -> None:
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_all(fd: int, data, offset: int) -> int:
    """Write all of ``data`` at ``offset``; return the offset after it."""
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    return offset


def _read_at(handle: io.RawIOBase, offset: int, size: int) -> bytes:
    handle.seek(offset)
    data = handle.read(size)
    return data or b""


# --- central directory --------------------------------------------------------------------


@dataclass
class _Entry:
    """One zip member as the central directory describes it."""

    name: str
    raw_name: bytes
    offset: int
    size: int  # bytes stored in the archive
    file_size: int  # bytes after decompression
    crc: int = 0
    method: int = _STORED
    flags: int = 0
    dos_time: int = 0
    dos_date: int = 0
    external_attr: int = _FILE_ATTR << 16
    made_by: int = (_UNIX_HOST << 8) | 45
    needed: int = 20
    limit: int = 0  # where the next member or the central directory starts

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def _corrupt(path: str, why: str) -> ArchiveFormatError:
    return ArchiveFormatError(
        f"archive {path} is truncated or its central directory is damaged ({why}); was the "
        "save interrupted or the copy incomplete? Copy the archive again or re-save the images"
    )


def _find_end_record(handle: io.RawIOBase, size: int, path: str) -> tuple:
    """Locate the end record whose comment reaches EOF; return (count, cd_size, cd_offset, end)."""
    tail_size = min(size, _END.size + 0xFFFF)
    tail = _read_at(handle, size - tail_size, tail_size)
    position = tail.rfind(_END_SIG)
    while position >= 0:
        if position + _END.size <= len(tail):
            fields = _END.unpack_from(tail, position)
            if position + _END.size + fields[7] == len(tail):
                break
        position = tail.rfind(_END_SIG, 0, position)
    if position < 0:
        if _read_at(handle, 0, 2) == _GZIP_MAGIC:
            raise ArchiveFormatError(
                f"archive {path} is a gzip file, not a zip: Hangar v1.6 and older saved "
                "tar.gz archives, which Hangar v1.7+ and this collection cannot read; load it "
                "with the Hangar version that wrote it or save the images again")
        raise _corrupt(path, "no end of central directory record at the end of the file")

    disk, cd_disk, disk_count, count, cd_size, cd_offset = fields[1:7]
    end_at = size - tail_size + position
    if (disk, cd_disk) != (0, 0) or disk_count != count:
        raise ArchiveFormatError(
            f"archive {path} is a split (multi-volume) zip; join the parts into one file first"
        )
    if end_at >= _LOCATOR64.size:
        locator = _read_at(handle, end_at - _LOCATOR64.size, _LOCATOR64.size)
        if locator[:4] == _LOCATOR64_SIG:
            return _read_end64(handle, _LOCATOR64.unpack(locator)[2], end_at, path)
    return count, cd_size, cd_offset, end_at


def _read_end64(handle: io.RawIOBase, offset: int, end_at: int, path: str) -> tuple:
    record = _read_at(handle, offset, _END64.size)
    if len(record) != _END64.size or record[:4] != _END64_SIG:
        raise _corrupt(path, "the ZIP64 end record is missing")
    if offset + _END64.size > end_at - _LOCATOR64.size:
        raise _corrupt(path, "the ZIP64 end record overlaps its locator")
    fields = _END64.unpack(record)
    count, cd_size, cd_offset = fields[7], fields[8], fields[9]
    if fields[6] != count or fields[4] or fields[5]:
        raise ArchiveFormatError(
            f"archive {path} is a split (multi-volume) zip; join the parts into one file first"
        )
    return count, cd_size, cd_offset, offset


def _zip64_values(extra: bytes, wanted: list, path: str) -> list:
    # ZIP64 fields appear in a fixed order, only for the 32-bit fields that are maxed out.
    position = 0
    while position + _EXTRA.size <= len(extra):
        kind, length = _EXTRA.unpack_from(extra, position)
        body = extra[position + _EXTRA.size:position + _EXTRA.size + length]
        if len(body) != length:
            raise _corrupt(path, "an extra field runs past its record")
        if kind == _ZIP64_EXTRA_ID:
            if len(body) < 8 * sum(wanted):
                raise _corrupt(path, "a ZIP64 extra field is too short")
            values = iter(struct.unpack_from(f"<{sum(wanted)}Q", body))
            return [next(values) if need else None for need in wanted]
        position += _EXTRA.size + length
    raise _corrupt(path, "a member needs a ZIP64 extra field and has none")


def _parse_central_record(data: bytes, position: int, path: str) -> tuple:
    if position + _CENTRAL.size > len(data):
        raise _corrupt(path, "the central directory ends inside a record")
    fields = _CENTRAL.unpack_from(data, position)
    (signature, version, host, needed, flags, method, dos_time, dos_date, crc, size,
     file_size, name_len, extra_len, comment_len) = fields[:14]
    external_attr, offset = fields[16:18]
    if signature != _CENTRAL_SIG:
        raise _corrupt(path, f"bad central directory signature at byte {position}")

    start = position + _CENTRAL.size
    end = start + name_len + extra_len + comment_len
    if end > len(data):
        raise _corrupt(path, "the central directory ends inside a record")
    raw_name = data[start:start + name_len]
    wanted = [file_size == 0xFFFFFFFF, size == 0xFFFFFFFF, offset == 0xFFFFFFFF]
    if any(wanted):
        extra = data[start + name_len:start + name_len + extra_len]
        big = _zip64_values(extra, wanted, path)
        file_size, size, offset = [
            value if value is not None else small
            for value, small in zip(big, (file_size, size, offset))
        ]

    entry = _Entry(
        name=_decode_name(raw_name, flags, path),
        raw_name=raw_name,
        offset=offset,
        size=size,
        file_size=file_size,
        crc=crc,
        method=method,
        flags=flags,
        dos_time=dos_time,
        dos_date=dos_date,
        external_attr=external_attr,
        made_by=(host << 8) | version,
        needed=needed,
    )
    return entry, end


def _decode_name(raw_name: bytes, flags: int, path: str) -> str:
    if b"\x00" in raw_name:
        raise ArchiveFormatError(
            f"archive {path} has a member name with a NUL byte ({raw_name!r}); such names hide "
            "what gets extracted; the archive was tampered with or is not a Hangar archive"
        )
    try:
        return raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
    except UnicodeDecodeError as exc:
        raise _corrupt(path, f"member name {raw_name!r} is not valid UTF-8") from exc


def _read_central_directory(handle: io.RawIOBase, path: str) -> tuple:
    """Return (entries, central directory offset) of the archive open in ``handle``."""
    size = os.fstat(handle.fileno()).st_size
    count, cd_size, cd_offset, cd_end = _find_end_record(handle, size, path)
    if cd_offset + cd_size != cd_end:
        raise _corrupt(
            path,
            f"the central directory should end at byte {cd_end} but its offset and size say "
            f"{cd_offset + cd_size}",
        )
    if cd_size > _MAX_CENTRAL_DIRECTORY:
        raise ArchiveFormatError(
            f"archive {path} has a {_human(cd_size)} central directory, more than the "
            f"{_human(_MAX_CENTRAL_DIRECTORY)} this reader accepts; it is not a Hangar archive"
        )

    data = _read_at(handle, cd_offset, cd_size)
    entries, position = [], 0
    while len(entries) < count:
        entry, position = _parse_central_record(data, position, path)
        entries.append(entry)
    if position != cd_size:
        raise _corrupt(path, f"{cd_size - position} unexplained bytes in the central directory")
    return entries, cd_offset


# --- member checks ------------------------------------------------------------------------


def _unsafe_name_reason(name: str) -> str:
    if not name:
        return "is empty"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or _DRIVE_RE.match(name):
        return "is absolute"
    parts = (name[:-1] if name.endswith("/") else name).split("/")
    if ".." in parts:
        return "contains '..'"
    if any(part in ("", ".") for part in parts):
        return "has an empty or '.' path component"
    return ""


def _check_entry(entry: _Entry, path: str) -> None:
    reason = _unsafe_name_reason(entry.name)
    if reason:
        raise ArchiveFormatError(
            f"archive {path} member {entry.name!r} {reason}; such names can write outside the "
            "extraction directory (zip-slip); the archive was tampered with or is not a Hangar "
            "archive; do not load it"
        )
    if entry.flags & _FLAG_ENCRYPTED:
        raise ArchiveFormatError(
            f"archive {path} member {entry.name} is encrypted; Hangar archives are not; "
            "re-save the images"
        )
    if entry.method not in (_STORED, _DEFLATED):
        raise ArchiveFormatError(
            f"archive {path} member {entry.name} uses compression method {entry.method}; only "
            "stored and deflated members are read; re-save the images"
        )
    _check_file_type(entry, path)


def _check_file_type(entry: _Entry, path: str) -> None:
    kind = stat.S_IFMT(entry.external_attr >> 16)
    if kind == stat.S_IFLNK:
        what = "a symbolic link"
    elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        what = "a special file"
    elif kind == stat.S_IFDIR and not entry.is_dir:
        what = "a directory without a trailing '/'"
    elif entry.is_dir and entry.file_size:
        what = "a directory entry with content"
    else:
        return
    raise ArchiveFormatError(
        f"archive {path} member {entry.name} is {what} (external attributes "
        f"{entry.external_attr >> 16:#o}); Hangar archives hold regular files only; the archive "
        "was tampered with or is not a Hangar archive; do not load it"
    )


def _check_placement(entries: list, cd_offset: int, path: str) -> None:
    """Reject duplicate names and members whose data overlaps (zip bombs, CVE-2024-0450)."""
    names = set()
    for entry in entries:
        if entry.name in names:
            raise ArchiveFormatError(
                f"archive {path} has the member {entry.name} twice; tools disagree on which "
                "copy counts (Hangar reads the first, zipfile the last); the archive was "
                "tampered with or badly merged; re-save the images"
            )
        names.add(entry.name)

    ordered = sorted(entries, key=lambda entry: entry.offset)
    limits = [entry.offset for entry in ordered[1:]] + [cd_offset]
    for entry, limit in zip(ordered, limits):
        entry.limit = limit
        if entry.offset + _LOCAL.size + len(entry.raw_name) + entry.size > limit:
            raise ArchiveFormatError(
                f"archive {path} member {entry.name} overlaps the next member or the central "
                "directory; overlapping members are a zip-bomb technique; do not load it"
            )


def _data_start(handle: io.RawIOBase, entry: _Entry, path: str) -> int:
    """Offset of the member's data, after checking its local header against the directory."""
    header = _read_at(handle, entry.offset, _LOCAL.size)
    if len(header) != _LOCAL.size or header[:4] != _LOCAL_SIG:
        raise _corrupt(path, f"member {entry.name} has no local header at byte {entry.offset}")
    fields = _LOCAL.unpack(header)
    name_len, extra_len = fields[9], fields[10]
    if _read_at(handle, entry.offset + _LOCAL.size, name_len) != entry.raw_name:
        raise _corrupt(path, f"member {entry.name} has another name in its local header")

    start = entry.offset + _LOCAL.size + name_len + extra_len
    if start + entry.size > entry.limit:
        raise ArchiveFormatError(
            f"archive {path} member {entry.name} overlaps the next member or the central "
            "directory; overlapping members are a zip-bomb technique; do not load it"
        )
    return start


# --- reading ------------------------------------------------------------------------------


class BlobReader(io.RawIOBase):
    """A member's content, checked against its digest and size as it is read.

    Opens its own file handle, so threads can stream different blobs at once. When the data
    does not match, the read that would return the last bytes raises ArchiveDigestError
    instead, so a consumer never completes an upload of corrupt content. ``len()`` is the
    blob size and ``tell()`` the bytes read so far, which is what ``requests`` needs to send
    the blob with a Content-Length.
    """

    def __init__(self, path: str, entry: _Entry, digest: str = "", check_crc: bool = False):
        super().__init__()
        self.path, self.name, self.digest = path, entry.name, digest
        self._entry = entry
        self._left = entry.file_size
        self._stored_left = entry.size
        # sha256 covers what CRC-32 would, so blobs skip the CRC pass; index.json has no digest.
        self._sha256 = hashlib.sha256() if digest else None
        self._crc = 0 if check_crc else None
        self._inflater = zlib.decompressobj(-15) if entry.method == _DEFLATED else None
        self._error: Optional[ArchiveError] = None
        self._file = open(path, "rb", buffering=0)
        try:
            self._file.seek(_data_start(self._file, entry, path))
        except BaseException:
            self._file.close()
            raise

    def __len__(self) -> int:
        return self._entry.file_size

    def __bool__(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._entry.file_size - self._left

    def close(self) -> None:
        handle = getattr(self, "_file", None)
        if handle is not None:
            handle.close()
        super().close()

    def readall(self) -> bytes:
        chunks = []
        while True:
            chunk = self.read(BLOCK_SIZE)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def readinto(self, buffer) -> int:
        if self._error:
            raise self._error
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._left)
        if want == 0:
            return 0

        got = self._fill(view[:want])
        if got == 0:
            self._fail(_corrupt(self.path, f"member {self.name} ends early"))
        self._account(view[:got])
        if self._left == 0:
            self._verify()
        return got

    def _fill(self, view: memoryview) -> int:
        if self._inflater is None:
            got = self._file.readinto(view) or 0
            self._stored_left -= got
            return got
        return self._inflate_into(view)

    def _inflate_into(self, view: memoryview) -> int:
        while True:
            data = self._inflater.unconsumed_tail
            if not data and self._stored_left:
                data = self._file.read(min(BLOCK_SIZE, self._stored_left)) or b""
                self._stored_left -= len(data)
            if not data:
                return 0
            try:
                out = self._inflater.decompress(data, len(view))
            except zlib.error as exc:
                self._fail(_corrupt(self.path, f"member {self.name} does not inflate: {exc}"))
            if out:
                view[:len(out)] = out
                return len(out)
            if self._inflater.eof:
                return 0

    def _account(self, data: memoryview) -> None:
        self._left -= len(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        if self._crc is not None:
            self._crc = zlib.crc32(data, self._crc)

    def _verify(self) -> None:
        if self._crc is not None and self._crc != self._entry.crc:
            self._fail(ArchiveFormatError(
                f"archive {self.path} member {self.name} is corrupt: CRC-32 {self._crc:08x} "
                f"instead of {self._entry.crc:08x}; copy the archive again or re-save the images"
            ))
        actual = "sha256:" + self._sha256.hexdigest() if self._sha256 else ""
        if actual != self.digest:
            self._fail(ArchiveDigestError(
                f"archive {self.path} member {self.name} is corrupt: its "
                f"{self._entry.file_size} bytes hash to {actual}, not {self.digest}; the archive "
                "was damaged in storage or transfer; copy it again or re-save the image"
            ))

    def _fail(self, error: ArchiveError) -> None:
        self._error = error
        raise error


class ArchiveReader:
    """A Hangar archive opened for reading, validated on open.

    Opening checks the zip structure (end records, central directory, member names and file
    types, duplicates, overlaps), that ``index.json`` exists exactly once, its version and
    every digest in it. Blob content is verified when it is read. Nothing stays open between
    calls; each ``open_blob`` opens the file again. An interrupted append is undone first
    (see recover_archive).
    """

    def __init__(self, path: Union[str, os.PathLike], *, _recover: bool = True) -> None:
        self.path = os.path.abspath(os.fspath(path))
        if _recover:
            recover_archive(self.path)
        try:
            with open(self.path, "rb", buffering=0) as handle:
                entries, cd_offset = _read_central_directory(handle, self.path)
        except FileNotFoundError as exc:
            raise ArchiveError(f"archive {self.path} does not exist; check the path") from exc
        except OSError as exc:
            raise ArchiveError(
                f"cannot read archive {self.path}: {exc.strerror}; check the path and its "
                "permissions"
            ) from exc

        for entry in entries:
            _check_entry(entry, self.path)
        _check_placement(entries, cd_offset, self.path)
        self._entries = entries
        self._cd_offset = cd_offset
        self._members = {entry.name: entry for entry in entries}
        self.index = self._read_index()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release; present so the reader works as a context manager."""

    @property
    def images(self) -> list:
        """The index's image entries (Hangar's ``list``), in archive order."""
        return self.index.images

    def names(self) -> list:
        """Member names in central directory order."""
        return [entry.name for entry in self._entries]

    def find_images(self, source: str, tag: str) -> list:
        """Entries for ``source:tag``; Hangar's load and export take the last one."""
        return self.index.find(source, tag)

    def has_blob(self, digest: str) -> bool:
        return blob_member_name(digest) in self._members

    def blob_size(self, digest: str) -> int:
        return self._member(blob_member_name(digest), digest).file_size

    def has_platform_manifest(self, digest: str) -> bool:
        """True when the manifest blob and both OCI layout members are present."""
        names = (blob_member_name(digest), *layout_member_names(digest))
        return all(name in self._members for name in names)

    def open_blob(self, digest: str, size: Optional[int] = None) -> BlobReader:
        """Stream blob ``digest``, verified; ``size`` (from a descriptor) is checked first."""
        entry = self._member(blob_member_name(digest), digest)
        if size is not None and size != entry.file_size:
            raise ArchiveDigestError(
                f"archive {self.path} member {entry.name} holds {entry.file_size} bytes but "
                f"the descriptor of {digest} says {size}; the archive or the manifest is "
                "damaged; re-save the image"
            )
        return BlobReader(self.path, entry, digest)

    def read_blob(self, digest: str, limit: int = READ_LIMIT) -> bytes:
        """Read a small blob (manifest, config, index) whole, verified against ``digest``."""
        entry = self._member(blob_member_name(digest), digest)
        self._check_small(entry, limit)
        with BlobReader(self.path, entry, digest) as blob:
            return blob.read()

    def read_layout_descriptor(self, digest: str) -> dict:
        """The descriptor in ``<hex>/index.json`` of platform manifest ``digest``."""
        name = layout_member_names(digest)[0]
        data = self._read_member(self._member(name, digest), _MAX_LAYOUT_BYTES)
        try:
            manifests = json.loads(data)["manifests"]
            descriptor = manifests[0]
            valid = len(manifests) == 1 and descriptor["digest"] == digest
        except (ValueError, KeyError, IndexError, TypeError):
            valid = False
        if not valid:
            raise ArchiveFormatError(
                f"archive {self.path} member {name} is not an OCI index with the one "
                f"descriptor {digest}; the archive is damaged; re-save the image"
            )
        return descriptor

    def missing_members(self, entry: ImageEntry) -> list:
        """Members ``entry`` needs that the archive lacks (blobs and OCI layout files)."""
        return [name for name in _required_members(entry) if name not in self._members]

    def check_image(self, entry: ImageEntry) -> None:
        """Raise ArchiveMissingBlobError when a member of ``entry`` is missing."""
        missing = self.missing_members(entry)
        if missing:
            more = f" and {len(missing) - 1} more member(s)" if len(missing) > 1 else ""
            raise ArchiveMissingBlobError(
                f"archive {self.path} lacks {_member_label(missing[0])}{more} of "
                f"{entry.reference}; the archive is incomplete; save the image again or "
                "sync it into the archive"
            )

    def _member(self, name: str, digest: str) -> _Entry:
        try:
            return self._members[name]
        except KeyError:
            raise ArchiveMissingBlobError(
                f"archive {self.path} has no member {name} for {digest}; the archive is "
                "incomplete; save the image again or sync it into the archive"
            ) from None

    def _check_small(self, entry: _Entry, limit: int) -> None:
        if entry.file_size > limit:
            raise ArchiveFormatError(
                f"archive {self.path} member {entry.name} is {_human(entry.file_size)}, more "
                f"than the {_human(limit)} expected of it; the archive is damaged or hostile"
            )

    def _read_member(self, entry: _Entry, limit: int) -> bytes:
        self._check_small(entry, limit)
        with BlobReader(self.path, entry, check_crc=True) as member:
            return member.read()

    def _read_index(self) -> ArchiveIndex:
        matches = [entry for entry in self._entries if entry.name == INDEX_NAME]
        if not matches:
            raise ArchiveFormatError(
                f"archive {self.path} has no {INDEX_NAME} at its root, so it is not a Hangar "
                "v1.7+ archive (Hangar v1.6 and older wrote tar.gz files); load it with the "
                "Hangar version that wrote it or save the images again"
            )
        data = self._read_member(matches[0], _MAX_INDEX_BYTES)
        return ArchiveIndex.from_json(data, f"archive {self.path} member {INDEX_NAME}")


# --- append journal -----------------------------------------------------------------------


def _journal_path(path: str) -> str:
    return path + JOURNAL_SUFFIX


def _lock_or_fail(fd: int, path: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise ArchiveError(
            f"archive {path} is being appended to by another process; wait for it to finish "
            "and try again"
        ) from exc


def _write_journal(fd: int, path: str, tail_start: int) -> None:
    size = os.fstat(fd).st_size
    tail = os.pread(fd, size - tail_start, tail_start)
    header = _JOURNAL.pack(_JOURNAL_MAGIC, size, tail_start, len(tail))
    checksum = hashlib.sha256(header + tail).digest()

    journal = _journal_path(path)
    temp = journal + ".tmp"
    with open(temp, "wb") as handle:
        handle.write(header + checksum + tail)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, journal)
    _fsync_directory(journal)


def _parse_journal(data: bytes) -> Optional[tuple]:
    """(archive size, tail start, tail bytes) of a journal, or None when it is damaged."""
    head = _JOURNAL.size + 32
    if len(data) < head:
        return None
    magic, size, tail_start, tail_size = _JOURNAL.unpack_from(data)
    checksum = hashlib.sha256(data[:_JOURNAL.size] + data[head:]).digest()
    if magic != _JOURNAL_MAGIC or len(data) != head + tail_size:
        return None
    if checksum != data[_JOURNAL.size:head]:
        return None
    return size, tail_start, data[head:]


def _apply_journal(fd: int, path: str) -> bool:
    """Restore the archive open (and flock-ed) in ``fd`` from its journal, if one exists."""
    journal = _journal_path(path)
    # Under its temp name the journal was never complete, and the archive never touched.
    _remove_quietly(journal + ".tmp")
    try:
        with open(journal, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return False

    fields = _parse_journal(data)
    if fields is None:
        raise ArchiveFormatError(
            f"append journal {journal} of archive {path} is damaged, so an interrupted append "
            "cannot be undone; test the archive with 'unzip -t' and, if it passes, delete the "
            "journal; otherwise restore the archive from a copy"
        )

    size, tail_start, tail = fields
    os.pwrite(fd, tail, tail_start)
    os.ftruncate(fd, size)
    os.fsync(fd)
    os.unlink(journal)
    _fsync_directory(journal)
    return True


def recover_archive(path: Union[str, os.PathLike]) -> bool:
    """Undo an append that was interrupted; return True when the archive was restored.

    Takes the archive's flock, so an append still running in another process is reported
    with ArchiveError instead of being disturbed.
    """
    path = os.fspath(path)
    journal = _journal_path(path)
    if not (os.path.exists(journal) or os.path.exists(journal + ".tmp")):
        return False
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise ArchiveError(
            f"archive {path} has an interrupted append to undo ({journal}) but cannot be "
            f"opened for writing: {exc.strerror}; run again as a user who may write it"
        ) from exc
    try:
        _lock_or_fail(fd, path)
        return _apply_journal(fd, path)
    except OSError as exc:
        raise ArchiveError(
            f"undoing the interrupted append of archive {path} failed: {exc.strerror}; the "
            f"journal {journal} is kept, so the next open tries again"
        ) from exc
    finally:
        os.close(fd)


def _tail_start(reader: ArchiveReader) -> int:
    """First byte an append may overwrite: after the last member other than index.json."""
    live = [entry for entry in reader._entries if entry.name != INDEX_NAME]
    if not live:
        return 0
    last = max(live, key=lambda entry: entry.offset)
    with open(reader.path, "rb", buffering=0) as handle:
        end = _data_start(handle, last, reader.path) + last.size
    # A data descriptor (Go's writer adds one) follows the data; its length varies.
    if last.flags & _FLAG_DESCRIPTOR:
        end += _DESCRIPTOR_MAX
    return min(end, last.limit)


# --- writing ------------------------------------------------------------------------------


def _dos_timestamp() -> tuple:
    now = time.localtime()
    dos_date = ((max(now.tm_year, 1980) - 1980) << 9) | (now.tm_mon << 5) | now.tm_mday
    dos_time = (now.tm_hour << 11) | (now.tm_min << 5) | (now.tm_sec // 2)
    return dos_time, dos_date


def _local_header(entry: _Entry) -> bytes:
    zip64 = entry.size >= _ZIP64_LIMIT
    size32 = 0xFFFFFFFF if zip64 else entry.size
    extra = b""
    if zip64:
        extra = _EXTRA.pack(_ZIP64_EXTRA_ID, 16) + struct.pack("<QQ", entry.size, entry.size)
    header = _LOCAL.pack(
        _LOCAL_SIG, 45 if zip64 else 20, entry.flags, _STORED, entry.dos_time,
        entry.dos_date, 0, size32, size32, len(entry.raw_name), len(extra),
    )
    return header + entry.raw_name + extra


def _central_record(entry: _Entry) -> bytes:
    values = [entry.file_size, entry.size, entry.offset]
    big = [value for value in values if value >= _ZIP64_LIMIT]
    file_size, size, offset = [
        value if value < _ZIP64_LIMIT else 0xFFFFFFFF for value in values
    ]
    extra = b""
    if big:
        extra = _EXTRA.pack(_ZIP64_EXTRA_ID, 8 * len(big)) + struct.pack(f"<{len(big)}Q", *big)

    record = _CENTRAL.pack(
        _CENTRAL_SIG, entry.made_by & 0xFF, entry.made_by >> 8,
        max(entry.needed, 45 if big else 20), entry.flags, entry.method, entry.dos_time,
        entry.dos_date, entry.crc, size, file_size, len(entry.raw_name), len(extra), 0, 0, 0,
        entry.external_attr, offset,
    )
    return record + entry.raw_name + extra


def _end_records(count: int, cd_size: int, cd_offset: int) -> bytes:
    count16 = 0xFFFF if count >= _ZIP64_COUNT_LIMIT else count
    cd_size32 = 0xFFFFFFFF if cd_size >= _ZIP64_LIMIT else cd_size
    cd_offset32 = 0xFFFFFFFF if cd_offset >= _ZIP64_LIMIT else cd_offset
    records = b""
    if (count16, cd_size32, cd_offset32) != (count, cd_size, cd_offset):
        end64_offset = cd_offset + cd_size
        records = _END64.pack(
            _END64_SIG, _END64.size - 12, (_UNIX_HOST << 8) | 45, 45, 0, 0, count, count,
            cd_size, cd_offset,
        ) + _LOCATOR64.pack(_LOCATOR64_SIG, 0, end64_offset, 1)
    return records + _END.pack(_END_SIG, 0, 0, count16, count16, cd_size32, cd_offset32, 0)


def _read_blocks(handle) -> Iterator[bytes]:
    while True:
        block = handle.read(BLOCK_SIZE)
        if not block:
            return
        yield block


def _chunks(source: Source) -> Iterator[bytes]:
    """Byte chunks of ``source``: bytes, a path (str or PathLike), a readable file or chunks."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield source
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            yield from _read_blocks(handle)
    elif hasattr(source, "read"):
        yield from _read_blocks(source)
    else:
        yield from source


class _Verifier:
    """Counts and hashes content, failing as soon as it is known not to match.

    ``trusted`` content was already hashed by its producer (a download verified against its
    digest), so only its size and CRC-32 are computed: hashing it again would cost a full
    sha256 pass per copy for nothing.
    """

    def __init__(self, what: str, digest: str, size: int, trusted: bool = False) -> None:
        self.what, self.digest, self.size = what, digest, size
        self.count, self.crc = 0, 0
        self._sha256 = None if trusted else hashlib.sha256()

    def update(self, chunk) -> None:
        self.count += len(chunk)
        if self.count > self.size:
            raise self._mismatch(f"more than the {self.size} bytes expected")
        if self._sha256 is not None:
            self._sha256.update(chunk)
        self.crc = zlib.crc32(chunk, self.crc)

    def finish(self) -> None:
        if self.count != self.size:
            raise self._mismatch(f"{self.count} bytes, not {self.size}")
        if self._sha256 is None or not self.digest:
            return
        actual = "sha256:" + self._sha256.hexdigest()
        if actual != self.digest:
            raise self._mismatch(f"content with digest {actual}")

    def _mismatch(self, what: str) -> ArchiveDigestError:
        return ArchiveDigestError(
            f"{self.what}: the source delivered {what} for {self.digest or 'the member'}, so "
            "nothing was kept; fetch the blob again (the registry, network or spool file "
            "corrupted it)"
        )


def _space_or_io_error(exc: OSError, path: str, what: str, outcome: str) -> ArchiveError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ArchiveSpaceError(
            f"no space left on the file system of {path} while {what}; {outcome}; free some "
            "space or write the archive to another file system"
        )
    return ArchiveError(f"{what} failed for {path}: {exc.strerror}; {outcome}")


def _sniff_manifest_type(raw: bytes, digest: str) -> str:
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = None
    if isinstance(manifest, dict) and isinstance(manifest.get("mediaType"), str):
        return manifest["mediaType"]
    if isinstance(manifest, dict) and "layers" in manifest:
        return OCI_MANIFEST
    raise ArchiveFormatError(
        f"platform manifest {digest} has no mediaType field and is not an OCI image manifest; "
        "pass its media type (the registry's Content-Type) explicitly"
    )


def _layout_index(digest: str, media_type: str, size: int) -> bytes:
    # Byte for byte what Hangar (containers/image) writes: compact, no ref-name annotation.
    layout = {"schemaVersion": 2, "manifests": [
        {"mediaType": media_type, "digest": digest, "size": size},
    ]}
    return json.dumps(layout, separators=(",", ":")).encode()


def _remove_stale_temp_files(path: str) -> None:
    directory, name = os.path.split(path)
    prefix = f".{name}."
    for item in os.scandir(directory):
        if item.name.startswith(prefix) and item.name.endswith(_TEMP_SUFFIX):
            _remove_if_abandoned(item.path)


def _remove_if_abandoned(path: str) -> None:
    # A live writer holds the flock from before its file is visible under this name (see
    # _create_locked), so a file whose flock we get belongs to a dead writer.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_locked(path: str) -> int:
    """Create ``path`` and flock it; retry when a cleaner removed it between the two.

    Another process's _remove_if_abandoned may take the flock in the instant between our create
    and our flock and unlink the file; the inode check sees that and we start again.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _move_bytes(fd: int, source: int, target: int, length: int) -> None:
    """Copy ``length`` bytes from ``source`` down to ``target`` (< source) in the same file."""
    done = 0
    while done < length:
        block = os.pread(fd, min(BLOCK_SIZE, length - done), source + done)
        if not block:
            raise OSError(errno.EIO, "archive shorter than its members")
        _write_all(fd, block, target + done)
        done += len(block)


class BlobSlot:
    """Room reserved in an archive for one blob, filled by one thread with write().

    Leaving the ``with`` block normally checks the size (and the digest, unless the source is
    trusted) and makes the member part of the archive; leaving it by an exception gives the
    room back. Nothing of a blob that failed stays in the archive.
    """

    def __init__(self, writer: ArchiveWriter, entry: _Entry, start: int,
                 verifier: _Verifier) -> None:
        self.writer = writer
        self.entry = entry
        self.verifier = verifier
        self.end = start + entry.size
        self._position = start

    def write(self, chunk) -> None:
        self.verifier.update(chunk)
        self.writer._slot_write(chunk, self._position, f"writing member {self.entry.name}")
        self._position += len(chunk)

    def __enter__(self) -> BlobSlot:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self.writer._give_back(self)
            return
        try:
            self.verifier.finish()
            self.writer._complete(self)
        except BaseException:
            self.writer._give_back(self)
            raise


class ArchiveWriter:
    """Writes a new Hangar archive, or appends to one (Hangar's ``sync``), crash-safely.

    ``ArchiveWriter(dest)`` writes a new archive that replaces ``dest`` on commit();
    ``ArchiveWriter(dest, append=True)`` adds to the existing ``dest`` and keeps its index
    ``version`` and ``time``. Leaving a ``with`` block without commit() discards the work, and
    so does abort(). All methods are thread-safe.
    """

    def __init__(self, dest: Union[str, os.PathLike], *, append: bool = False) -> None:
        self.path = os.path.abspath(os.fspath(dest))
        self._append = append
        self._touched = False
        self._lock = threading.Lock()
        # Signalled when the last slot write in progress ends; see _slot_write.
        self._idle = threading.Condition(self._lock)
        self._entries: list = []
        self._names: set = set()
        self._reserved: dict = {}
        self._writing = 0
        self._base = 0
        self._closed = False
        self._temp = ""
        if append:
            self._open_existing()
        else:
            self._open_new()

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.abort()

    @property
    def images(self) -> list:
        """Entries of the index as it will be written (old ones first when appending)."""
        return list(self.index.images)

    def has_blob(self, digest: str) -> bool:
        """True once blob ``digest`` is in the archive (set reads need no lock)."""
        return blob_member_name(digest) in self._names

    def add_blob(self, digest: str, size: int, source: Source, trusted: bool = False) -> bool:
        """Store blob ``digest`` of ``size`` bytes from ``source``; False if already stored.

        ``source`` is bytes, a path (a spooled file), a readable file object or an iterable
        of byte chunks. The content is verified while it is written (``trusted`` content, a
        spool file written from a verified download, only by its size); on a mismatch the
        member is removed again and ArchiveDigestError raised. Errors of the source propagate
        after the same clean-up.
        """
        name = blob_member_name(digest)
        with self._lock:
            self._check_open()
            if name in self._names:
                return False
            self._write_member(name, size, _chunks(source), digest, trusted)
            return True

    def reserve_blob(self, digest: str, size: int, trusted: bool = False) -> Optional[BlobSlot]:
        """Room for blob ``digest`` of ``size`` bytes, for one thread to fill without the lock.

        None when the blob is already stored. Use the slot as a context manager: see BlobSlot.
        The caller makes sure one digest is not reserved twice at once (the copy engine holds
        a lock per digest).
        """
        name = blob_member_name(digest)
        with self._lock:
            self._check_open()
            if name in self._names:
                return None
            if name in self._reserved:
                raise ArchiveError(f"archive {self.path}: blob {digest} is already being written")
            entry = self._new_entry(name, size)
            header = _local_header(entry)
            self._write(header, entry.offset, f"writing member {name}")
            self._end = entry.offset + len(header) + size
            self._reserved[name] = entry
        verifier = _Verifier(f"archive {self.path} member {name}", digest, size, trusted)
        return BlobSlot(self, entry, entry.offset + len(header), verifier)

    def copy_blob_from(self, reader: ArchiveReader, digest: str) -> bool:
        """Store blob ``digest`` from another archive, verified on the way."""
        if self.has_blob(digest):
            return False
        with reader.open_blob(digest) as blob:
            return self.add_blob(digest, len(blob), blob)

    def add_platform_manifest(
        self, digest: str, raw: bytes, media_type: Optional[str] = None
    ) -> bool:
        """Store a platform manifest as Hangar does: its blob plus ``<hex>/index.json`` and
        ``<hex>/oci-layout``. ``media_type`` defaults to the manifest's own ``mediaType``.
        Returns False when all three members were already there."""
        actual = "sha256:" + hashlib.sha256(raw).hexdigest()
        if actual != digest:
            raise ArchiveDigestError(
                f"archive {self.path}: platform manifest bytes hash to {actual}, not {digest}; "
                "nothing was stored; fetch the manifest again"
            )
        media_type = media_type or _sniff_manifest_type(raw, digest)
        if media_type in INDEX_TYPES:
            raise ArchiveFormatError(
                f"{digest} is an image index ({media_type}), not a platform manifest; store "
                "an index with add_blob and record it as the entry's source_index"
            )
        members = (
            (blob_member_name(digest), raw, digest),
            (layout_member_names(digest)[0], _layout_index(digest, media_type, len(raw)), ""),
            (layout_member_names(digest)[1], OCI_LAYOUT, ""),
        )
        with self._lock:
            self._check_open()
            missing = [member for member in members if member[0] not in self._names]
            for name, data, member_digest in missing:
                self._write_member(name, len(data), [data], member_digest)
            return bool(missing)

    def copy_image_from(self, reader: ArchiveReader, entry: ImageEntry) -> None:
        """Copy ``entry`` with every member it needs from another archive, then add it."""
        for spec in entry.specs:
            if not self.has_blob(spec.digest) or not self._has_layout(spec.digest):
                descriptor = reader.read_layout_descriptor(spec.digest)
                raw = reader.read_blob(spec.digest)
                self.add_platform_manifest(spec.digest, raw, descriptor["mediaType"])
        for digest in entry.iter_blob_digests():
            self.copy_blob_from(reader, digest)
        self.add_image(entry)

    def add_image(self, entry: ImageEntry) -> None:
        """Append ``entry`` to the index (a repeated ``source:tag`` is kept twice, as Hangar
        does); every member it refers to must already be stored."""
        with self._lock:
            self._check_image(entry)
            self.index.images.append(entry)

    def replace_image(self, entry: ImageEntry) -> None:
        """Put ``entry`` in place of the entries with its ``source:tag``, or append it."""
        with self._lock:
            self._check_image(entry)
            self.index.replace(entry)

    def commit(self) -> None:
        """Write ``index.json`` and the central directory, make the archive durable and
        put it in place (new archive) or remove the journal (append)."""
        with self._lock:
            self._check_open()
            if self._reserved:
                raise ArchiveError(
                    f"archive {self.path}: {len(self._reserved)} blob(s) are still being "
                    "written; finish or abandon every reserved slot before committing")
            self._guarded("closing gaps between members", self._close_gaps)
            data = self.index.to_json().encode("utf-8")
            self._write_member(INDEX_NAME, len(data), [data], "")
            self._guarded("writing the central directory", self._finish_file)
            self._guarded("putting the archive in place", self._publish)
            self._closed = True

    def abort(self) -> None:
        """Discard everything written: remove the temp file, or restore the archive."""
        with self._lock:
            self._discard()

    # -- opening --

    def _open_new(self) -> None:
        directory, name = os.path.split(self.path)
        try:
            _remove_stale_temp_files(self.path)
            self._temp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")
            self._fd = _create_locked(self._temp)
        except OSError as exc:
            raise _space_or_io_error(
                exc, self.path, "creating the archive", "nothing was written"
            ) from exc
        self._end = 0
        self.index = ArchiveIndex.new()

    def _open_existing(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise ArchiveError(
                f"cannot open archive {self.path} to append to it: {exc.strerror}; create it "
                "with a save first"
            ) from exc
        try:
            self._prepare_append()
        except BaseException:
            os.close(self._fd)
            raise

    def _prepare_append(self) -> None:
        _lock_or_fail(self._fd, self.path)
        try:
            _apply_journal(self._fd, self.path)
            reader = ArchiveReader(self.path, _recover=False)
            self._end = self._base = _tail_start(reader)
            _write_journal(self._fd, self.path, self._end)
        except OSError as exc:
            raise _space_or_io_error(
                exc, self.path, "preparing the append", "the archive was not changed"
            ) from exc
        self._entries = [entry for entry in reader._entries if entry.name != INDEX_NAME]
        self._names = {entry.name for entry in self._entries}
        self.index = reader.index

    # -- members --

    def _check_open(self) -> None:
        if self._closed:
            raise ArchiveError(
                f"archive writer for {self.path} is already committed or aborted; open a new one"
            )

    def _check_image(self, entry: ImageEntry) -> None:
        self._check_open()
        for position, spec in enumerate(entry.specs):
            spec.check(f"image {entry.reference} images[{position}]")
        missing = [name for name in _required_members(entry) if name not in self._names]
        if missing:
            raise ArchiveMissingBlobError(
                f"archive {self.path}: image {entry.reference} refers to {len(missing)} "
                f"member(s) not stored yet, first {missing[0]}; store its blobs and platform "
                "manifests before adding the image"
            )

    def _has_layout(self, digest: str) -> bool:
        return all(name in self._names for name in layout_member_names(digest))

    def _new_entry(self, name: str, size: int) -> _Entry:
        dos_time, dos_date = _dos_timestamp()
        return _Entry(
            name=name, raw_name=name.encode("utf-8"), offset=self._end, size=size,
            file_size=size, dos_time=dos_time, dos_date=dos_date,
        )

    def _write_member(self, name: str, size: int, chunks: Iterable[bytes], digest: str,
                      trusted: bool = False) -> None:
        entry = self._new_entry(name, size)
        header = _local_header(entry)
        verifier = _Verifier(f"archive {self.path} member {name}", digest, size, trusted)
        try:
            self._write(header, entry.offset, f"writing member {name}")
            position = entry.offset + len(header)
            for chunk in chunks:
                verifier.update(chunk)
                self._write(chunk, position, f"writing member {name}")
                position += len(chunk)
            verifier.finish()
            entry.crc = verifier.crc
            self._write(struct.pack("<I", entry.crc), entry.offset + _CRC_OFFSET,
                        f"writing member {name}")
        except BaseException:
            self._drop_from(entry.offset)
            raise

        self._entries.append(entry)
        self._names.add(name)
        self._end = position

    # -- slots --

    def _slot_write(self, data, offset: int, what: str) -> None:
        """pwrite for a slot, outside the lock; _discard waits for writes in progress, so
        none lands after the file is closed or an append is rolled back."""
        with self._lock:
            self._check_open()
            self._writing += 1
            self._touched = True
        try:
            _write_all(self._fd, data, offset)
        except OSError as exc:
            raise _space_or_io_error(exc, self.path, what, "nothing was kept") from exc
        finally:
            with self._lock:
                self._writing -= 1
                if not self._writing:
                    self._idle.notify_all()

    def _complete(self, slot: BlobSlot) -> None:
        entry = slot.entry
        with self._lock:
            self._check_open()
            entry.crc = slot.verifier.crc
            self._write(struct.pack("<I", entry.crc), entry.offset + _CRC_OFFSET,
                        f"writing member {entry.name}")
            del self._reserved[entry.name]
            self._entries.append(entry)
            self._names.add(entry.name)

    def _give_back(self, slot: BlobSlot) -> None:
        entry = slot.entry
        with self._lock:
            self._reserved.pop(entry.name, None)
            if slot.end == self._end:
                self._end = entry.offset

    def _close_gaps(self) -> None:
        """Move members down over the room of slots given back, so no gap stays in the file."""
        position = self._base
        for entry in sorted(self._entries, key=lambda item: item.offset):
            if entry.offset < self._base:
                continue
            length = len(_local_header(entry)) + entry.size
            if entry.offset > position:
                _move_bytes(self._fd, entry.offset, position, length)
                entry.offset = position
            position += length
        self._end = position

    def _write(self, data, offset: int, what: str) -> None:
        self._touched = True
        try:
            _write_all(self._fd, data, offset)
        except OSError as exc:
            self._discard()
            raise _space_or_io_error(exc, self.path, what, self._outcome()) from exc

    def _drop_from(self, offset: int) -> None:
        if self._closed:
            return
        try:
            os.ftruncate(self._fd, offset)
        except OSError:
            self._discard()

    def _outcome(self) -> str:
        if self._append:
            return "the archive was restored to its content before the append"
        return "the partial archive was removed"

    # -- finishing --

    def _guarded(self, what: str, step) -> None:
        try:
            step()
        except OSError as exc:
            self._discard()
            raise _space_or_io_error(exc, self.path, what, self._outcome()) from exc

    def _finish_file(self) -> None:
        central = b"".join(_central_record(entry) for entry in self._entries)
        end = _end_records(len(self._entries), len(central), self._end)
        self._write(central + end, self._end, "writing the central directory")
        os.ftruncate(self._fd, self._end + len(central) + len(end))
        os.fsync(self._fd)

    def _publish(self) -> None:
        if self._append:
            journal = _journal_path(self.path)
            os.unlink(journal)
            _fsync_directory(journal)
        else:
            os.replace(self._temp, self.path)
            _fsync_directory(self.path)
        os.close(self._fd)

    def _discard(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._writing:
            self._idle.wait()
        try:
            if self._append and not self._touched:
                # Nothing was written: rewriting the same tail would still change the mtime.
                os.unlink(_journal_path(self.path))
            elif self._append:
                # If this fails the journal stays, and the next open restores the archive.
                _apply_journal(self._fd, self.path)
            else:
                _remove_quietly(self._temp)
        except (OSError, ArchiveError):
            pass
        finally:
            os.close(self._fd)
