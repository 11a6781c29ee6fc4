# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: hangar_mirror, hangar_save and hangar_load against skopeo, side by side.

Run from anywhere with the dev virtualenv's Python::

    python tests/perf/bench.py [--size-mib N] [--quick] [--repeat N] [--json FILE]

It builds a corpus of 8 images (6 real gzip layers each, some layers shared, one 2-platform
OCI index), pushes it once to a loopback source registry, then copies it with each tool into a
fresh, empty ``docker-registry`` and prints wall time, client CPU, peak RSS, MiB/s and the ratio
to skopeo, plus PASS/MISS for each target. Every destination is checked against the source
digests, so a fast but wrong copy cannot pass. A benchmark, not a test: it exits 0 on a miss
and 1 only when it could not measure. See tests/perf/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

REPOSITORY = Path(__file__).resolve().parents[2]


def _collection_layout() -> Path:
    """A throwaway ``ansible_collections/airgap/hangar`` symlink to this checkout.

    Both the imports below and Ansible (ANSIBLE_COLLECTIONS_PATH) use it, so what is measured
    is always the code of this working tree, never an older copy in build/.
    """
    root = Path(tempfile.mkdtemp(prefix="hangar-bench-layout-"))
    atexit.register(shutil.rmtree, root, True)
    namespace = root / "ansible_collections" / "airgap"
    namespace.mkdir(parents=True)
    (namespace / "hangar").symlink_to(REPOSITORY, target_is_directory=True)
    return root


LAYOUT_ROOT = _collection_layout()
sys.path[:0] = [str(LAYOUT_ROOT), str(REPOSITORY)]

from ansible_collections.airgap.hangar.plugins.module_utils import media_types as mt  # noqa: E402
from tests.support.images import (  # noqa: E402
    BuiltImage,
    Descriptor,
    ImageBuildError,
    encode_json,
    inspect_raw,
    push_image,
    split_platform,
    write_layer,
)
from tests.support.registry import RegistryServer  # noqa: E402

MIB = 1 << 20
FULL_MIB = 1024
QUICK_MIB = 100
IMAGE_COUNT = 8
TAG = "v1"
REPOSITORY_PREFIX = "bench/app"
TINY_LAYER = 64 << 10  # the last layer of every image: a few-KiB "config files" layer
GZIP_LEVEL = 0  # stored deflate blocks: real gzip that skopeo will not recompress, built fast
BUILD_WORKERS = 2
PUSH_WORKERS = 2
# The access log stays on (no-op request counts need it); only logrus chatter is silenced.
REGISTRY_LOG_LEVEL = "error"

HANGAR_MIRROR = "hangar_mirror"
HANGAR_SAVE = "hangar_save"
HANGAR_LOAD = "hangar_load"
SKOPEO_LOOP = "skopeo copy loop"
SKOPEO_SYNC = "skopeo sync"
SKOPEO_OCI = "skopeo copy oci:"
ANSIBLE_PING = "ansible.builtin.ping"

COMMAND_TIMEOUT = 900  # seconds; no single step of a 1 GiB run comes near this
TIME_BINARY = "/usr/bin/time"
TIME_FORMAT = "%M %U %S %e"  # max RSS KiB, user s, system s, wall s

# Targets for a 2-core machine (docs/performance.md); save/load: transport.md 5.4's proposal.
MIRROR_SPEEDUP_TARGET = 1.5
NOOP_SECONDS_TARGET = 2.0
MODULE_RSS_TARGET_MIB = 150
SAVE_MIBS_PROPOSED = 200
LOAD_MIBS_PROPOSED = 180
BUSY_LOAD = 0.5  # 1-minute load average above which the machine is not idle

# Autogroup niceness of every session the benchmark starts (--nice); 0 leaves it alone.
SESSION_NICENESS = 0

# Share of the corpus size per layer slot, in hundredths (they add up to 100, see plan_corpus).
BASE_SHARE, PAIR_SHARE, BIG_SHARE, HUGE_SHARE, MEDIUM_SHARE, SMALL_SHARE = 4, 3, 4, 18, 2, 1


class BenchError(Exception):
    """The benchmark could not measure something: a tool failed or a copy is wrong."""


# -- corpus ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    seed: str
    size: int


@dataclass(frozen=True)
class ImageSpec:
    repository: str
    platforms: dict[str, list[LayerSpec]]

    @property
    def is_index(self) -> bool:
        return len(self.platforms) > 1


# Each distinct layer with its descriptor and diff_id (sha256 of the uncompressed tar).
LayerMap = dict[LayerSpec, tuple[Descriptor, str]]


@dataclass
class CorpusImage:
    """One image of the corpus as pushed to the source registry."""

    repository: str
    tag: str
    digest: str
    child_digests: list[str]
    built: BuiltImage


@dataclass
class Corpus:
    images: list[CorpusImage]
    unique_bytes: int
    layer_sizes: list[int]

    @property
    def references(self) -> list[str]:
        return [f"{image.repository}:{image.tag}" for image in self.images]

    @property
    def mib(self) -> float:
        return self.unique_bytes / MIB


