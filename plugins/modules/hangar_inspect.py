#!/usr/bin/python
# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module hangar_inspect: read an image's manifest, platforms, layers and config."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hangar_inspect
short_description: Inspect a container image in a registry without pulling it
version_added: 0.1.0
description:
  - Reads the manifest or index of an image from a registry and returns its digest, media type,
    platforms, layers and, on request, its config, raw manifest text and the repository's tags.
  - Read-only. A missing image is reported with RV(exists=false), not as a failure.
  - Every manifest and config read is checked against its digest.
author:
  - airgap.hangar developers (@airgap-hangar)
options:
  image:
    description:
      - The image reference, C([REGISTRY/][PROJECT/]NAME[:TAG][@DIGEST]), normalised as Hangar
        does (C(nginx) is C(docker.io/library/nginx:latest)).
      - A registry may be written with C(http://) to use plain HTTP, for example
        C(http://127.0.0.1:5000/library/alpine:3.20).
    type: str
    required: true
    aliases: [name]
  arch:
    description:
      - When the image is an index or manifest list, pick the platform with this architecture and
        describe its manifest in RV(layers), RV(config) and RV(size).
    type: str
  os:
    description:
      - Operating system of the platform to pick, with O(arch).
    type: str
    default: linux
  variant:
    description:
      - Variant of the platform to pick (for example V(v8) for arm64). Without it the first
        platform of the index with O(arch) and O(os) is picked.
    type: str
  raw:
    description:
      - Also return the manifest text exactly as the registry served it, in RV(raw).
    type: bool
    default: false
  config:
    description:
      - Also fetch the image config blob and return it in RV(config).
    type: bool
    default: false
  list_tags:
    description:
      - Also return every tag of the repository in RV(tags).
    type: bool
    default: false
  archive:
    description:
      - Inspect the image saved in this Hangar archive instead of asking a registry. O(image)
        is matched against the archive's references after normalisation.
      - The archive's blobs are verified as they are read.
    type: path
extends_documentation_fragment:
  - airgap.hangar.registry
  - airgap.hangar.registry.common
  - airgap.hangar.attributes
  - airgap.hangar.attributes.actiongroup_hangar
attributes:
  check_mode:
    support: full
    details: The module never changes anything.
  diff_mode:
    support: none
notes:
  - A single-platform image's platform is read from its config blob, which costs one more
    request.
requirements:
  - requests >= 2.32.2
"""

EXAMPLES = r"""
- name: Inspect a multi-arch image
  airgap.hangar.hangar_inspect:
    image: registry.example.com/library/alpine:3.20
  register: alpine

- name: Show the platform digests
  ansible.builtin.debug:
    msg: "{{ alpine.platforms | map(attribute='digest') | list }}"

- name: Describe the arm64 image of an index, with its config
  airgap.hangar.hangar_inspect:
    image: registry.example.com/library/alpine:3.20
    arch: arm64
    config: true
    username: robot
    password: "{{ registry_password }}"

- name: Check that an image exists in a plain-HTTP lab registry
  airgap.hangar.hangar_inspect:
    image: http://127.0.0.1:5000/library/busybox:1.36
  register: busybox
  failed_when: not busybox.exists

- name: Look into an archive before carrying it across
  airgap.hangar.hangar_inspect:
    image: docker.io/rancher/rancher:v2.9.0
    archive: /mnt/transfer/rancher-images.zip
    arch: amd64

- name: List the tags of a repository, trusting a private CA
  airgap.hangar.hangar_inspect:
    image: harbor.example.com/rancher/rancher:v2.9.0
    list_tags: true
    ca_path: /etc/pki/harbor-ca.pem
"""

RETURN = r"""
exists:
  description: Whether the image exists.
  returned: always
  type: bool
  sample: true
image:
  description: The normalised reference that was inspected.
  returned: always
  type: str
  sample: registry.example.com/library/alpine:3.20
digest:
  description: Digest of the manifest or index at the reference.
  returned: when the image exists
  type: str
  sample: sha256:1c4eef651f65e2f7daee7ee785882ac164b02b78fb74503052a26dc061c90474
media_type:
  description: Media type of the manifest or index.
  returned: when the image exists
  type: str
  sample: application/vnd.oci.image.index.v1+json
manifest:
  description: The manifest or index document.
  returned: when the image exists
  type: dict
raw:
  description: The manifest text exactly as served.
  returned: when O(raw=true) and the image exists
  type: str
platforms:
  description:
    - The platforms of the image. For an index, one entry per platform manifest, attestation
      manifests included (their os and architecture are C(unknown)). For a single manifest, one
      entry read from the config.
  returned: when the image exists
  type: list
  elements: dict
  contains:
    os:
      description: Operating system.
      type: str
    architecture:
      description: CPU architecture.
      type: str
    variant:
      description: CPU variant, when set.
      type: str
    digest:
      description: Digest of the platform's manifest.
      type: str
    media_type:
      description: Media type of the platform's manifest.
      type: str
    size:
      description: Size of the platform's manifest in bytes.
      type: int
platform:
  description: The platform picked with O(arch), O(os) and O(variant).
  returned: when the image is an index and O(arch) is set
  type: dict
layers:
  description:
    - The layers of the manifest (or of the picked platform's manifest). Empty for an index
      when no platform is picked.
  returned: when the image exists
  type: list
  elements: dict
  contains:
    digest:
      description: Digest of the layer.
      type: str
    size:
      description: Size of the layer in bytes.
      type: int
    media_type:
      description: Media type of the layer.
      type: str
size:
  description: Sum of the layer sizes, in bytes (0 for an index when no platform is picked).
  returned: when the image exists
  type: int
config:
  description: The image config document.
  returned: when O(config=true) and a single manifest is described
  type: dict
tags:
  description: Tags of the repository, in the registry's order.
  returned: when O(list_tags=true) and O(archive) is not set
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.airgap.hangar.plugins.module_utils.archive import ArchiveReader
from ansible_collections.airgap.hangar.plugins.module_utils.archive_io import (
    ArchiveSource,
    NotInArchive,
)
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.inspection import inspect_image
from ansible_collections.airgap.hangar.plugins.module_utils.module_support import (
    ClientFactory,
    fail,
    registry_options,
    require_requests,
)
from ansible_collections.airgap.hangar.plugins.module_utils.reference import parse_reference
from ansible_collections.airgap.hangar.plugins.module_utils.registry import split_scheme
from ansible_collections.airgap.hangar.plugins.module_utils.registry_io import RegistrySource


def argument_spec() -> dict:
    spec = dict(
        image=dict(type="str", required=True, aliases=["name"]),
        arch=dict(type="str"),
        os=dict(type="str", default="linux"),
        variant=dict(type="str"),
        raw=dict(type="bool", default=False),
        config=dict(type="bool", default=False),
        list_tags=dict(type="bool", default=False),
        archive=dict(type="path"),
    )
    spec.update(registry_options())
    return spec


def inspect_options(params: dict) -> dict:
    return dict(arch=params["arch"], os=params["os"], variant=params["variant"],
                raw=params["raw"], config=params["config"])


def run(module: AnsibleModule, clients: ClientFactory) -> dict:
    params = module.params
    scheme, text = split_scheme(params["image"])
    reference = parse_reference(text)
    if params["archive"]:
        with ArchiveReader(params["archive"]) as reader:
            result = inspect_image(ArchiveSource(reader), reference, missing=(NotInArchive,),
                                   **inspect_options(params))
    else:
        if scheme:
            clients.schemes[reference.registry] = scheme
        source = RegistrySource(clients.client)
        result = inspect_image(source, reference, **inspect_options(params))
        if params["list_tags"]:
            result["tags"] = clients.client(reference.registry).list_tags(reference.repository)
    result["image"] = str(reference)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_together=[("client_cert", "client_key")],
        required_by={"password": "username"},
        supports_check_mode=True,
    )
    require_requests(module)
    clients = ClientFactory(module, pool_size=2)
    try:
        result = run(module, clients)
    except HangarError as error:
        fail(module, error, exists=False)
    finally:
        clients.close()
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
