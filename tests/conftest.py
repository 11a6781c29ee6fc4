# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest fixtures that hand tests real registries (see ``tests/support``).

Session-wide, started on first use: ``registry_plain``, ``registry_tls``, ``registry_basic``,
``registry_basic_http``, ``registry_token``, ``registry_mtls``. Tests share them, so push to
repositories named after the test, and compare counts (``log_mark``/``requests_since``,
``token_server.requests``) rather than totals.

``seed(registry)`` pushes the standard images once per registry and returns their digests.
``tmp_registry(mode, **options)`` starts a fresh, empty registry that ends with the test.

Markers ``registry`` and ``skopeo`` skip a test with a clear reason when the binary is missing;
the fixtures skip the same way, so marking is only needed for tests that run the binaries
themselves.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import RegistryServer, seed_standard_images

REQUIREMENTS = {
    "registry": ("docker-registry", "apt-get install docker-registry (distribution 2.8)"),
    "skopeo": ("skopeo", "apt-get install skopeo"),
}


def _missing_reason(marker: str) -> str | None:
    binary, install = REQUIREMENTS[marker]
    if shutil.which(binary):
        return None
    return f"{binary} is not installed; {install} to run this test"


def _require(*markers: str) -> None:
    for marker in markers:
        reason = _missing_reason(marker)
        if reason:
            pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    for marker, (binary, unused_hint) in REQUIREMENTS.items():
        config.addinivalue_line("markers", f"{marker}: needs the {binary} binary on PATH")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker in REQUIREMENTS:
        reason = _missing_reason(marker)
        if reason is None:
            continue
        for item in items:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def _session_registry(mode: str) -> Iterator[RegistryServer]:
    _require("registry")
    with RegistryServer(mode) as registry:
        yield registry


@pytest.fixture(scope="session")
def registry_plain() -> Iterator[RegistryServer]:
    yield from _session_registry("plain")


@pytest.fixture(scope="session")
def registry_tls() -> Iterator[RegistryServer]:
    yield from _session_registry("tls")


@pytest.fixture(scope="session")
def registry_basic() -> Iterator[RegistryServer]:
    yield from _session_registry("basic")


@pytest.fixture(scope="session")
def registry_basic_http() -> Iterator[RegistryServer]:
    yield from _session_registry("basic-http")


@pytest.fixture(scope="session")
def registry_token() -> Iterator[RegistryServer]:
    yield from _session_registry("token")


@pytest.fixture(scope="session")
def registry_mtls() -> Iterator[RegistryServer]:
    yield from _session_registry("mtls")


@pytest.fixture(scope="session")
def seed() -> Callable[[RegistryServer], dict[str, dict]]:
    """``seed(registry)`` pushes the standard images once per registry; returns their data."""
    seeded: dict[str, dict[str, dict]] = {}

    def seed_registry(registry: RegistryServer) -> dict[str, dict]:
        _require("skopeo")
        # Ports never repeat within a process, so the address names one registry for good.
        key = registry.host
        if key not in seeded:
            seeded[key] = seed_standard_images(registry)
        return seeded[key]

    return seed_registry


@pytest.fixture
def tmp_registry() -> Iterator[Callable[..., RegistryServer]]:
    """``tmp_registry(mode="plain", **options)`` starts an empty registry for this test only."""
    started: list[RegistryServer] = []

    def start(mode: str = "plain", **options: Any) -> RegistryServer:
        _require("registry")
        registry = RegistryServer(mode, **options).start()
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()
