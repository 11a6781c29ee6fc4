# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for image list parsing, the failed list and the registry/project overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.airgap.hangar.plugins.module_utils.image_list import (
    ImageListEntry,
    ImageListError,
    apply_overrides,
    combine,
    format_failed_lines,
    parse_image_list,
    read_image_list_file,
)
from ansible_collections.airgap.hangar.plugins.module_utils.reference import (
    ReferenceError,
    parse_reference,
)

LIST_TEXT = """\
# images for the edge cluster
// a comment in Hangar's other style

  nginx:1.22
quay.io/skopeo/stable:v1.9 \t
registry.abc.com/a/b/c/image:latest
"""


def sources(entries: list) -> list:
    return [str(entry.source) for entry in entries]


def test_parse_image_list_skips_comments_and_blank_lines() -> None:
    result = parse_image_list(
        LIST_TEXT.splitlines(), allow_mirror_format=False, source_name="list.txt"
    )

    assert sources(result.entries) == [
        "docker.io/library/nginx:1.22",
        "quay.io/skopeo/stable:v1.9",
        "registry.abc.com/a/b/c/image:latest",
    ]
    assert result.warnings == []


def test_parse_image_list_keeps_stripped_line_and_number() -> None:
    result = parse_image_list(
        LIST_TEXT.splitlines(), allow_mirror_format=False, source_name="list.txt"
    )

    first, second = result.entries[:2]
    assert (first.line, first.line_number, first.destination) == ("nginx:1.22", 4, None)
    assert (second.line, second.line_number) == ("quay.io/skopeo/stable:v1.9", 5)


def test_parse_image_list_reads_mirror_line_when_allowed() -> None:
    result = parse_image_list(
        ["docker.io/library/nginx 127.0.0.1:5000/mirror/nginx 1.25"],
        allow_mirror_format=True,
        source_name="list.txt",
    )

    (entry,) = result.entries
    assert str(entry.source) == "docker.io/library/nginx:1.25"
    assert str(entry.destination) == "127.0.0.1:5000/mirror/nginx:1.25"
    assert entry.destination.explicit_registry is True


def test_parse_image_list_marks_destination_registry_defaulted_when_dest_has_none() -> None:
    result = parse_image_list(
        ["quay.io/skopeo/stable  mirror/stable\tv1"],
        allow_mirror_format=True,
        source_name="list.txt",
    )

    (entry,) = result.entries
    assert entry.destination.explicit_registry is False
    assert entry.destination.repository == "mirror/stable"
    assert entry.destination.tag == "v1"


def test_parse_image_list_warns_and_skips_mirror_line_when_not_allowed() -> None:
    result = parse_image_list(
        ["nginx", "nginx mirror/nginx 1.25"], allow_mirror_format=False, source_name="list.txt"
    )

    assert sources(result.entries) == ["docker.io/library/nginx:latest"]
    assert result.warnings == [
        'Ignore image list line "nginx mirror/nginx 1.25": invalid format, the SOURCE DEST TAG '
        "form is accepted by mirror only (list.txt line 2)"
    ]


@pytest.mark.parametrize("allow_mirror_format", [True, False])
def test_parse_image_list_warns_and_skips_four_column_line(allow_mirror_format: bool) -> None:
    line = "nginx mirror/nginx 1.25 extra"

    result = parse_image_list(
        [line, "nginx"], allow_mirror_format=allow_mirror_format, source_name="images.txt"
    )

    assert sources(result.entries) == ["docker.io/library/nginx:latest"]
    (warning,) = result.warnings
    assert warning.startswith(f'Ignore image list line "{line}": invalid format')
    assert "found 4 columns (images.txt line 1)" in warning


def test_parse_image_list_warns_and_skips_free_text_line() -> None:
    result = parse_image_list(
        ["TEST INVALID IMAGE LIST LINE"], allow_mirror_format=True, source_name="images.txt"
    )

    assert result.entries == []
    assert "found 5 columns" in result.warnings[0]


def test_parse_image_list_warns_and_skips_two_column_line() -> None:
    result = parse_image_list(["nginx mirror/nginx"], allow_mirror_format=True, source_name="l")

    assert result.entries == []
    assert "expected one reference or SOURCE DEST TAG but found 2 columns" in result.warnings[0]


def test_parse_image_list_warns_with_reason_when_reference_invalid() -> None:
    result = parse_image_list(
        ["nginx", "Foo/Bar:1", "x:"], allow_mirror_format=False, source_name="images option"
    )

    assert sources(result.entries) == ["docker.io/library/nginx:latest"]
    assert result.warnings == [
        'Ignore image list line "Foo/Bar:1": invalid image reference "Foo/Bar:1": repository '
        "must be lowercase (a-z, 0-9, separators . _ __ -) (images option line 2)",
        'Ignore image list line "x:": invalid image reference "x:": the tag after ":" is empty; '
        'give one (e.g. :latest) or drop the ":" (images option line 3)',
    ]


@pytest.mark.parametrize(
    "line",
    ["nginx:1 mirror/nginx 2", "nginx mirror/nginx:1 2", f"nginx@sha256:{'a' * 64} m/nginx 2"],
)
def test_parse_image_list_warns_when_mirror_columns_carry_tag(line: str) -> None:
    result = parse_image_list([line], allow_mirror_format=True, source_name="l")

    assert result.entries == []
    assert "SOURCE and DEST take no tag or digest" in result.warnings[0]


