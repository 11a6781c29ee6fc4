# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the reliability tests: modules run for real, fault proxies, destinations.

Modules run the way Ansible runs them, one process per task: ``run_module`` starts
``python -m <module> <args file>`` (about a second), ``run_ansible`` and ``start_ansible`` go
through the ``ansible`` command when the test needs it (``-vvv`` output, killing the process
group). Results are parsed from the module's JSON and returned as :class:`Outcome`.

Sources are the standard images of ``registry_plain``; destinations are repositories under a
project named after the test in the session registry ``dest_registry``, so tests never see
each other's blobs or tags.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

import ansible_collections.airgap.hangar.plugins.module_utils.errors as errors_module
from tests.support import RegistryServer
from tests.support.registry import pid_alive
from tests.support.fault_proxy import FaultProxy
from tests.support.images import build_image, inspect_raw, push_image, run_skopeo

COLLECTIONS_ROOT = str(Path(errors_module.__file__).parents[5])
MODULES = "ansible_collections.airgap.hangar.plugins.modules"
MODULE_TIMEOUT = 180  # seconds; a hung module fails the test instead of the whole run
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
BIG_LAYER = 1_600_000  # bytes of seeded random data, so the gzip layer is about as large
# Names the collection gives its temporary files: archive temp files, spool directories and
# the append journal.
LEFTOVER = re.compile(r"\.hangar-(tmp|spool|journal)")


@dataclass
class Outcome:
    """What a module run returned, and how long it took."""

    result: dict
    seconds: float
    stdout: str
    stderr: str

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))

    @property
    def warnings(self) -> list:
        """Warning texts; ansible-core 2.19 returns them as structured summaries."""
        return [item["event"]["msg"] if isinstance(item, dict) else str(item)
                for item in self.result.get("warnings") or []]

    def image(self, text: str) -> dict:
        """The entry of ``images`` whose source or destination contains ``text``."""
        for entry in self.result.get("images") or []:
            if text in entry["source"] or text in entry["destination"]:
                return entry
        raise AssertionError(f"no image matching {text!r} in {self.result.get('images')}")


def module_env(extra: dict | None = None) -> dict:
    # No credentials of the person running the tests may reach a test registry.
    return {**os.environ, "PYTHONPATH": COLLECTIONS_ROOT, "ANSIBLE_COLLECTIONS_PATH":
            COLLECTIONS_ROOT, "ANSIBLE_NOCOLOR": "true", "ANSIBLE_LOCALHOST_WARNING": "false",
            "DOCKER_CONFIG": "/nonexistent-docker-config", "XDG_RUNTIME_DIR": "",
            "XDG_CONFIG_HOME": "/nonexistent-config-home", **(extra or {})}


