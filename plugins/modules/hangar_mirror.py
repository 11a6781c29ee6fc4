#!/usr/bin/python
# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module hangar_mirror: copy images from source registries to a destination registry."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hangar_mirror
short_description: Copy container images from registries to a registry, keeping their digests
version_added: 0.1.0
description:
  - Copies every image of an image list from its source registry to O(dest_registry), with the
    semantics of Hangar's C(mirror) command, and goes beyond it where it can.
  - Platform manifests keep their digests. When every platform of a multi-arch image is copied,
    the index is pushed unchanged, so the destination tag has the same digest as the source.
    When only some platforms are copied, an OCI index of those platforms is built, merged with
    the platforms already at the destination tag unless O(overwrite=true); its bytes are
    deterministic, so a second run changes nothing.
  - Before any blob moves, the destination tag is compared with what would be pushed. A run that
    has nothing to do makes no write request and reports C(changed=false).
  - Blobs of all images move through one pool of workers, straight from source to destination
    without temporary files, each digest once per run; a blob already in another repository of
    the destination registry is mounted instead of uploaded.
  - Every image is attempted. The task fails at the end when any image failed, and still
    returns the result of every image.
author:
  - airgap.hangar developers (@airgap-hangar)
options:
  images:
    description:
      - Image list lines. Each is a reference C([REGISTRY/][PROJECT/]NAME[:TAG]) or the mirror
        form C(SOURCE DEST TAG), as in a Hangar image list.
      - Lines that fit neither form are skipped with a warning, as Hangar does.
    type: list
    elements: str
    aliases: [names]
  images_file:
    description:
      - A Hangar image list file; its lines are added to O(images). Blank lines and lines
        starting with C(#) or C(//) are ignored.
    type: path
  src_registry:
    description:
      - Take every image from this registry instead of the one in its line (Hangar's
        C(--source)). Write C(http://host:port) for a plain-HTTP registry.
    type: str
  src_project:
    description:
      - Replace the project (first repository component) of every source reference.
    type: str
  dest_registry:
    description:
      - The destination registry, C(host[:port]), or C(http://host:port) for plain HTTP.
      - In the C(SOURCE DEST TAG) form a registry written in DEST is used instead (Hangar ignores
        it).
    type: str
    required: true
  dest_project:
    description:
      - Replace the project of every destination reference.
    type: str
  arch:
    description:
      - Architectures to copy. V(*) keeps every architecture. The variant is not matched, so
        V(arm) keeps every arm variant.
      - An image with no matching platform is skipped with the warning
        C(no available image for specified arch and os); that is not a failure.
    type: list
    elements: str
    default: [amd64, arm64]
  os:
    description:
      - Operating systems to copy. V(*) keeps every one.
    type: list
    elements: str
    default: [linux]
  provenance:
    description:
      - Copy BuildKit attestation manifests (provenance, SBOM) of the copied platforms.
    type: bool
    default: true
  overwrite:
    description:
      - Replace the index at the destination tag instead of merging the copied platforms into
        it.
    type: bool
    default: false
  platform_tags:
    description:
      - Also tag every platform manifest the Hangar way, C(<tag>-<os>-<arch><variant>), and
        attestations C(sha256-<hex>.att).
    type: bool
    default: false
  remove_signatures:
    description:
      - Do not copy cosign signature and attestation tags (C(sha256-<hex>.sig), C(.att)) of the
        copied images.
      - Signatures are looked up when an image is copied; an image already at the destination is
        not searched again.
    type: bool
    default: false
  create_projects:
    description:
      - When the destination is Harbor 2.x, create missing projects (private) before copying.
      - The Harbor API is called with the destination credentials.
    type: bool
    default: true
  jobs:
    description:
      - Images copied at the same time, 1 to 20. Blobs of these images are copied by a shared
        pool of at least 4 workers.
    type: int
    default: 4
  image_timeout:
    description:
      - Seconds one image may take before it fails (Hangar's C(--timeout)).
    type: float
    default: 600
  failed_file:
    description:
      - Write the lines of failed images to this file, in image list format, so they can be
        given again as O(images_file). Removed when nothing failed.
    type: path
extends_documentation_fragment:
  - airgap.hangar.registry.source
  - airgap.hangar.registry.destination
  - airgap.hangar.registry.common
  - airgap.hangar.attributes
  - airgap.hangar.attributes.actiongroup_hangar
attributes:
  check_mode:
    support: full
    details: >-
      Only read requests are made; each image reports C(would_copy), C(present) or C(skipped).
  diff_mode:
    support: full
    details: Maps each destination reference that changes to its digest before and after.
notes:
  - A reference pinned by digest (C(name@sha256:...)) is copied with every platform, whatever
    O(arch) and O(os) say, so the digest still names what was copied.
  - Docker schema 1 images are refused with a message; convert them once with
    C(skopeo copy --format v2s2).
requirements:
  - requests >= 2.32.2
"""

EXAMPLES = r"""
- name: Mirror the Rancher images into Harbor
  airgap.hangar.hangar_mirror:
    images_file: rancher-images.txt
    dest_registry: harbor.example.com
    dest_username: admin
    dest_password: "{{ harbor_password }}"
    jobs: 8
    failed_file: mirror-failed.txt
  register: mirror

- name: Copy only amd64, into one project, from a plain-HTTP lab registry
  airgap.hangar.hangar_mirror:
    images:
      - library/nginx:1.27
      - rancher/rancher:v2.9.0
    src_registry: http://127.0.0.1:5000
    dest_registry: registry.internal:5000
    dest_project: mirror
    arch: [amd64]

- name: Rename while copying, with the SOURCE DEST TAG form
  airgap.hangar.hangar_mirror:
    images:
      - docker.io/library/alpine registry.internal/base/alpine 3.20
    dest_registry: registry.internal

- name: Show what would be copied
  airgap.hangar.hangar_mirror:
    images_file: images.txt
    dest_registry: registry.internal
  check_mode: true
  diff: true
"""

RETURN = r"""
images:
  description: One entry per image list line.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: The source reference.
      type: str
      sample: docker.io/library/alpine:3.20
    destination:
      description: The destination reference.
      type: str
      sample: registry.internal/library/alpine:3.20
    line:
      description: The image list line.
      type: str
    digest:
      description: Digest of what the destination tag holds after the run (or would hold).
      type: str
    platforms:
      description: The platforms copied, as C(os/arch[/variant]).
      type: list
      elements: str
    action:
      description: V(copied), V(present), V(skipped), V(failed) or, in check mode, V(would_copy).
      type: str
    bytes:
      description: Bytes uploaded for this image.
      type: int
    blobs_copied:
      description: Blobs uploaded.
      type: int
    blobs_mounted:
      description: Blobs mounted from another repository of the destination registry.
      type: int
    blobs_present:
      description: Blobs the destination repository already had.
      type: int
    seconds:
      description: Time spent on this image.
      type: float
    error:
      description: Why the image failed, else null.
      type: str
summary:
  description: Totals over all images.
  returned: always
  type: dict
  contains:
    total:
      description: Number of images.
      type: int
    copied:
      description: Images copied.
      type: int
    present:
      description: Images already at the destination.
      type: int
    skipped:
      description: Images with no platform matching O(arch) and O(os).
      type: int
    failed:
      description: Images that failed.
      type: int
    would_copy:
      description: Images that would be copied (check mode).
      type: int
    bytes:
      description: Bytes uploaded.
      type: int
    seconds:
      description: Wall time of the copy.
      type: float
    mib_per_second:
      description: Upload rate over the whole run.
      type: float
projects_created:
  description:
    - Harbor projects created before copying, as C(registry/project) (in check mode, those
      that would be created).
  returned: always
  type: list
  elements: str
failed_file:
  description: Path of the failed-list file, when one was written.
  returned: when O(failed_file) is set and an image failed
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.airgap.hangar.plugins.module_utils import bulk
from ansible_collections.airgap.hangar.plugins.module_utils.copy_engine import CopyEngine, CopyTask
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.image_list import (
    apply_overrides,
    combine,
)
from ansible_collections.airgap.hangar.plugins.module_utils.module_support import (
    ClientFactory,
    common_options,
    destination_options,
    fail,
    require_requests,
    source_options,
)
from ansible_collections.airgap.hangar.plugins.module_utils.projects import ProjectCreator
from ansible_collections.airgap.hangar.plugins.module_utils.registry_io import (
    RegistrySource,
    RegistryTarget,
)


def argument_spec() -> dict:
    spec = dict(
        src_registry=dict(type="str"),
        src_project=dict(type="str"),
        dest_registry=dict(type="str", required=True),
        dest_project=dict(type="str"),
        overwrite=dict(type="bool", default=False),
        platform_tags=dict(type="bool", default=False),
        remove_signatures=dict(type="bool", default=False),
        create_projects=dict(type="bool", default=True),
    )
    for options in (bulk.list_options(), bulk.platform_options(), bulk.run_options(),
                    source_options(), destination_options(), common_options()):
        spec.update(options)
    return spec


def build_tasks(module: AnsibleModule, clients: ClientFactory) -> list:
    params = module.params
    listing = combine(params["images"], params["images_file"], allow_mirror_format=True)
    for warning in listing.warnings:
        module.warn(warning)
    src_registry = bulk.registry_host(params["src_registry"], clients.schemes)
    dest_registry = bulk.registry_host(params["dest_registry"], clients.schemes)
    tasks = []
    for entry in listing.entries:
        source = apply_overrides(entry.source, registry=src_registry,
                                 project=params["src_project"])
        destination = entry.destination or source
        if entry.destination is None or not entry.destination.explicit_registry:
            destination = destination.with_registry(dest_registry)
        destination = apply_overrides(destination, project=params["dest_project"])
        tasks.append(CopyTask(entry.line, source, destination))
    return tasks


def run(module: AnsibleModule, clients: ClientFactory) -> dict:
    options = bulk.copy_options(module.params, module.check_mode)
    tasks = build_tasks(module, clients)
    projects = ProjectCreator(module, clients, module.params["create_projects"])
    engine = CopyEngine(
        RegistrySource(lambda registry: clients.client(registry, "src_")),
        RegistryTarget(lambda registry: clients.client(registry, "dest_"), projects.enabled),
        options,
    )
    started = time.monotonic()
    results = engine.run(tasks, before_transfer=projects.before_transfer)
    if module.check_mode:
        projects.predict(results)
    values, failure = bulk.outcome(results, time.monotonic() - started)
    values["projects_created"] = projects.report()
    values["changed"] = values["changed"] or bool(projects.created)
    for warning in bulk.warnings_for(results):
        module.warn(warning)
    if module._diff:  # pylint: disable=protected-access
        values["diff"] = bulk.diff_for(results)
    if not module.check_mode:
        written = bulk.write_failed_file(module.params["failed_file"], results)
        if written:
            values["failed_file"] = written
    if failure:
        module.fail_json(msg=failure, **values)
    return values


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("images", "images_file")],
        required_by={"src_password": "src_username", "dest_password": "dest_username"},
        supports_check_mode=True,
    )
    require_requests(module)
    clients = ClientFactory(module, pool_size=module.params["jobs"] + 16)
    try:
        module.exit_json(**run(module, clients))
    except HangarError as error:
        fail(module, error)
    finally:
        clients.close()


if __name__ == "__main__":
    main()