def plan_corpus(size_mib: int, huge_layer_mib: int | None) -> list[ImageSpec]:
    """8 images of 6 layers whose unique layers add up to about ``size_mib``.

    Layer 1 is shared by all images (a base image), layer 2 by pairs of images, the others are
    unique; app7 carries one large layer so that streaming, not buffering, is exercised, and
    app0 is an index with a second platform of 6 layers of its own.
    """
    unit = size_mib * MIB // 100
    base = LayerSpec("base", BASE_SHARE * unit)
    pairs = [LayerSpec(f"pair{number}", PAIR_SHARE * unit) for number in range(IMAGE_COUNT // 2)]
    huge = huge_layer_mib * MIB if huge_layer_mib else HUGE_SHARE * unit
    specs = []
    for number in range(IMAGE_COUNT):
        own = f"app{number}"
        big = huge if number == IMAGE_COUNT - 1 else BIG_SHARE * unit
        layers = [base, pairs[number // 2], LayerSpec(f"{own}/big", big),
                  LayerSpec(f"{own}/medium", MEDIUM_SHARE * unit),
                  LayerSpec(f"{own}/small", SMALL_SHARE * unit),
                  LayerSpec(f"{own}/tiny", TINY_LAYER)]
        platforms = {"linux/amd64": layers}
        if number == 0:
            shares = (BASE_SHARE, PAIR_SHARE, BIG_SHARE, MEDIUM_SHARE, SMALL_SHARE)
            arm = [LayerSpec(f"{own}/arm64/{slot}", share * unit)
                   for slot, share in enumerate(shares)]
            platforms["linux/arm64/v8"] = arm + [LayerSpec(f"{own}/arm64/tiny", TINY_LAYER)]
        specs.append(ImageSpec(f"{REPOSITORY_PREFIX}{number}", platforms))
    return specs


class BlobPool:
    """Content-addressed blobs shared by the per-image layouts (which hard-link them)."""

    def __init__(self, directory: Path) -> None:
        self.blob_dir = directory / "blobs" / "sha256"
        self.blob_dir.mkdir(parents=True)
        self.sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def adopt(self, temp_path: Path, digest: str) -> None:
        """Called by write_layer once a layer is complete."""
        os.replace(temp_path, self.path(digest))

    def put(self, data: bytes, media_type: str) -> Descriptor:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.path(digest).write_bytes(data)
        return self.record(Descriptor(media_type, digest, len(data)))

    def record(self, descriptor: Descriptor) -> Descriptor:
        with self._lock:
            self.sizes[descriptor.digest] = descriptor.size
        return descriptor

    def path(self, digest: str) -> Path:
        return self.blob_dir / digest.split(":", 1)[1]


def build_layers(pool: BlobPool, specs: list[ImageSpec]) -> LayerMap:
    """Write every distinct layer once; return its descriptor and diff_id by spec."""
    distinct = list(dict.fromkeys(layer for spec in specs
                                  for layers in spec.platforms.values() for layer in layers))

    def build(layer: LayerSpec) -> tuple[Descriptor, str]:
        descriptor, diff_id = write_layer(pool, layer.seed, layer.size, mt.OCI_LAYER, GZIP_LEVEL)
        return pool.record(descriptor), diff_id

    with ThreadPoolExecutor(BUILD_WORKERS) as workers:
        return dict(zip(distinct, workers.map(build, distinct)))


def _config(platform_name: str, diff_ids: list[str], repository: str) -> bytes:
    document = {
        **split_platform(platform_name),
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [f"BENCH_IMAGE={repository}"], "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return encode_json(document)


def _image_manifest(pool: BlobPool, spec: ImageSpec, platform_name: str,
                    layers: LayerMap) -> tuple[Descriptor, bytes]:
    chosen = [layers[layer] for layer in spec.platforms[platform_name]]
    diff_ids = [diff_id for _descriptor, diff_id in chosen]
    config_raw = _config(platform_name, diff_ids, spec.repository)
    config = pool.put(config_raw, mt.OCI_CONFIG)
    manifest = encode_json({
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [descriptor.to_json() for descriptor, _diff_id in chosen],
    })
    return pool.put(manifest, mt.OCI_MANIFEST), manifest


def _write_layout(pool: BlobPool, directory: Path, top: Descriptor, digests: set[str]) -> None:
    """A one-entry OCI layout (push_image takes the single entry, by no name)."""
    blob_dir = directory / "blobs" / "sha256"
    blob_dir.mkdir(parents=True)
    for digest in digests:
        os.link(pool.path(digest), blob_dir / digest.split(":", 1)[1])
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_bytes(
        encode_json({"schemaVersion": 2, "manifests": [top.to_json()]}))


def assemble_image(pool: BlobPool, root: Path, spec: ImageSpec,
                   layers: LayerMap) -> CorpusImage:
    """Configs, manifests and (for two platforms) the index of one image, as a layout."""
    children = [(name, *_image_manifest(pool, spec, name, layers)) for name in spec.platforms]
    top, raw = children[0][1], children[0][2]
    if spec.is_index:
        entries = [desc.to_json(platform=split_platform(name))
                   for name, desc, _manifest in children]
        raw = encode_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
        top = pool.put(raw, mt.OCI_INDEX)

    digests = {top.digest}
    for _name, descriptor, manifest in children:
        document = json.loads(manifest)
        digests.add(descriptor.digest)
        digests.update(blob["digest"] for blob in [document["config"], *document["layers"]])
    layout = root / spec.repository.replace("/", "_")
    _write_layout(pool, layout, top, digests)

    built = BuiltImage(layout, spec.repository, "oci-index" if spec.is_index else "oci",
                       top.media_type, top.digest, raw)
    child_digests = ([descriptor.digest for _name, descriptor, _manifest in children]
                     if spec.is_index else [])
    return CorpusImage(spec.repository, TAG, top.digest, child_digests, built)


def build_corpus(root: Path, specs: list[ImageSpec]) -> Corpus:
    pool = BlobPool(root / "pool")
    layers = build_layers(pool, specs)
    images = [assemble_image(pool, root / "layouts", spec, layers) for spec in specs]
    layer_sizes = sorted((descriptor.size for descriptor, _diff_id in layers.values()),
                         reverse=True)
    return Corpus(images, sum(pool.sizes.values()), layer_sizes)


def push_corpus(corpus: Corpus, source: RegistryServer) -> None:
    with ThreadPoolExecutor(PUSH_WORKERS) as workers:
        pushes = [workers.submit(push_image, image.built, source, image.repository, image.tag)
                  for image in corpus.images]
        for push in pushes:
            push.result()


# -- measuring processes -----------------------------------------------------------------------


@dataclass
class Usage:
    """Resources of one command (or a sequence of commands) and its waited-for descendants."""

    wall: float = 0.0
    user: float = 0.0
    system: float = 0.0
    max_rss_kib: int = 0

    @property
    def cpu(self) -> float:
        return self.user + self.system

    @property
    def rss_mib(self) -> float:
        return self.max_rss_kib / 1024

    def add(self, other: Usage) -> Usage:
        return Usage(self.wall + other.wall, self.user + other.user,
                     self.system + other.system, max(self.max_rss_kib, other.max_rss_kib))


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    usage: Usage


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_measured(command: list[str], *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout: float = COMMAND_TIMEOUT) -> Completed:
    """Run a command to completion; CPU from wait4, peak RSS from /usr/bin/time.

    wait4 reports user and system CPU of the command plus every descendant it waited for (the
    whole Ansible tree). Its peak RSS cannot be used: Linux carries the RSS of the forking
    parent (this script) over exec, so every child would seem to need at least as much. The
    small /usr/bin/time in between gives the command a clean start. The command runs in a new
    session, so on timeout its process group, and only it, is killed.
    """
    handle, rss_name = tempfile.mkstemp(prefix="hangar-bench-rss-")
    os.close(handle)
    timed = [TIME_BINARY, "-f", "%M", "-o", rss_name, *command]
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            returncode, usage = _wait_measured(timed, out, err, env, cwd, timeout)
            usage.max_rss_kib = _time_rss(Path(rss_name))
            out.seek(0)
            err.seek(0)
            return Completed(returncode, out.read().decode(errors="replace"),
                             err.read().decode(errors="replace"), usage)
    finally:
        os.unlink(rss_name)


def _wait_measured(command: list[str], out: Any, err: Any, env: dict[str, str] | None,
                   cwd: Path | None, timeout: float) -> tuple[int, Usage]:
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd,
                               preexec_fn=_new_session)
    timer = threading.Timer(timeout, _kill_group, (process.pid,))
    timer.start()
    try:
        _pid, status, rusage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    wall = time.monotonic() - started
    # Popen must not wait for a process wait4 already reaped.
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, Usage(wall, rusage.ru_utime, rusage.ru_stime)


def _new_session() -> None:
    """In the child: a session (so a process group to kill) and a scheduler autogroup.

    Every tool gets an autogroup of its own, as Ansible's worker makes one for the module,
    so on a busy machine each competes with the registries on equal terms.
    """
    os.setsid()
    if SESSION_NICENESS:
        Path("/proc/self/autogroup").write_text(str(SESSION_NICENESS))


def _time_rss(path: Path) -> int:
    """The %M figure; /usr/bin/time puts an exit-status line before it on failure."""
    lines = path.read_text().split()
    return int(lines[-1]) if lines and lines[-1].isdigit() else 0


def check(completed: Completed, what: str) -> Completed:
    if completed.returncode != 0:
        detail = (completed.stderr.strip() or completed.stdout.strip())[-3000:]
        raise BenchError(f"{what} failed (exit {completed.returncode}): {detail}")
    return completed


def process_cpu_seconds(pid: int | None) -> float:
    """CPU time a running process (a registry) has used so far, from /proc/<pid>/stat."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- tools -------------------------------------------------------------------------------------


class AnsibleRunner:
    """Runs one module of the collection per ``ansible localhost -m`` call.

    The module's interpreter is a wrapper that runs Python under /usr/bin/time, so the module
    process's own peak RSS and CPU are known apart from Ansible's controller.
    """

    def __init__(self, workdir: Path, python: str, profile_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.python = python
        self.profile_dir = profile_dir
        self.usage_file = workdir / "module-usage.txt"
        self.tree_dir = workdir / "tree"
        self.wrapper = workdir / "module-python"
        self.ansible = sibling_tool(python, "ansible")
        self.env = self._environment()
        self.runs = 0

    def _write_wrapper(self, module: str) -> None:
        """The interpreter Ansible runs the module with; under py-spy when profiling."""
        profiler = ""
        if self.profile_dir:
            target = self.profile_dir / f"{self.runs:02d}-{module}.svg"
            profiler = (f"'{sibling_tool(self.python, 'py-spy')}' record --nonblocking --threads "
                        f"--idle --rate 100 --output '{target}' -- ")
        # Ansible's worker starts a session of its own; give it the benchmark's priority.
        priority = (f"echo {SESSION_NICENESS} > /proc/self/autogroup 2>/dev/null\n"
                    if SESSION_NICENESS else "")
        self.wrapper.write_text(
            f"#!/bin/sh\n{priority}"
            f"exec {TIME_BINARY} -a -o '{self.usage_file}' -f '{TIME_FORMAT}' "
            f"{profiler}'{self.python}' \"$@\"\n")
        self.wrapper.chmod(0o755)

    def _environment(self) -> dict[str, str]:
        home = self.workdir / "ansible-home"
        config = self.workdir / "ansible.cfg"
        config.write_text("[defaults]\n")
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("ANSIBLE_") and key != "PYTHONPATH"}
        env.update(
            ANSIBLE_CONFIG=str(config),
            ANSIBLE_COLLECTIONS_PATH=str(LAYOUT_ROOT),
            ANSIBLE_HOME=str(home),
            ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
            ANSIBLE_REMOTE_TEMP=str(home / "remote-tmp"),
            ANSIBLE_LOCALHOST_WARNING="False",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
            ANSIBLE_NOCOLOR="1",
        )
        return env

    def run(self, module: str, args: dict[str, Any]) -> tuple[Completed, Usage, dict[str, Any]]:
        """(whole ansible tree, module process alone, module result)."""
        self.runs += 1
        self._write_wrapper(module.rpartition(".")[2])
        self.usage_file.write_text("")
        shutil.rmtree(self.tree_dir, ignore_errors=True)
        name = module if "." in module else f"airgap.hangar.{module}"
        command = [self.ansible, "localhost", "-m", name, "-t", str(self.tree_dir),
                   "-e", f"ansible_python_interpreter={self.wrapper}"]
        if args:
            command += ["-a", json.dumps(args)]
        completed = run_measured(command, env=self.env, cwd=self.workdir)
        result = self._result()
        if completed.returncode != 0 or result.get("failed"):
            message = result.get("msg") or completed.stdout[-3000:] or completed.stderr[-3000:]
            raise BenchError(f"{module} failed: {message}")
        return completed, self._module_usage(), result

    def _result(self) -> dict[str, Any]:
        try:
            return json.loads((self.tree_dir / "localhost").read_text())
        except (OSError, ValueError):
            return {}

    def _module_usage(self) -> Usage:
        """The module's line written by /usr/bin/time (the last one: the module itself)."""
        lines = [line.split() for line in self.usage_file.read_text().splitlines()]
        numbers = [line for line in lines if len(line) == 4]
        if not numbers:
            raise BenchError(f"no usage line from the module wrapper in {self.usage_file}")
        rss, user, system, wall = numbers[-1]
        return Usage(float(wall), float(user), float(system), int(rss))


def sibling_tool(python: str, name: str) -> str:
    """A console script of the virtualenv that runs this script, else the one on PATH."""
    beside = Path(python).parent / name
    return str(beside) if beside.exists() else shutil.which(name) or name


def skopeo_copy(source: str, destination: str, flags: list[str]) -> Completed:
    command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--all", "--preserve-digests",
               *flags, source, destination]
    return check(run_measured(command), f"skopeo copy {source} {destination}")


def skopeo_copy_loop(pairs: list[tuple[str, str]], flags: list[str]) -> Usage:
    """One skopeo process per image, one after the other, as a shell loop would run them."""
    total = Usage()
    for source, destination in pairs:
        total = total.add(skopeo_copy(source, destination, flags).usage)
    return total


def skopeo_sync(corpus: Corpus, source: RegistryServer, dest: RegistryServer,
                workdir: Path) -> Usage:
    images = {image.repository: [image.tag] for image in corpus.images}
    config = workdir / "sync.yml"
    config.write_text(json.dumps({source.host: {"tls-verify": False, "images": images}}))
    # sync keeps only the last path component of a repository and puts it under the
    # destination, so bench/app0 needs the destination <host>/bench.
    command = ["skopeo", "--insecure-policy", "sync", "--all", "--preserve-digests",
               "--src", "yaml", "--dest", "docker", f"--src-authfile={source.auth_file}",
               *dest.skopeo_args("dest"),
               str(config), f"{dest.host}/{REPOSITORY_PREFIX.rpartition('/')[0]}"]
    return check(run_measured(command), "skopeo sync").usage


# -- checks ------------------------------------------------------------------------------------


def verify_registry(registry: RegistryServer, corpus: Corpus) -> None:
    """Every tag and index child at the destination has exactly the source's digest."""
    for image in corpus.images:
        wanted = [(image.tag, image.digest)] + [(digest, digest) for digest in image.child_digests]
        for reference, digest in wanted:
            try:
                raw = inspect_raw(registry, image.repository, reference)
            except ImageBuildError as error:
                raise BenchError(f"{registry.host}/{image.repository} {reference} is missing "
                                 f"after the copy: {error}") from error
            got = "sha256:" + hashlib.sha256(raw).hexdigest()
            if got != digest:
                raise BenchError(f"{registry.host}/{image.repository} {reference} has digest "
                                 f"{got}, the source has {digest}: the copy is wrong")


@dataclass
class RequestCount:
    """Requests a registry logged during one run."""

    image: int = 0  # under /v2/<name>/: manifests, blobs, uploads
    other: list[str] = field(default_factory=list)  # pings and probes, as "METHOD path"
    writes: int = 0

    @property
    def total(self) -> int:
        return self.image + len(self.other)

    def describe(self) -> str:
        kinds = ", ".join(f"{count} x {request}" if count > 1 else request
                          for request, count in Counter(self.other).items())
        others = f" + {len(self.other)} other ({kinds})" if self.other else ""
        return f"{self.image} under /v2/<name>/{others}, {self.writes} writes"


def count_requests(registry: RegistryServer, mark: int) -> RequestCount:
    count = RequestCount()
    for entry in registry.requests_since(mark):
        if entry.path.startswith("/v2/") and entry.path.strip("/").count("/") >= 2:
            count.image += 1
        else:
            count.other.append(f"{entry.method} {entry.path}")
        count.writes += int(entry.is_write)
    return count


# -- scenarios ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One measured run of one tool."""

    scenario: str
    tool: str
    usage: Usage
    megabytes: float = 0.0
    module: Usage | None = None
    registry_cpu: float = 0.0
    requests: RequestCount | None = None
    note: str = ""
    checked: bool = False  # the digests at the destination were compared with the source's
    correct: bool = True
    # Other work on a shared machine slows every tool; the 1-minute load average says how much.
    load: float = field(default_factory=lambda: os.getloadavg()[0])

    @property
    def mib_per_second(self) -> float:
        return self.megabytes / self.usage.wall if self.megabytes and self.usage.wall else 0.0


@dataclass
class Bench:
    """Everything the scenarios share: corpus, source registry, tools, options."""

    corpus: Corpus
    source: RegistryServer
    ansible: AnsibleRunner
    workdir: Path
    jobs: int | None
    rows: list[Row] = field(default_factory=list)

    def pairs(self, source_prefix: str, dest_prefix: str) -> list[tuple[str, str]]:
        return [(f"{source_prefix}{ref}", f"{dest_prefix}{ref}") for ref in self.corpus.references]

    def with_jobs(self, args: dict[str, Any]) -> dict[str, Any]:
        return {**args, "jobs": self.jobs} if self.jobs else args


@contextmanager
def destination() -> Iterator[RegistryServer]:
    """A new, empty registry, removed with its storage when the run is over."""
    with RegistryServer("plain", log_level=REGISTRY_LOG_LEVEL) as registry:
        yield registry


def settle() -> None:
    """Write back what the previous run left dirty, so it does not slow this run down."""
    os.sync()


def timed_sync() -> Usage:
    """os.sync() as part of a save: the archive is not saved until it is on disk."""
    started = time.monotonic()
    os.sync()
    return Usage(wall=time.monotonic() - started)


def registry_clock(registries: list[RegistryServer]) -> Callable[[], float]:
    """A function giving the CPU seconds the registries used since this call."""
    before = [process_cpu_seconds(registry.pid) for registry in registries]
    return lambda: sum(process_cpu_seconds(registry.pid) - seconds
                       for registry, seconds in zip(registries, before))


def expect_summary(result: dict[str, Any], action: str, count: int, module: str) -> None:
    summary = result.get("summary") or {}
    if summary.get(action) != count:
        raise BenchError(f"{module} reported {summary} instead of {count} images {action}")


def verified(row: Row, registry: RegistryServer, corpus: Corpus) -> Row:
    row.checked = True
    try:
        verify_registry(registry, corpus)
    except BenchError as error:
        row.correct, row.note = False, str(error)
    return row


def mirror_args(bench: Bench, dest: RegistryServer) -> dict[str, Any]:
    return bench.with_jobs({
        "images": bench.corpus.references,
        "src_registry": f"http://{bench.source.host}",
        "dest_registry": f"http://{dest.host}",
        # Every platform, as skopeo --all copies them: the index then keeps its digest.
        "arch": ["*"],
        "os": ["*"],
    })


def mirror_cold(bench: Bench, dest: RegistryServer) -> Row:
    settle()
    clock = registry_clock([bench.source, dest])
    completed, module, result = bench.ansible.run("hangar_mirror", mirror_args(bench, dest))
    registry_cpu = clock()
    expect_summary(result, "copied", len(bench.corpus.images), "hangar_mirror")
    row = Row("mirror cold", HANGAR_MIRROR, completed.usage, bench.corpus.mib, module,
              registry_cpu)
    return verified(row, dest, bench.corpus)


def mirror_noop(bench: Bench, dest: RegistryServer) -> Row:
    """The same task again: nothing to copy, so only reads, and few of them."""
    dest_mark, source_mark = dest.log_mark(), bench.source.log_mark()
    completed, module, result = bench.ansible.run("hangar_mirror", mirror_args(bench, dest))
    expect_summary(result, "present", len(bench.corpus.images), "hangar_mirror")
    if result.get("changed"):
        raise BenchError("hangar_mirror reported changed on a destination that was complete")
    source = count_requests(bench.source, source_mark)
    images = len(bench.corpus.images)
    note = f"source: {source.image / images:.2f} per image; {source.describe()}"
    return Row("mirror no-op", HANGAR_MIRROR, completed.usage, module=module,
               requests=count_requests(dest, dest_mark), note=note)


def skopeo_sync_noop(bench: Bench, dest: RegistryServer) -> Row:
    mark = dest.log_mark()
    usage = skopeo_sync(bench.corpus, bench.source, dest, bench.workdir)
    return Row("mirror no-op", SKOPEO_SYNC, usage, requests=count_requests(dest, mark))


def ansible_baseline(bench: Bench) -> Row:
    """Ansible's own start-up: the built-in ping through the same wrapper and settings."""
    completed, module, _output = bench.ansible.run(ANSIBLE_PING, {})
    return Row("mirror no-op", ANSIBLE_PING, completed.usage, module=module,
               note="Ansible alone, for reference")


def run_mirror(bench: Bench) -> None:
    with destination() as dest:
        bench.rows.append(mirror_cold(bench, dest))
        bench.rows.append(mirror_noop(bench, dest))
        bench.rows.append(skopeo_sync_noop(bench, dest))
    bench.rows.append(ansible_baseline(bench))


def run_skopeo_copy(bench: Bench) -> None:
    with destination() as dest:
        settle()
        clock = registry_clock([bench.source, dest])
        flags = bench.source.skopeo_args("src") + dest.skopeo_args("dest")
        pairs = bench.pairs(f"docker://{bench.source.host}/", f"docker://{dest.host}/")
        usage = skopeo_copy_loop(pairs, flags)
        row = Row("mirror cold", SKOPEO_LOOP, usage, bench.corpus.mib, registry_cpu=clock())
        bench.rows.append(verified(row, dest, bench.corpus))


def run_skopeo_sync(bench: Bench) -> None:
    with destination() as dest:
        settle()
        clock = registry_clock([bench.source, dest])
        usage = skopeo_sync(bench.corpus, bench.source, dest, bench.workdir)
        row = Row("mirror cold", SKOPEO_SYNC, usage, bench.corpus.mib, registry_cpu=clock())
        bench.rows.append(verified(row, dest, bench.corpus))


# save and load: hangar_save (registry -> Hangar zip, option dest) and hangar_load (zip, option
# src -> dest_registry). skopeo's nearest equivalents go through an OCI layout directory.


def modules_present(*names: str) -> bool:
    return all((REPOSITORY / "plugins" / "modules" / f"{name}.py").is_file() for name in names)


def hangar_save(bench: Bench, archive: Path) -> Row:
    args = bench.with_jobs({
        "images": bench.corpus.references,
        "src_registry": f"http://{bench.source.host}",
        "dest": str(archive),
        "arch": ["*"],
        "os": ["*"],
    })
    settle()
    clock = registry_clock([bench.source])
    completed, module, result = bench.ansible.run("hangar_save", args)
    expect_summary(result, "copied", len(bench.corpus.images), "hangar_save")
    usage = completed.usage.add(timed_sync())
    note = f"archive {archive.stat().st_size / MIB:.0f} MiB"
    return Row("save", HANGAR_SAVE, usage, bench.corpus.mib, module, clock(), note=note)


def skopeo_save(bench: Bench, layout: Path) -> Row:
    settle()
    clock = registry_clock([bench.source])
    flags = bench.source.skopeo_args("src")
    pairs = bench.pairs(f"docker://{bench.source.host}/", f"oci:{layout}:")
    usage = skopeo_copy_loop(pairs, flags).add(timed_sync())
    return Row("save", SKOPEO_OCI, usage, bench.corpus.mib, registry_cpu=clock())


def hangar_load(bench: Bench, archive: Path) -> Row:
    with destination() as dest:
        args = bench.with_jobs({"src": str(archive), "dest_registry": f"http://{dest.host}",
                                "arch": ["*"], "os": ["*"]})
        settle()
        clock = registry_clock([dest])
        completed, module, result = bench.ansible.run("hangar_load", args)
        expect_summary(result, "copied", len(bench.corpus.images), "hangar_load")
        row = Row("load", HANGAR_LOAD, completed.usage, bench.corpus.mib, module, clock())
        return verified(row, dest, bench.corpus)


def skopeo_load(bench: Bench, layout: Path) -> Row:
    with destination() as dest:
        settle()
        clock = registry_clock([dest])
        flags = dest.skopeo_args("dest")
        usage = skopeo_copy_loop(bench.pairs(f"oci:{layout}:", f"docker://{dest.host}/"), flags)
        row = Row("load", SKOPEO_OCI, usage, bench.corpus.mib, registry_cpu=clock())
        return verified(row, dest, bench.corpus)


def run_save_load(bench: Bench) -> None:
    """Save with both tools, then load each tool's own output into an empty registry."""
    archive = bench.workdir / "bench-archive.zip"
    layout = bench.workdir / "bench-oci-layout"
    try:
        saves = [hangar_save(bench, archive), skopeo_save(bench, layout)]
        loads = [hangar_load(bench, archive), skopeo_load(bench, layout)]
        # A save is right when loading what it wrote gives the source's digests.
        for save, load in zip(saves, loads):
            save.checked, save.correct = load.checked, load.correct
        bench.rows.extend(saves + loads)
    finally:
        archive.unlink(missing_ok=True)
        shutil.rmtree(layout, ignore_errors=True)


# -- report ------------------------------------------------------------------------------------


@dataclass
class Summary:
    """The runs of one tool in one scenario (several with --repeat): medians and extremes."""

    scenario: str
    tool: str
    rows: list[Row]

    def median(self, value: Callable[[Row], float]) -> float:
        return statistics.median(value(row) for row in self.rows)

    @property
    def wall(self) -> float:
        return self.median(lambda row: row.usage.wall)

    @property
    def wall_range(self) -> str:
        walls = [row.usage.wall for row in self.rows]
        return f"{min(walls):.2f}-{max(walls):.2f}" if len(walls) > 1 else ""

    @property
    def cpu(self) -> float:
        return self.median(lambda row: row.usage.cpu)

    @property
    def module_cpu(self) -> float | None:
        modules = [row.module for row in self.rows if row.module]
        return statistics.median(module.cpu for module in modules) if modules else None

    @property
    def module_wall(self) -> float | None:
        """The module process alone; the rest of ``wall`` is Ansible's start-up and return."""
        modules = [row.module for row in self.rows if row.module]
        return statistics.median(module.wall for module in modules) if modules else None

    @property
    def registry_cpu(self) -> float:
        return self.median(lambda row: row.registry_cpu)

    @property
    def load(self) -> float:
        return self.median(lambda row: row.load)

    @property
    def rss_mib(self) -> float:
        """Peak RSS of the module process when there is one, else of the tool's processes."""
        return max((row.module or row.usage).rss_mib for row in self.rows)

    @property
    def mib_per_second(self) -> float:
        megabytes = self.rows[0].megabytes
        return megabytes / self.wall if megabytes and self.wall else 0.0

    @property
    def correct(self) -> bool:
        return all(row.correct for row in self.rows)

    @property
    def verdict(self) -> str:
        if not self.correct:
            return "NO"
        return "yes" if all(row.checked for row in self.rows) else "-"

    @property
    def requests(self) -> RequestCount | None:
        return self.rows[-1].requests

    @property
    def notes(self) -> str:
        return "; ".join(dict.fromkeys(row.note for row in self.rows if row.note))


def summarize(rows: list[Row]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.scenario, row.tool), []).append(row)
    return [Summary(scenario, tool, group) for (scenario, tool), group in groups.items()]


def find(summaries: list[Summary], scenario: str, tool: str) -> Summary | None:
    return next((item for item in summaries
                 if item.scenario == scenario and item.tool == tool), None)


BASELINES = {"mirror cold": SKOPEO_LOOP, "save": SKOPEO_OCI, "load": SKOPEO_OCI}


def speedup(summaries: list[Summary], item: Summary) -> float | None:
    """How many times faster than the skopeo baseline of the scenario (>1 is faster)."""
    baseline = find(summaries, item.scenario, BASELINES.get(item.scenario, ""))
    if baseline is None or not item.wall:
        return None
    return baseline.wall / item.wall


def _cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


TABLE = [
    ("scenario", 12, "<"), ("tool", 20, "<"), ("wall s", 6, ">"), ("range", 11, ">"),
    ("mod wall", 8, ">"), ("CPU s", 6, ">"), ("mod CPU", 7, ">"), ("RSS MiB", 7, ">"),
    ("MiB/s", 6, ">"), ("vs skopeo", 9, ">"), ("reg CPU", 7, ">"), ("dest req", 8, ">"),
    ("load", 4, ">"), ("ok", 3, "<"),
]


def table_line(cells: list[str]) -> str:
    return " ".join(f"{cell:{align}{width}}" for cell, (_title, width, align) in zip(cells, TABLE))


def summary_cells(summaries: list[Summary], item: Summary) -> list[str]:
    ratio = speedup(summaries, item)
    requests = item.requests
    return [
        item.scenario, item.tool, _cell(item.wall), item.wall_range, _cell(item.module_wall),
        _cell(item.cpu), _cell(item.module_cpu), _cell(item.rss_mib, 1),
        _cell(item.mib_per_second or None, 0), f"{ratio:.2f}x" if ratio else "-",
        _cell(item.registry_cpu or None), str(requests.total) if requests else "-",
        _cell(item.load, 1), item.verdict,
    ]


def print_table(summaries: list[Summary]) -> None:
    print(table_line([name for name, _width, _align in TABLE]))
    print(table_line(["-" * width for _title, width, _align in TABLE]))
    for item in summaries:
        print(table_line(summary_cells(summaries, item)))
    for item in summaries:
        if item.notes:
            print(f"  {item.scenario} / {item.tool}: {item.notes}")


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: "n/a"}[self.passed]