class ModuleRunner:
    """Runs a module of the collection as its own process with an args file."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.runs = 0

    def args_file(self, module: str, args: dict, check: bool, diff: bool) -> Path:
        self.runs += 1
        values = {key: value for key, value in args.items() if value is not None}
        values.update(_ansible_check_mode=check, _ansible_diff=diff)
        path = self.workdir / f"{module}-{self.runs}.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": values}))
        return path

    def __call__(self, module: str, *, check: bool = False, diff: bool = False,
                 env: dict | None = None, **args: Any) -> Outcome:
        path = self.args_file(module, args, check, diff)
        started = time.monotonic()
        process = subprocess.run(
            [sys.executable, "-m", f"{MODULES}.{module}", str(path)], capture_output=True,
            text=True, timeout=MODULE_TIMEOUT, check=False, env=module_env(env))
        seconds = time.monotonic() - started
        try:
            result = json.loads(process.stdout)
        except ValueError:
            raise AssertionError(f"{module} printed no JSON result (exit {process.returncode}):"
                                 f"\n{process.stdout[-2000:]}\n{process.stderr[-4000:]}") from None
        return Outcome(result, seconds, process.stdout, process.stderr)

    def start(self, module: str, log: Path, **args: Any) -> subprocess.Popen:
        """Start the module in the background, in its own process group."""
        path = self.args_file(module, args, False, False)
        with open(log, "wb") as handle:
            return subprocess.Popen([sys.executable, "-m", f"{MODULES}.{module}", str(path)],
                                    stdout=handle, stderr=subprocess.STDOUT, env=module_env(),
                                    start_new_session=True)


@pytest.fixture
def run_module(tmp_path: Path) -> ModuleRunner:
    directory = tmp_path / "module-args"
    directory.mkdir()
    return ModuleRunner(directory)


def ansible_command(module: str, args: dict, *, verbosity: int = 0) -> list:
    binary = Path(sys.executable).with_name("ansible")
    command = [str(binary) if binary.exists() else "ansible", "localhost", "-m",
               f"airgap.hangar.{module}", "-a", json.dumps(args), "-e",
               f"ansible_python_interpreter={sys.executable}"]
    return command + (["-" + "v" * verbosity] if verbosity else [])


def start_ansible(module: str, args: dict, log: Path) -> subprocess.Popen:
    """Start ``ansible localhost -m <module>`` in its own process group."""
    with open(log, "wb") as handle:
        return subprocess.Popen(ansible_command(module, args), stdout=handle,
                                stderr=subprocess.STDOUT, env=module_env(),
                                start_new_session=True)


def process_tree(root: int) -> list:
    """``root`` and every process below it, from /proc."""
    children: dict = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL ansible and the process groups below it, the module among them.

    Ansible's worker calls setsid(), so its module runs in a group of its own that a signal
    to ansible's group never reaches.
    """
    pids = process_tree(process.pid)
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            continue
    for group in groups - {os.getpgrp()}:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """``fault_proxy(upstream, **options)`` starts a proxy that stops with the test."""
    started: list = []

    def start(upstream: RegistryServer | str | None, **options: Any) -> FaultProxy:
        if isinstance(upstream, RegistryServer):
            options.setdefault("ca_path", str(upstream.ca_path) if upstream.ca_path else None)
            upstream = upstream.url
        proxy = FaultProxy(upstream, **options).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``small_fs("1m")`` mounts a tmpfs of that size for this test (root only, else skip)."""
    mounted: list = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a full file system is simulated with a small tmpfs, which needs root")
        target = tmp_path / f"small-fs-{len(mounted)}"
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(target)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], capture_output=True, check=False)


@pytest.fixture(scope="session")
def dest_registry() -> Iterator[RegistryServer]:
    """An empty plain registry that only these tests write to."""
    with RegistryServer("plain") as registry:
        yield registry


@pytest.fixture(scope="session")
def big_image(registry_plain: RegistryServer, seed: Callable,
              tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``reliability/big:1`` in ``registry_plain``: one layer a little over 1.5 MiB.

    Big enough that a download breaks after whole 1 MiB reads, so a resumed download starts
    from a byte offset, and that a nearly full small file system cannot take it.
    """
    seed(registry_plain)
    built = build_image(tmp_path_factory.mktemp("big-image"), "big", kind="docker",
                        layer_sizes=(BIG_LAYER,), seed="reliability")
    push_image(built, registry_plain, "reliability/big", "1")
    layer, config = built.blobs[0], built.blobs[-1]
    return {"reference": "reliability/big:1", "digest": built.digest, "layer": layer.digest,
            "layer_size": layer.size, "config": config.digest}


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    """A repository project unique to this test (and parameter), valid in references."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    return f"{name[:40].strip('-')}-{digest}"


@pytest.fixture
def source(registry_plain: RegistryServer, seed: Callable) -> tuple:
    """(registry, standard images) of the shared source registry."""
    return registry_plain, seed(registry_plain)


def head_digest(registry: RegistryServer, repository: str, reference: str) -> str | None:
    """The digest a tag or digest points at in ``registry``, or None when it is absent."""
    response = requests.head(f"{registry.url}/v2/{repository}/manifests/{reference}",
                             headers={"Accept": ACCEPT}, **registry.request_kwargs())
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def skopeo_digest(registry: RegistryServer, repository: str, reference: str) -> str:
    """sha256 of the manifest bytes skopeo reads at ``repository:reference``."""
    return "sha256:" + hashlib.sha256(inspect_raw(registry, repository, reference)).hexdigest()


def blob_digest(registry: RegistryServer, repository: str, digest: str) -> str:
    """sha256 of the whole blob as the registry serves it now."""
    response = requests.get(f"{registry.url}/v2/{repository}/blobs/{digest}",
                            **registry.request_kwargs())
    response.raise_for_status()
    return "sha256:" + hashlib.sha256(response.content).hexdigest()


def skopeo_copy(source: RegistryServer, source_ref: str, dest: RegistryServer,
                dest_ref: str) -> None:
    """Copy an image byte for byte, to give a destination tag an 'old' content."""
    run_skopeo(["copy", "--quiet", "--all", "--preserve-digests", *source.skopeo_args("src"),
                *dest.skopeo_args("dest"), f"docker://{source.host}/{source_ref}",
                f"docker://{dest.host}/{dest_ref}"])


def push_blob(registry: RegistryServer, repository: str, data: bytes) -> dict:
    """Upload one blob monolithically; return its descriptor fields."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    kwargs = registry.request_kwargs()
    started = requests.post(f"{registry.url}/v2/{repository}/blobs/uploads/", **kwargs)
    started.raise_for_status()
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    done = requests.put(f"{location}{separator}digest={digest}", data=data,
                        headers={"Content-Type": "application/octet-stream"}, **kwargs)
    done.raise_for_status()
    return {"digest": digest, "size": len(data)}


def push_manifest(registry: RegistryServer, repository: str, reference: str, raw: bytes,
                  media_type: str) -> str:
    """PUT manifest bytes unchanged; return their digest."""
    response = requests.put(f"{registry.url}/v2/{repository}/manifests/{reference}", data=raw,
                            headers={"Content-Type": media_type}, **registry.request_kwargs())
    response.raise_for_status()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def leftovers(directory: Path) -> list:
    """Temporary files or directories of the collection still in ``directory``."""
    return sorted(entry.name for entry in directory.iterdir() if LEFTOVER.search(entry.name))


def requests_for(proxy: FaultProxy, method: str, fragment: str) -> list:
    """Proxy log entries of ``method`` whose path contains ``fragment``."""
    return [record for record in proxy.requests
            if record.method == method and fragment in record.path]
