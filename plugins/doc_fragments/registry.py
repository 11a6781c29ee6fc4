# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry connection options, matching plugins/module_utils/module_support.py."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """C(DOCUMENTATION) for one registry; C(SOURCE)/C(DESTINATION) for copy modules; C(COMMON)
    for every module; C(GROUP_ONLY) for modules that make no registry connection."""

    DOCUMENTATION = r"""
options:
  username:
    description:
      - User name for the registry.
      - When not set, credentials come from O(auth_file), then from the containers and Docker
        auth files in their standard places, including their credential helpers.
      - Defaults to the environment variable E(HANGAR_USERNAME).
    type: str
  password:
    description:
      - Password or access token for the registry. Requires O(username).
      - Defaults to the environment variable E(HANGAR_PASSWORD).
    type: str
  client_cert:
    description:
      - PEM client certificate for registries that require one. Requires O(client_key).
      - A C(*.cert)/C(*.key) pair in the registry's certs.d directory is used when this is not set.
    type: path
    aliases: [tls_client_cert]
  client_key:
    description:
      - PEM key of O(client_cert).
    type: path
    aliases: [tls_client_key]
"""

    SOURCE = r"""
options:
  src_username:
    description:
      - User name for the source registries.
      - When not set, credentials come from O(auth_file), then from the containers and Docker
        auth files in their standard places, including their credential helpers.
      - Defaults to the environment variable E(HANGAR_SRC_USERNAME).
    type: str
  src_password:
    description:
      - Password or access token for the source registries. Requires O(src_username).
      - Defaults to the environment variable E(HANGAR_SRC_PASSWORD).
    type: str
  src_validate_certs:
    description:
      - Verify the TLS certificates of the source registries.
      - When V(false), a registry that does not answer HTTPS is also tried over plain HTTP.
      - When not set, O(validate_certs) applies.
    type: bool
    aliases: [src_tls_verify]
  policy_path:
    description:
      - A containers signature policy (C(policy.json), see containers-policy.json(5)) that each
        image read from a registry must satisfy before anything of it is copied; an image it
        refuses fails with the reason, and the other images go on.
      - Supported requirements are C(insecureAcceptAnything), C(reject) and C(sigstoreSigned)
        with cosign public keys (C(keyPath), C(keyPaths), C(keyData), C(keyDatas)); an image
        under a scope that asks for GPG C(signedBy), keyless C(fulcio) or C(pki) fails with a
        message saying so.
      - When not set, no policy is read and every image is accepted, like Hangar's
        C(--insecure-policy). Hangar instead reads C(/etc/containers/policy.json) and fails
        when there is none.
    type: path
"""

    DESTINATION = r"""
options:
  dest_username:
    description:
      - User name for the destination registry.
      - When not set, credentials come from O(auth_file), then from the containers and Docker
        auth files in their standard places, including their credential helpers.
      - Defaults to the environment variable E(HANGAR_DEST_USERNAME).
    type: str
  dest_password:
    description:
      - Password or access token for the destination registry. Requires O(dest_username).
      - Defaults to the environment variable E(HANGAR_DEST_PASSWORD).
    type: str
  dest_validate_certs:
    description:
      - Verify the TLS certificate of the destination registry.
      - When V(false), a registry that does not answer HTTPS is also tried over plain HTTP.
      - When not set, O(validate_certs) applies.
    type: bool
    aliases: [dest_tls_verify]
"""

    COMMON = r"""
options:
  validate_certs:
    description:
      - Verify the TLS certificates of the registries.
      - When V(false), a registry that does not answer HTTPS is also tried over plain HTTP,
        as skopeo and podman do. To use plain HTTP with checks on, write the registry as
        C(http://host:port).
      - In modules with two sides, C(src_validate_certs) and C(dest_validate_certs) override it
        per side.
    type: bool
    default: true
    aliases: [tls_verify]
  auth_file:
    description:
      - A containers C(auth.json) or Docker C(config.json) to read credentials from before the
        standard places (C($XDG_RUNTIME_DIR/containers/auth.json),
        C(~/.config/containers/auth.json), C($DOCKER_CONFIG/config.json) or
        C(~/.docker/config.json)).
      - Defaults to the environment variable E(REGISTRY_AUTH_FILE).
    type: path
    aliases: [authfile]
  ca_path:
    description:
      - PEM file of extra certificate authorities to trust, added to the bundle requests uses
        (certifi's). A CA only installed in the operating system's trust store must be given
        here or in a certs.d directory.
    type: path
    aliases: [ca_cert]
  certs_dir:
    description:
      - Directory holding one C(host:port) directory per registry, in the containers certs.d
        layout (C(*.crt) CAs, C(*.cert) and C(*.key) client pairs).
      - When not set, C(~/.config/containers/certs.d), C(/etc/containers/certs.d) and
        C(/etc/docker/certs.d) are searched.
    type: path
  timeout:
    description:
      - Seconds to wait for a connection or for the next bytes of an answer.
    type: float
    default: 60
  retries:
    description:
      - How often a request that failed to connect, broke, or met a busy registry (429, 5xx) is
        retried, with growing pauses. A C(Retry-After) header is honoured.
    type: int
    default: 3
"""

    GROUP_ONLY = r"""
options:
  validate_certs:
    description:
      - Accepted so that one C(module_defaults) block for C(group/airgap.hangar.hangar) applies
        to every module; this module makes no network connection and does not use it.
    type: bool
    default: true
    aliases: [tls_verify]
  auth_file:
    description:
      - Accepted for C(module_defaults) of the group; not used by this module.
    type: path
    aliases: [authfile]
  ca_path:
    description:
      - Accepted for C(module_defaults) of the group; not used by this module.
    type: path
    aliases: [ca_cert]
  certs_dir:
    description:
      - Accepted for C(module_defaults) of the group; not used by this module.
    type: path
  timeout:
    description:
      - Accepted for C(module_defaults) of the group; not used by this module.
    type: float
    default: 60
  retries:
    description:
      - Accepted for C(module_defaults) of the group; not used by this module.
    type: int
    default: 3
"""