def mirror_targets(summaries: list[Summary], images: int) -> list[Target]:
    cold = find(summaries, "mirror cold", HANGAR_MIRROR)
    noop = find(summaries, "mirror no-op", HANGAR_MIRROR)
    targets = []
    ratio = speedup(summaries, cold) if cold else None
    targets.append(Target(
        "cold mirror vs skopeo copy loop", f">= {MIRROR_SPEEDUP_TARGET}x faster, same digests",
        f"{ratio:.2f}x" if ratio else "not measured",
        None if ratio is None else ratio >= MIRROR_SPEEDUP_TARGET and cold.correct))
    if noop is None:
        return targets
    requests = noop.requests
    assert requests is not None
    # Without credentials the /v2/ ping is the whole authentication: it finds no challenge.
    targets.append(Target(
        "no-op re-run, destination requests", f"<= 1 per image ({images}) + auth (GET /v2/)",
        f"{requests.image / images:.2f} per image; {requests.describe()}",
        requests.image <= images and requests.other in ([], ["GET /v2/"])
        and requests.writes == 0))
    ping = find(summaries, "mirror no-op", ANSIBLE_PING)
    baseline = f"; Ansible's ping alone {ping.wall:.2f} s" if ping else ""
    targets.append(Target(
        "no-op re-run, wall incl. Ansible", f"< {NOOP_SECONDS_TARGET:g} s for {images} images",
        f"{noop.wall:.2f} s{baseline}", noop.wall < NOOP_SECONDS_TARGET))
    return targets


