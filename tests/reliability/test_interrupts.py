# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interrupted and repeated runs: SIGKILL mid-transfer, then a re-run, then nothing to do.

``ansible`` runs the module in its own process group; the fault proxy slows or holds the
transfer so the kill lands while blobs are moving, never before or after. Then the test checks
what a user finds: an archive under its final name is whole (hangar_archive_info verify), a
destination tag holds the old or the new image and nothing in between, and a re-run finishes
the job, leaves no temporary files and is followed by a run that changes nothing (row 41).
Row 42 (check mode) closes the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    ModuleRunner,
    Outcome,
    head_digest,
    kill_group,
    leftovers,
    skopeo_copy,
    skopeo_digest,
    start_ansible,
)
from tests.support.fault_proxy import FaultProxy

SLOW = {"delay": 0.5, "chunk": 64 * 1024}  # the 1.6 MB layer takes about 12 s
MOVING = 128 * 1024  # bytes of the layer that must have passed before the kill


def kill_mid_transfer(proxy, process, predicate) -> None:
    """Wait until the proxy log shows the transfer under way, then kill ansible's group."""
    try:
        proxy.wait_for(predicate, timeout=90)
    finally:
        kill_group(process)
        proxy.release()


def layer_moving(layer: str):
    return lambda log: any(layer in r.path and r.bytes_sent >= MOVING for r in log)


def held(log: list) -> bool:
    return any(r.fault == "hold" for r in log)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_archive(run_module, path: Path) -> dict:
    info = run_module("hangar_archive_info", path=str(path), verify=True)
    assert not info.failed, info.msg
    assert info.result["valid"], info.result["problems"]
    return info.result


# -- save ------------------------------------------------------------------------------------

@dataclass
class KilledSave:
    """A save killed mid-transfer and run again; tests read what each step left."""

    dest: Path
    existed_after_kill: bool
    bytes_after_kill: str
    bytes_before: str
    rerun: Outcome
    info: dict
    leftovers: list


def killed_save(registry, big_image, workdir: Path, append: bool) -> KilledSave:
    runner = ModuleRunner(workdir)
    directory = workdir / "out"
    directory.mkdir()
    dest = directory / "images.zip"
    images = ["library/hello:v2", big_image["reference"]]
    if append:
        first = runner("hangar_save", images=images[:1], src_registry=registry.url,
                       dest=str(dest))
        assert not first.failed, first.msg
        images = images[1:]
    before = sha256_file(dest) if dest.exists() else ""
    args = dict(images=images, dest=str(dest), append=append)
    with FaultProxy(registry.url) as proxy:
        proxy.arm("delay", method="GET", path=f"/blobs/{big_image['layer']}", **SLOW)
        process = start_ansible("hangar_save", dict(args, src_registry=proxy.url),
                                workdir / "ansible.log")
        kill_mid_transfer(proxy, process, layer_moving(big_image["layer"]))
    existed, after = dest.exists(), ""
    if existed:
        # Opening the archive is what undoes an interrupted append, in any module.
        verify_archive(runner, dest)
        after = sha256_file(dest)
    rerun = runner("hangar_save", src_registry=registry.url, **args)
    info = verify_archive(runner, dest)
    return KilledSave(dest, existed, after, before, rerun, info, leftovers(directory))


@pytest.fixture(scope="module")
def killed_new_save(registry_plain, big_image, tmp_path_factory) -> KilledSave:
    return killed_save(registry_plain, big_image, tmp_path_factory.mktemp("killed-save"), False)


@pytest.fixture(scope="module")
def killed_append(registry_plain, big_image, tmp_path_factory) -> KilledSave:
    return killed_save(registry_plain, big_image, tmp_path_factory.mktemp("killed-append"), True)


def test_killed_save_leaves_no_archive_under_the_final_name(killed_new_save):
    assert not killed_new_save.existed_after_kill


def test_killed_append_leaves_the_previous_archive_byte_for_byte(killed_append):
    assert killed_append.existed_after_kill
    assert killed_append.bytes_after_kill == killed_append.bytes_before


@pytest.mark.parametrize("scenario", ["killed_new_save", "killed_append"])
def test_rerun_after_kill_completes_the_archive(request, scenario):
    killed = request.getfixturevalue(scenario)

    assert not killed.rerun.failed, killed.rerun.msg
    assert killed.info["count"] == 2


@pytest.mark.parametrize("scenario", ["killed_new_save", "killed_append"])
def test_rerun_after_kill_leaves_no_temporary_files(request, scenario):
    assert request.getfixturevalue(scenario).leftovers == []


