# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection shares: option specs, client construction, failures.

The option specs here match plugins/doc_fragments/registry.py option for option.
"""

from __future__ import annotations

import threading
from typing import Any, Dict

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.airgap.hangar.plugins.module_utils.credentials import CredentialStore
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.registry import RegistryClient
from ansible_collections.airgap.hangar.plugins.module_utils.tls import CaBundles, TlsSettings
from ansible_collections.airgap.hangar.plugins.module_utils.transport import (
    REQUESTS_IMPORT_ERROR,
    TransportSettings,
)

COLLECTION_VERSION = "0.1.0"
USER_AGENT = f"ansible-airgap.hangar/{COLLECTION_VERSION}"


def _credential_options(prefix: str, env_prefix: str) -> Dict[str, Any]:
    return {
        f"{prefix}username": dict(type="str",
                                  fallback=(env_fallback, [f"{env_prefix}USERNAME"])),
        f"{prefix}password": dict(type="str", no_log=True,
                                  fallback=(env_fallback, [f"{env_prefix}PASSWORD"])),
    }


def _side_options(prefix: str, env_prefix: str) -> Dict[str, Any]:
    """Credentials and TLS checking of one side; the check defaults to validate_certs."""
    spec = _credential_options(prefix, env_prefix)
    spec[f"{prefix}validate_certs"] = dict(type="bool", aliases=[f"{prefix}tls_verify"])
    return spec


def common_options() -> Dict[str, Any]:
    """The options every module of the hangar action group accepts.

    They hold one value for every registry of a task, so one module_defaults block for
    group/airgap.hangar.hangar serves every module.
    """
    return dict(
        validate_certs=dict(type="bool", default=True, aliases=["tls_verify"]),
        auth_file=dict(type="path", aliases=["authfile"],
                       fallback=(env_fallback, ["REGISTRY_AUTH_FILE"])),
        ca_path=dict(type="path", aliases=["ca_cert"]),
        certs_dir=dict(type="path"),
        timeout=dict(type="float", default=60),
        retries=dict(type="int", default=3),
    )


def registry_options() -> Dict[str, Any]:
    """Options of a module that talks to one registry (hangar_inspect)."""
    spec = _credential_options("", "HANGAR_")
    spec.update(
        client_cert=dict(type="path", aliases=["tls_client_cert"]),
        client_key=dict(type="path", aliases=["tls_client_key"]),
    )
    spec.update(common_options())
    return spec


def source_options() -> Dict[str, Any]:
    spec = _side_options("src_", "HANGAR_SRC_")
    spec["policy_path"] = dict(type="path")
    return spec


def destination_options() -> Dict[str, Any]:
    return _side_options("dest_", "HANGAR_DEST_")


def require_requests(module: Any) -> None:
    if REQUESTS_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)


class ClientFactory:
    """Builds registry clients from module parameters, one per registry and side."""

    def __init__(self, module: Any, pool_size: int = 4) -> None:
        self.module = module
        self.pool_size = pool_size
        self.bundles = CaBundles()
        self.schemes: Dict[str, str] = {}
        self._clients: Dict[tuple, RegistryClient] = {}
        self._lock = threading.Lock()

    def client(self, registry: str, prefix: str = "") -> RegistryClient:
        """The client for ``registry`` with the options of side ``prefix`` (``src_``/``dest_``).

        A scheme the user wrote for this host (``http://``) in any option is kept.
        """
        if registry in self.schemes:
            registry = f"{self.schemes[registry]}://{registry}"
        key = (registry, prefix)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._build(registry, prefix)
            return self._clients[key]

    def _build(self, registry: str, prefix: str) -> RegistryClient:
        params = self.module.params
        validate = params.get(f"{prefix}validate_certs")
        tls = TlsSettings(
            validate_certs=params["validate_certs"] if validate is None else validate,
            ca_path=params.get("ca_path"),
            client_cert=params.get("client_cert"),
            client_key=params.get("client_key"),
            certs_dir=params.get("certs_dir"),
        )
        settings = TransportSettings(
            tls=tls, timeout=params["timeout"], retries=params["retries"],
            pool_size=self.pool_size, user_agent=USER_AGENT,
        )
        store = CredentialStore(
            username=params.get(f"{prefix}username"), password=params.get(f"{prefix}password"),
            auth_file=params.get("auth_file"), secret_sink=self.hide,
        )
        return RegistryClient(registry, credentials=store, settings=settings,
                              bundles=self.bundles, secret_sink=self.hide)

    def hide(self, secret: str) -> None:
        """Keep a secret out of every output of the module, -vvv included."""
        if secret:
            self.module.no_log_values.add(secret)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self.bundles.cleanup()


def fail(module: Any, error: HangarError, **result: Any) -> None:
    """The one place where the collection's errors become a failed task."""
    module.fail_json(msg=str(error), **result)