def rss_target(summaries: list[Summary]) -> Target:
    modules = [item for item in summaries if item.tool.startswith("hangar_")]
    if not modules:
        return Target("module peak RSS", f"< {MODULE_RSS_TARGET_MIB} MiB", "not measured", None)
    worst = max(modules, key=lambda item: item.rss_mib)
    return Target("module peak RSS", f"< {MODULE_RSS_TARGET_MIB} MiB",
                  f"{worst.rss_mib:.1f} MiB ({worst.scenario})",
                  worst.rss_mib < MODULE_RSS_TARGET_MIB)


def rate_target(summaries: list[Summary], scenario: str, tool: str, wanted: int) -> Target:
    item = find(summaries, scenario, tool)
    name = f"{scenario} throughput (proposed, transport.md 5.4)"
    if item is None:
        return Target(name, f">= {wanted} MiB/s", "not measured", None)
    return Target(name, f">= {wanted} MiB/s, same digests", f"{item.mib_per_second:.0f} MiB/s",
                  item.mib_per_second >= wanted and item.correct)


def evaluate_targets(summaries: list[Summary], images: int) -> list[Target]:
    return [
        *mirror_targets(summaries, images),
        rss_target(summaries),
        rate_target(summaries, "save", HANGAR_SAVE, SAVE_MIBS_PROPOSED),
        rate_target(summaries, "load", HANGAR_LOAD, LOAD_MIBS_PROPOSED),
    ]