# -- load ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_archive(big_image, registry_plain, tmp_path_factory) -> Path:
    """An archive holding only the big image."""
    directory = tmp_path_factory.mktemp("big-archive")
    path = directory / "big.zip"
    outcome = ModuleRunner(directory)("hangar_save", images=[big_image["reference"]],
                                      src_registry=registry_plain.url, dest=str(path))
    assert not outcome.failed, outcome.msg
    return path


def test_killed_load_keeps_old_tag_and_rerun_pushes_the_new_image(
        source, big_image, big_archive, dest_registry, fault_proxy, run_module, project,
        tmp_path):
    registry, images = source
    skopeo_copy(registry, "library/hello:oci", dest_registry, f"{project}/big:1")
    proxy = fault_proxy(dest_registry)
    proxy.arm("hold", method="PUT", path="/blobs/uploads/")
    args = dict(src=str(big_archive), dest_project=project)

    process = start_ansible("hangar_load", dict(args, dest_registry=proxy.url),
                            tmp_path / "ansible.log")
    kill_mid_transfer(proxy, process, held)

    assert head_digest(dest_registry, f"{project}/big", "1") == \
        images["library/hello:oci"]["digest"]
    rerun = run_module("hangar_load", dest_registry=dest_registry.url, **args)
    assert not rerun.failed, rerun.msg
    assert skopeo_digest(dest_registry, f"{project}/big", "1") == big_image["digest"]
    mark = dest_registry.log_mark()
    again = run_module("hangar_load", dest_registry=dest_registry.url, **args)
    assert not again.failed and not again.result["changed"]
    assert [entry for entry in dest_registry.requests_since(mark) if entry.is_write] == []


# -- mirror ----------------------------------------------------------------------------------


def test_killed_mirror_keeps_old_tag_and_rerun_finishes_then_changes_nothing(
        source, big_image, dest_registry, fault_proxy, run_module, project, tmp_path):
    registry, images = source
    skopeo_copy(registry, "library/hello:oci", dest_registry, f"{project}/big:1")
    proxy = fault_proxy(registry)
    proxy.arm("delay", method="GET", path=f"/blobs/{big_image['layer']}", **SLOW)
    args = dict(images=[big_image["reference"]], dest_registry=dest_registry.url,
                dest_project=project)

    process = start_ansible("hangar_mirror", dict(args, src_registry=proxy.url),
                            tmp_path / "ansible.log")
    kill_mid_transfer(proxy, process, layer_moving(big_image["layer"]))

    assert head_digest(dest_registry, f"{project}/big", "1") == \
        images["library/hello:oci"]["digest"]
    rerun = run_module("hangar_mirror", src_registry=registry.url, **args)
    assert rerun.result["changed"] and rerun.image("big")["action"] == "copied"
    assert skopeo_digest(dest_registry, f"{project}/big", "1") == big_image["digest"]
    mark = dest_registry.log_mark()
    again = run_module("hangar_mirror", src_registry=registry.url, **args)
    assert not again.result["changed"] and again.image("big")["action"] == "present"
    assert [entry for entry in dest_registry.requests_since(mark) if entry.is_write] == []


# -- repeated runs and check mode (rows 41, 42) ------------------------------------------------


def test_save_twice_leaves_archive_untouched_the_second_time(source, run_module, tmp_path):
    dest = tmp_path / "images.zip"
    args = dict(images=["library/hello:oci"], src_registry=source[0].url, dest=str(dest))
    first = run_module("hangar_save", **args)
    assert first.result["changed"], first.msg
    before = (sha256_file(dest), dest.stat().st_mtime_ns)

    second = run_module("hangar_save", **args)

    assert not second.failed and not second.result["changed"]
    assert (sha256_file(dest), dest.stat().st_mtime_ns) == before


def test_mirror_check_mode_predicts_change_and_writes_nothing(
        source, dest_registry, run_module, project):
    registry, images = source
    mark = dest_registry.log_mark()

    outcome = run_module("hangar_mirror", check=True, images=["library/busybox:1.36"],
                         src_registry=registry.url, dest_registry=dest_registry.url,
                         dest_project=project, arch=["*"])

    assert outcome.result["changed"]
    assert outcome.image("busybox")["action"] == "would_copy"
    assert outcome.image("busybox")["digest"] == images["library/busybox:1.36"]["digest"]
    assert [entry for entry in dest_registry.requests_since(mark) if entry.is_write] == []
    assert head_digest(dest_registry, f"{project}/busybox", "1.36") is None
