#!/usr/bin/python
# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module hangar_load: push the images of a Hangar archive into a registry."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hangar_load
short_description: Load container images from a Hangar archive into a registry
version_added: 0.1.0
description:
  - Pushes the images of a Hangar zip archive (written by Hangar or by
    M(airgap.hangar.hangar_save)) to O(dest_registry).
  - Blobs stream from the archive to the registry without extracting it, several at a time;
    blobs the registry already has are skipped. Every blob is verified against its digest as it
    is read; a corrupt image is not pushed and its tag is not touched.
  - Platform manifests, helper tags and the index at the tag follow the same rules as
    M(airgap.hangar.hangar_mirror). When the archive holds the source's original index (archives
    written by M(airgap.hangar.hangar_save)) and every platform is loaded, that index is pushed
    unchanged, so the tag has the source's digest.
  - When the destination is Harbor 2.x, missing projects are created (private) first.
author:
  - airgap.hangar developers (@airgap-hangar)
options:
  src:
    description:
      - Path of the archive on the managed host.
    type: path
    required: true
    aliases: [path, archive_path]
  images:
    description:
      - Load only these images of the archive, matched after normalisation
        (C(nginx) matches C(docker.io/library/nginx:latest)).
    type: list
    elements: str
    aliases: [names]
  images_file:
    description:
      - A Hangar image list file naming the images to load, added to O(images).
    type: path
  src_registry:
    description:
      - Replace the registry of the O(images) and O(images_file) lines before matching them
        against the archive (Hangar's C(--source-registry)).
    type: str
  dest_registry:
    description:
      - The destination registry, C(host[:port]), or C(http://host:port) for plain HTTP.
    type: str
    required: true
  dest_project:
    description:
      - Replace the project of every destination reference.
    type: str
  arch:
    description:
      - Architectures to load; V(*) keeps every one. Variants are not matched.
    type: list
    elements: str
    default: [amd64, arm64]
  os:
    description:
      - Operating systems to load; V(*) keeps every one.
    type: list
    elements: str
    default: [linux]
  provenance:
    description:
      - Load BuildKit attestation manifests of the loaded platforms.
    type: bool
    default: true
  overwrite:
    description:
      - Replace the index at the destination tag instead of merging into it.
    type: bool
    default: false
  platform_tags:
    description:
      - Also tag every platform manifest the Hangar way, C(<tag>-<os>-<arch><variant>).
    type: bool
    default: false
  create_projects:
    description:
      - When the destination is Harbor 2.x, create missing projects (private) before loading.
    type: bool
    default: true
  jobs:
    description:
      - Images loaded at the same time, 1 to 20.
    type: int
    default: 4
  image_timeout:
    description:
      - Seconds one image may take before it fails.
    type: float
    default: 600
  failed_file:
    description:
      - Write the references of failed images to this file in image list format.
    type: path
extends_documentation_fragment:
  - airgap.hangar.registry.destination
  - airgap.hangar.registry.common
  - airgap.hangar.attributes
  - airgap.hangar.attributes.actiongroup_hangar
attributes:
  check_mode:
    support: full
    details: Reads the archive and the destination; reports C(would_copy), C(present) or C(skipped).
  diff_mode:
    support: full
    details: Maps each destination reference that changes to its digest before and after.
requirements:
  - requests >= 2.32.2
"""

EXAMPLES = r"""
- name: Load an archive into Harbor, creating its projects
  airgap.hangar.hangar_load:
    src: /mnt/transfer/rancher-images.zip
    dest_registry: harbor.airgap.local
    dest_username: admin
    dest_password: "{{ harbor_password }}"
    jobs: 8
    failed_file: /mnt/transfer/load-failed.txt

- name: Load two images of the archive into one project
  airgap.hangar.hangar_load:
    src: /mnt/transfer/rancher-images.zip
    images:
      - rancher/rancher:v2.9.0
      - library/nginx:1.27
    dest_registry: registry.airgap.local:5000
    dest_project: mirror
"""

RETURN = r"""
images:
  description: One entry per loaded image, as in M(airgap.hangar.hangar_mirror).
  returned: always
  type: list
  elements: dict
summary:
  description: Totals over all images, as in M(airgap.hangar.hangar_mirror).
  returned: always
  type: dict
archive:
  description: The archive read.
  returned: always
  type: dict
  contains:
    path:
      description: Path of the archive.
      type: str
    images:
      description: Number of images in the archive.
      type: int
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
from ansible_collections.airgap.hangar.plugins.module_utils.archive import ArchiveReader
from ansible_collections.airgap.hangar.plugins.module_utils.archive_io import (
    ArchiveSource,
    entry_for,
)
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
)
from ansible_collections.airgap.hangar.plugins.module_utils.projects import ProjectCreator
from ansible_collections.airgap.hangar.plugins.module_utils.reference import parse_reference
from ansible_collections.airgap.hangar.plugins.module_utils.registry_io import RegistryTarget


def argument_spec() -> dict:
    spec = dict(
        src=dict(type="path", required=True, aliases=["path", "archive_path"]),
        src_registry=dict(type="str"),
        dest_registry=dict(type="str", required=True),
        dest_project=dict(type="str"),
        overwrite=dict(type="bool", default=False),
        platform_tags=dict(type="bool", default=False),
        create_projects=dict(type="bool", default=True),
    )
    for options in (bulk.list_options(), bulk.platform_options(), bulk.run_options(),
                    destination_options(), common_options()):
        spec.update(options)
    return spec


def wanted_sources(module: AnsibleModule, reader: ArchiveReader) -> list:
    """The archive references to load: all, or those the image list names."""
    params = module.params
    if not params["images"] and not params["images_file"]:
        return [parse_reference(entry.reference) for entry in reader.images]
    listing = combine(params["images"], params["images_file"], allow_mirror_format=False)
    for warning in listing.warnings:
        module.warn(warning)
    registry = bulk.registry_host(params["src_registry"], {})
    wanted = []
    for line in listing.entries:
        ref = apply_overrides(line.source, registry=registry)
        if entry_for(reader.images, ref) is None:
            module.warn(f"{ref} ({line.line!r}) is not in archive {params['src']}; skipped")
            continue
        wanted.append(ref)
    return wanted


def build_tasks(module: AnsibleModule, reader: ArchiveReader, clients: ClientFactory) -> list:
    params = module.params
    dest_registry = bulk.registry_host(params["dest_registry"], clients.schemes)
    tasks = []
    for source in wanted_sources(module, reader):
        destination = apply_overrides(source.with_registry(dest_registry),
                                      project=params["dest_project"])
        tasks.append(CopyTask(str(source), source, destination))
    return tasks


def run(module: AnsibleModule, clients: ClientFactory, reader: ArchiveReader) -> dict:
    options = bulk.copy_options(module.params, module.check_mode)
    tasks = build_tasks(module, reader, clients)
    projects = ProjectCreator(module, clients, module.params["create_projects"])
    target = RegistryTarget(lambda registry: clients.client(registry, "dest_"), projects.enabled)
    engine = CopyEngine(ArchiveSource(reader), target, options)
    started = time.monotonic()
    results = engine.run(tasks, before_transfer=projects.before_transfer)
    if module.check_mode:
        projects.predict(results)
    values, failure = bulk.outcome(results, time.monotonic() - started)
    values["projects_created"] = projects.report()
    values["changed"] = values["changed"] or bool(projects.created)
    values["archive"] = dict(path=module.params["src"], images=len(reader.images))
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
        required_by={"dest_password": "dest_username"},
        supports_check_mode=True,
    )
    require_requests(module)
    clients = ClientFactory(module, pool_size=module.params["jobs"] + 16)
    try:
        with ArchiveReader(module.params["src"]) as reader:
            module.exit_json(**run(module, clients, reader))
    except HangarError as error:
        fail(module, error)
    finally:
        clients.close()


if __name__ == "__main__":
    main()