def print_targets(targets: list[Target]) -> None:
    for target in targets:
        print(f"{target.verdict:4}  {target.name}: {target.measured} (target {target.wanted})")


def _first_line(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (result.stdout or result.stderr).strip().splitlines()[0] if result.stdout or \
        result.stderr else "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1 << 20)
    return 0.0


def _commit() -> str:
    """The checkout measured: HEAD, and whether the working tree differs from it."""
    head = _first_line(["git", "-C", str(REPOSITORY), "rev-parse", "--short", "HEAD"])
    status = subprocess.run(["git", "-C", str(REPOSITORY), "status", "--porcelain"],
                            capture_output=True, text=True, timeout=30, check=False).stdout
    return f"{head} + uncommitted changes" if status.strip() else head


def describe_machine(ansible: str) -> dict[str, str]:
    release = platform.freedesktop_os_release() if hasattr(platform, "freedesktop_os_release") \
        else {}
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "cpu": f"{os.cpu_count()} x {_cpu_model()}",
        "memory": f"{_memory_gib():.0f} GiB",
        "os": f"{release.get('PRETTY_NAME', 'unknown')}, kernel {platform.release()}",
        "python": platform.python_version(),
        "ansible": _first_line([ansible, "--version"]),
        "skopeo": _first_line(["skopeo", "--version"]),
        "registry": _first_line(["docker-registry", "--version"]),
        "load": "1/5/15-minute load average {:.2f} {:.2f} {:.2f} at start".format(
            *os.getloadavg()),
        "niceness": str(os.getpriority(os.PRIO_PROCESS, 0)),
    }


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--size-mib", type=int, default=FULL_MIB,
                        help=f"corpus size in MiB (default {FULL_MIB})")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: a {QUICK_MIB} MiB corpus, whatever --size-mib says")
    parser.add_argument("--huge-layer-mib", type=int, default=0,
                        help="size of app7's large layer (default: 18%% of the corpus); above "
                             "512 MiB it takes the chunked upload path")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per tool; the table shows medians (default 1)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="jobs option of the hangar modules (default: the module default)")
    parser.add_argument("--skip-save-load", action="store_true", help="measure mirror only")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--nice", type=int, default=0, metavar="N",
                        help="run everything (registries, skopeo, Ansible) at this niceness; "
                             "negative values need root and shield the figures from other "
                             "work on a shared machine")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run every module under py-spy, one flame graph SVG per run in "
                             "DIR (distorts the timings; pip install py-spy)")
    args = parser.parse_args(argv)
    if args.quick:
        args.size_mib = QUICK_MIB
    if args.size_mib < 10 or args.repeat < 1:
        parser.error("--size-mib must be at least 10 and --repeat at least 1")
    return args


