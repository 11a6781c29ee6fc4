# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command line for shell scripts: start, seed and stop test registries in the background.

Run from the repository root::

    python -m tests.support start --mode token --state-dir /tmp/state --name src
    python -m tests.support start --mode harbor --state-dir /tmp/state --name harbor
    python -m tests.support seed --state-dir /tmp/state --name src
    python -m tests.support stop --state-dir /tmp/state [--name src] [--purge]

``start`` launches a small supervisor process (``python -m tests.support serve``) that owns the
registry and, in token mode, the token server; it outlives the ``start`` command. Once the
registry answers, the supervisor writes ``<state-dir>/<name>.json`` (everything, including
PIDs) and ``<state-dir>/<name>.yml`` (Ansible variables ``<name>_registry``, ``<name>_url``,
``<name>_username``, ``<name>_password``, ``<name>_ca_path``, ``<name>_client_cert``,
``<name>_client_key``, ``<name>_log`` and a few more). Files, storage and logs stay in
``<state-dir>/<name>/``. ``seed`` pushes the standard images and writes
``<name>-images.json`` and ``<name>-images.yml`` (``<name>_images``). ``stop`` ends the
supervisor by PID (SIGTERM, then SIGKILL), makes sure the registry PID is gone too, and removes
the state files; ``--purge`` also removes the directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from .images import ImageBuildError, seed_standard_images
from .registry import MODES, AttachedRegistry, RegistryHarnessError, RegistryServer, pid_alive

# The fake Harbor API (tests/support/harbor_server.py) in front of a plain or TLS registry.
HARBOR_MODES = ("harbor", "harbor-tls")

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 70  # seconds; covers three port attempts of RegistryServer.start
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL
NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$")
SUPERVISOR_MARK = "tests.support"
ANSIBLE_KEYS = (
    "registry",
    "url",
    "username",
    "password",
    "reader_username",
    "reader_password",
    "ca_path",
    "client_cert",
    "client_key",
    "cert_dir",
    "auth_file",
    "log",
    "mode",
)


class CommandError(Exception):
    """A CLI command cannot do what was asked; the message says why and what to do."""


def _state_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.json"


def _write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    temp.chmod(0o600)
    os.replace(temp, path)


def _write_state(state_dir: Path, name: str, state: dict[str, Any]) -> None:
    variables = {f"{name}_{key}": state.get(key) for key in ANSIBLE_KEYS}
    _write_atomic(state_dir / f"{name}.yml", yaml.safe_dump(variables, sort_keys=False))
    # The JSON file appears last: its presence tells 'start' that everything is ready.
    _write_atomic(_state_file(state_dir, name), json.dumps(state, indent=2))


def _check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise CommandError(
            f"registry name {name!r} cannot prefix Ansible variables; "
            "use lowercase letters, digits and underscores"
        )
    return name


def _default_name(mode: str) -> str:
    return mode.replace("-", "_")


# serve: the supervisor process.


def command_serve(args: argparse.Namespace) -> int:
    """Run a registry until SIGTERM/SIGINT, then stop it; meant to be started by 'start'."""
    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())

    registry = RegistryServer(
        args.mode,
        workdir=args.state_dir / args.name,
        token_expires_in=args.token_expires_in,
        public_repos=args.public_repos,
    )
    with registry:
        state = {"name": args.name, "pid": os.getpid(), **registry.describe()}
        _write_state(args.state_dir, args.name, state)
        while not stop_requested.wait(timeout=1):
            pass
    return 0


# start


def _running_state(state_dir: Path, name: str) -> dict[str, Any] | None:
    try:
        state = json.loads(_state_file(state_dir, name).read_text())
    except (OSError, ValueError):
        return None
    return state if pid_alive(state.get("pid", 0)) else None