def test_parse_image_list_accepts_registry_port_in_mirror_columns() -> None:
    result = parse_image_list(
        ["127.0.0.1:5000/library/nginx localhost:5001/m/nginx 1"],
        allow_mirror_format=True,
        source_name="l",
    )

    assert result.warnings == []
    assert str(result.entries[0].destination) == "localhost:5001/m/nginx:1"


def test_parse_image_list_warns_when_mirror_tag_invalid() -> None:
    result = parse_image_list(["nginx m/nginx .x"], allow_mirror_format=True, source_name="l")

    assert result.entries == []
    assert 'tag ".x" is invalid' in result.warnings[0]


def test_parse_image_list_keeps_first_of_normalized_duplicates() -> None:
    lines = ["nginx", "docker.io/library/nginx:latest", "index.docker.io/library/nginx"]

    result = parse_image_list(lines, allow_mirror_format=False, source_name="list.txt")

    assert [entry.line for entry in result.entries] == ["nginx"]
    assert result.warnings == [
        'Ignore image list line "docker.io/library/nginx:latest": duplicate of list.txt line 1 '
        "(list.txt line 2)",
        'Ignore image list line "index.docker.io/library/nginx": duplicate of list.txt line 1 '
        "(list.txt line 3)",
    ]


def test_parse_image_list_keeps_same_source_with_other_destination() -> None:
    lines = ["nginx a/nginx 1", "nginx b/nginx 1", "nginx a/nginx 1"]

    result = parse_image_list(lines, allow_mirror_format=True, source_name="l")

    assert [str(entry.destination) for entry in result.entries] == [
        "docker.io/a/nginx:1",
        "docker.io/b/nginx:1",
    ]
    assert len(result.warnings) == 1


def test_read_image_list_file_names_file_in_warnings(tmp_path: Path) -> None:
    path = tmp_path / "images.txt"
    path.write_text("nginx\nbad image line here\n", encoding="utf-8")

    result = read_image_list_file(str(path), allow_mirror_format=False)

    assert sources(result.entries) == ["docker.io/library/nginx:latest"]
    assert result.warnings[0].endswith(f"({path} line 2)")


def test_read_image_list_file_accepts_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "images.txt"
    path.write_bytes(b"\xef\xbb\xbfnginx:1\r\nalpine\r\n")

    result = read_image_list_file(str(path), allow_mirror_format=False)

    assert [entry.line for entry in result.entries] == ["nginx:1", "alpine"]


def test_read_image_list_file_names_path_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"

    with pytest.raises(ImageListError, match=f'"{path}": it does not exist; check images_file'):
        read_image_list_file(str(path), allow_mirror_format=False)


def test_read_image_list_file_names_path_when_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("nginx # caf\xe9\n".encode("latin-1"))

    with pytest.raises(ImageListError, match=f'"{path}": it is not UTF-8 text') as caught:
        read_image_list_file(str(path), allow_mirror_format=False)

    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


def test_read_image_list_file_names_path_when_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageListError, match=f'cannot read image list file "{tmp_path}"'):
        read_image_list_file(str(tmp_path), allow_mirror_format=False)


def test_combine_reads_option_then_file_without_repeats(tmp_path: Path) -> None:
    path = tmp_path / "images.txt"
    path.write_text("alpine:3\nnginx\n", encoding="utf-8")

    result = combine(["nginx", "busybox"], str(path), allow_mirror_format=False)

    assert sources(result.entries) == [
        "docker.io/library/nginx:latest",
        "docker.io/library/busybox:latest",
        "docker.io/library/alpine:3",
    ]
    assert result.warnings == [
        f'Ignore image list line "nginx": duplicate of images option line 1 ({path} line 2)'
    ]


def test_combine_returns_empty_list_when_given_nothing() -> None:
    result = combine(None, None, allow_mirror_format=True)

    assert (result.entries, result.warnings) == ([], [])


def test_format_failed_lines_gives_parseable_original_lines(tmp_path: Path) -> None:
    parsed = parse_image_list(
        ["  nginx:1  ", "quay.io/a/b c/d v2"], allow_mirror_format=True, source_name="l"
    )
    path = tmp_path / "failed.txt"

    path.write_text(format_failed_lines(parsed.entries), encoding="utf-8")
    again = read_image_list_file(str(path), allow_mirror_format=True)

    assert path.read_text(encoding="utf-8") == "nginx:1\nquay.io/a/b c/d v2\n"
    assert again.entries == [
        ImageListEntry(entry.line, entry.source, entry.destination, number)
        for number, entry in enumerate(parsed.entries, start=1)
    ]


def test_format_failed_lines_is_empty_when_nothing_failed() -> None:
    assert format_failed_lines([]) == ""


def test_apply_overrides_replaces_registry_and_project() -> None:
    ref = parse_reference("registry.abc.com/a/b/c/image:1")

    result = apply_overrides(ref, registry="127.0.0.1:5000", project="mirror")

    assert str(result) == "127.0.0.1:5000/mirror/b/c/image:1"
    assert result.explicit_registry is True


def test_apply_overrides_keeps_reference_when_values_empty() -> None:
    ref = parse_reference("nginx:1")

    assert apply_overrides(ref, registry="", project=None) is ref


def test_apply_overrides_names_project_when_invalid() -> None:
    with pytest.raises(ReferenceError, match='invalid project "My/Project"'):
        apply_overrides(parse_reference("nginx"), project="My/Project")