def missing_tools(profile: bool) -> list[str]:
    needed = {"docker-registry": "apt-get install docker-registry", "skopeo": "apt-get install "
              "skopeo", TIME_BINARY: "apt-get install time"}
    if profile:
        needed[sibling_tool(sys.executable, "py-spy")] = "pip install py-spy"
    return [f"{tool} ({install})" for tool, install in needed.items() if not shutil.which(tool)]


def set_priority(niceness: int) -> None:
    """Give this process and every child the same, higher or lower, CPU priority.

    With the kernel's autogroup scheduling, niceness only ranks processes of one session
    against each other; sessions share the CPU by their autogroup's niceness, so both are set.
    The registries share this session; every command gets a new session with the same
    autogroup niceness (_new_session), and so does the module under Ansible (its wrapper).
    """
    global SESSION_NICENESS  # pylint: disable=global-statement  # read by forked children
    os.setpriority(os.PRIO_PROCESS, 0, niceness)
    SESSION_NICENESS = niceness
    autogroup = Path("/proc/self/autogroup")
    try:
        before = autogroup.read_text().split()[-1]
        autogroup.write_text(str(niceness))
    except (OSError, IndexError) as error:
        print(f"warning: autogroup niceness not set ({error}); other sessions keep their share")
        return
    # The autogroup is the whole session's, the calling shell's included: give it back.
    atexit.register(autogroup.write_text, before)


