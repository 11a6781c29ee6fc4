# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create the destination projects of a copy when the destination registry is Harbor 2.x.

Hangar's load does this and its mirror does not, so users of its mirror meet "authentication
required" on every push into a project nobody created. Here both do it, before any image is
copied, and a project that cannot be created fails the task with Harbor's reason.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Tuple

from ansible_collections.airgap.hangar.plugins.module_utils.copy_engine import ACTION_WOULD_COPY
from ansible_collections.airgap.hangar.plugins.module_utils.harbor import HarborClient
from ansible_collections.airgap.hangar.plugins.module_utils.reference import Reference


def projects_by_registry(destinations: Iterable[Reference]) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for ref in destinations:
        names = found.setdefault(ref.registry, [])
        if ref.project not in names:
            names.append(ref.project)
    return found


def ensure_projects(module: Any, clients: Any, destinations: Iterable[Reference],
                    prefix: str) -> List[Tuple[str, str]]:
    """Create missing projects on every Harbor destination; returns (registry, project) pairs.

    In check mode nothing is created and the pairs are those that would be. A destination that
    is not Harbor (no ``/api/v2.0/ping``) is left alone: a plain registry creates repositories
    on push.
    """
    created: List[Tuple[str, str]] = []
    for registry, names in projects_by_registry(destinations).items():
        registry_client = clients.client(registry, prefix)
        harbor = HarborClient.detect(
            registry_client.base_url, registry_client.settings,
            registry_client.auth.credentials)
        if harbor is None:
            continue
        try:
            made = harbor.ensure_projects(names, check_mode=module.check_mode)
            created.extend((registry, name) for name in made)
        finally:
            harbor.close()
    return created


class ProjectCreator:
    """Creates missing Harbor projects once it is known that something will be written.

    A run with nothing to copy never calls the Harbor API, so a no-op re-run costs no more
    requests than the registry checks themselves.
    """

    def __init__(self, module: Any, clients: Any, enabled: bool) -> None:
        self.module = module
        self.clients = clients
        self.enabled = enabled
        self.created: List[Tuple[str, str]] = []

    def before_transfer(self, items: List[Any]) -> None:
        """The engine's hook: runs after planning, before the first write."""
        self._ensure([item.result.task.destination for item in items])

    def predict(self, results: List[Any]) -> None:
        """Check mode: the projects the images that would be copied need."""
        self._ensure([result.task.destination for result in results
                      if result.action == ACTION_WOULD_COPY])

    def _ensure(self, destinations: List[Reference]) -> None:
        if self.enabled and destinations:
            self.created.extend(ensure_projects(self.module, self.clients, destinations,
                                                prefix="dest_"))

    def report(self) -> List[str]:
        return sorted(f"{registry}/{name}" for registry, name in self.created)