def _spawn_supervisor(args: argparse.Namespace, name: str, log_path: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "tests.support",
        "serve",
        f"--mode={args.mode}",
        f"--state-dir={args.state_dir}",
        f"--name={name}",
        f"--token-expires-in={args.token_expires_in}",
    ]
    if args.public_repos:
        command.append(f"--public-repos={args.public_repos}")
    with log_path.open("ab") as log:
        # A new session keeps the supervisor alive when the calling shell or CI step exits.
        return subprocess.Popen(
            command,
            cwd=REPOSITORY_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_state(process: subprocess.Popen, state_file: Path, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if state_file.exists():
            return
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise CommandError(f"the registry supervisor exited ({process.returncode}):\n{tail}")
        time.sleep(0.05)
    _stop_pid(process.pid, "")
    raise CommandError(f"no state file {state_file} after {READY_TIMEOUT} s; see {log_path}")


def command_start(args: argparse.Namespace) -> int:
    name = _check_name(args.name or _default_name(args.mode))
    args.state_dir.mkdir(parents=True, exist_ok=True)
    if _running_state(args.state_dir, name):
        raise CommandError(
            f"registry {name!r} is already running (state {_state_file(args.state_dir, name)}); "
            "stop it first or pick another --name"
        )
    if args.mode in HARBOR_MODES:
        return _start_harbor(args, name)

    workdir = args.state_dir / name
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "supervisor.log"
    state_file = _state_file(args.state_dir, name)
    state_file.unlink(missing_ok=True)
    process = _spawn_supervisor(args, name, log_path)
    _wait_for_state(process, state_file, log_path)

    state = json.loads(state_file.read_text())
    print(f"{name}: {state['mode']} registry at {state['url']} (supervisor PID {state['pid']})")
    return 0


def _start_harbor(args: argparse.Namespace, name: str) -> int:
    """The fake Harbor API in front of its own registry; stop and seed work on it as usual."""
    from .harbor_server import start_harbor  # pylint: disable=import-outside-toplevel

    state = start_harbor(args.state_dir, name, tls=args.mode == "harbor-tls")
    print(f"{name}: fake Harbor at {state['url']} (PID {state['pid']})")
    return 0


# seed


def command_seed(args: argparse.Namespace) -> int:
    name = _check_name(args.name)
    state_file = _state_file(args.state_dir, name)
    if _running_state(args.state_dir, name) is None:
        raise CommandError(f"registry {name!r} is not running (no live {state_file}); start it")

    registry = AttachedRegistry.load(state_file)
    seeded = seed_standard_images(registry)
    _write_atomic(args.state_dir / f"{name}-images.json", json.dumps(seeded, indent=2))
    variables = {f"{name}_images": seeded}
    _write_atomic(args.state_dir / f"{name}-images.yml", yaml.safe_dump(variables, sort_keys=False))
    print(f"{name}: pushed {len(seeded)} tags to {registry.host}")
    return 0


# stop


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _stop_pid(pid: int, expected: str) -> bool:
    """SIGTERM, wait, SIGKILL; only when *pid* still runs a command containing *expected*.

    Checking the command line first guards against a PID the kernel has since reused.
    """
    if not pid or not pid_alive(pid) or expected not in _cmdline(pid):
        return False
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
    return not pid_alive(pid)


def _stop_one(state_dir: Path, name: str, purge: bool) -> None:
    state_file = _state_file(state_dir, name)
    state = json.loads(state_file.read_text())
    _stop_pid(state.get("pid", 0), SUPERVISOR_MARK)
    # The supervisor stops its registry; this only matters if the supervisor was killed hard.
    _stop_pid(state.get("registry_pid", 0), "docker-registry")

    for leftover in (state_file, state_dir / f"{name}.yml"):
        leftover.unlink(missing_ok=True)
    if purge:
        for leftover in (state_dir / f"{name}-images.json", state_dir / f"{name}-images.yml"):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(state_dir / name, ignore_errors=True)
    print(f"{name}: stopped")


def _state_names(state_dir: Path) -> list[str]:
    names = []
    for path in sorted(state_dir.glob("*.json")):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(state, dict) and "registry_pid" in state:
            names.append(path.stem)
    return names


def command_stop(args: argparse.Namespace) -> int:
    names = [_check_name(args.name)] if args.name else _state_names(args.state_dir)
    for name in names:
        # Stopping what is already stopped succeeds, so cleanup traps can always call stop.
        if not _state_file(args.state_dir, name).exists():
            print(f"{name}: not running")
            continue
        _stop_one(args.state_dir, name, args.purge)
    return 0


def _parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n", maxsplit=1)[0]
    parser = argparse.ArgumentParser(prog="python -m tests.support", description=summary)
    commands = parser.add_subparsers(dest="command", required=True)

    for command, helptext in (
        ("start", "start a registry in the background"),
        ("serve", "run a registry in the foreground (used by start)"),
    ):
        sub = commands.add_parser(command, help=helptext)
        sub.add_argument("--mode", choices=MODES + (HARBOR_MODES if command == "start" else ()),
                         required=True)
        sub.add_argument("--name", required=command == "serve")
        sub.add_argument("--token-expires-in", type=int, default=300, metavar="SECONDS")
        sub.add_argument("--public-repos", metavar="GLOB", help="anonymous pull in token mode")

    seed = commands.add_parser("seed", help="push the standard images")
    seed.add_argument("--name", required=True)
    stop = commands.add_parser("stop", help="stop one registry, or all in the state dir")
    stop.add_argument("--name")
    stop.add_argument("--purge", action="store_true", help="also delete files, storage and logs")

    for sub in commands.choices.values():
        sub.add_argument("--state-dir", type=Path, required=True)
    return parser


COMMANDS = {
    "start": command_start,
    "serve": command_serve,
    "seed": command_seed,
    "stop": command_stop,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.state_dir = args.state_dir.resolve()
    try:
        return COMMANDS[args.command](args)
    except (CommandError, RegistryHarnessError, ImageBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