def prepare(workdir: Path, args: argparse.Namespace, source: RegistryServer) -> Corpus:
    specs = plan_corpus(args.size_mib, args.huge_layer_mib)
    started = time.monotonic()
    corpus = build_corpus(workdir / "corpus", specs)
    built = time.monotonic() - started
    push_corpus(corpus, source)
    # The source registry holds the blobs now; the layouts only cost disk and page cache.
    shutil.rmtree(workdir / "corpus")
    print(f"corpus: {len(corpus.images)} images, {len(corpus.layer_sizes)} distinct layers, "
          f"{corpus.mib:.0f} MiB unique (largest layer {corpus.layer_sizes[0] / MIB:.0f} MiB); "
          f"built in {built:.1f} s, pushed in {time.monotonic() - started - built:.1f} s")
    return corpus


def scenarios(bench: Bench, skip_save_load: bool) -> list[Callable[[Bench], None]]:
    steps = [run_mirror, run_skopeo_copy, run_skopeo_sync]
    if skip_save_load:
        return steps
    if modules_present("hangar_save", "hangar_load"):
        steps.append(run_save_load)
    else:
        print("hangar_save/hangar_load are not in plugins/modules yet: save and load skipped")
    return steps


def measure(bench: Bench, args: argparse.Namespace) -> list[str]:
    """Run every scenario --repeat times; return the errors of those that could not run."""
    errors = []
    steps = scenarios(bench, args.skip_save_load)
    for round_number in range(1, args.repeat + 1):
        for step in steps:
            try:
                step(bench)
            except BenchError as error:
                errors.append(f"{step.__name__} (round {round_number}): {error}")
                print(f"ERROR {errors[-1]}", file=sys.stderr)
    return errors


def report(bench: Bench, machine: dict[str, str], errors: list[str],
           json_path: Path | None) -> None:
    summaries = summarize(bench.rows)
    targets = evaluate_targets(summaries, len(bench.corpus.images))
    print()
    print_table(summaries)
    print()
    print_targets(targets)
    for error in errors:
        print(f"ERROR {error}")
    if json_path:
        json_path.write_text(json.dumps(_json_report(bench, machine, summaries, targets, errors),
                                        indent=2))


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summary_json(summaries: list[Summary], item: Summary) -> dict[str, Any]:
    walls = [row.usage.wall for row in item.rows]
    return {
        "scenario": item.scenario, "tool": item.tool, "runs": len(item.rows),
        "wall": _rounded(item.wall), "wall_min": _rounded(min(walls)),
        "wall_max": _rounded(max(walls)), "module_wall": _rounded(item.module_wall),
        "cpu": _rounded(item.cpu), "module_cpu": _rounded(item.module_cpu),
        "rss_mib": _rounded(item.rss_mib, 1),
        "mib_per_second": _rounded(item.mib_per_second or None, 1),
        "speedup_vs_skopeo": _rounded(speedup(summaries, item), 2),
        "registry_cpu": _rounded(item.registry_cpu or None), "load": _rounded(item.load, 2),
        "digests_checked": item.verdict, "notes": item.notes,
        "requests": item.requests.describe() if item.requests else None,
    }


def _json_report(bench: Bench, machine: dict[str, str], summaries: list[Summary],
                 targets: list[Target], errors: list[str]) -> dict[str, Any]:
    return {
        "machine": machine,
        "corpus": {"images": len(bench.corpus.images), "mib": round(bench.corpus.mib, 1),
                   "layers": len(bench.corpus.layer_sizes),
                   "largest_layer_mib": round(bench.corpus.layer_sizes[0] / MIB, 1)},
        "results": [summary_json(summaries, item) for item in summaries],
        "targets": [{"name": target.name, "wanted": target.wanted, "measured": target.measured,
                     "verdict": target.verdict} for target in targets],
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_tools(bool(args.profile))
    if missing:
        print(f"cannot run the benchmark, missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    if args.nice:
        set_priority(args.nice)

    with tempfile.TemporaryDirectory(prefix="hangar-bench-") as temp:
        workdir = Path(temp)
        if args.profile:
            args.profile = args.profile.resolve()
            args.profile.mkdir(parents=True, exist_ok=True)
        ansible = AnsibleRunner(workdir, sys.executable, args.profile)
        machine = describe_machine(ansible.ansible)
        for key, value in machine.items():
            print(f"{key:9} {value}")
        if os.getloadavg()[0] > BUSY_LOAD:
            print("warning: other work is running on this machine; every tool will be slower "
                  "and the figures noisier (see the load column)")

        with RegistryServer("plain", log_level=REGISTRY_LOG_LEVEL) as source:
            corpus = prepare(workdir, args, source)
            bench = Bench(corpus, source, ansible, workdir, args.jobs or None)
            errors = measure(bench, args)
        report(bench, machine, errors, args.json)
        if args.profile:
            print(f"profiled: timings are distorted; flame graphs in {args.profile}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
