#!/usr/bin/python
# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module hangar_save: save images from registries into a Hangar zip archive."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hangar_save
short_description: Save container images from registries into a Hangar archive
version_added: 0.1.0
description:
  - Saves the images of an image list into a zip archive in Hangar's format (index version
    v1.2.0), which Hangar and M(airgap.hangar.hangar_load) both load.
  - Platform manifests are stored byte for byte with their configs and layers, each blob once.
    The source's top-level index is stored too, so a load that keeps every platform restores
    the original tag digest; Hangar ignores this addition.
  - Without O(append), O(dest) ends up holding exactly the requested images. With O(append)
    (Hangar's C(sync)), requested images are added or updated and the others kept.
  - A new or rebuilt archive is written beside O(dest) and renamed into place, so an interrupted
    run never leaves a broken archive under the final name. An append writes only the
    archive's end; an interrupted append is undone automatically the next time the archive is
    opened.
  - When the archive already holds every requested image with the same platform manifests,
    nothing is written and the task reports no change.
author:
  - airgap.hangar developers (@airgap-hangar)
options:
  dest:
    description:
      - Path of the archive on the managed host.
    type: path
    required: true
    aliases: [path, archive_path]
  append:
    description:
      - Add the requested images to an existing archive and keep its other images.
    type: bool
    default: false
  images:
    description:
      - Image references, one per item, C([REGISTRY/][PROJECT/]NAME[:TAG]).
    type: list
    elements: str
    aliases: [names]
  images_file:
    description:
      - A Hangar image list file; its lines are added to O(images).
    type: path
  src_registry:
    description:
      - Take every image from this registry instead of the one in its line. The archive
        records the registry the image was taken from, as Hangar does.
    type: str
  arch:
    description:
      - Architectures to save; V(*) keeps every one. Variants are not matched.
    type: list
    elements: str
    default: [amd64, arm64]
  os:
    description:
      - Operating systems to save; V(*) keeps every one.
    type: list
    elements: str
    default: [linux]
  provenance:
    description:
      - Save BuildKit attestation manifests of the saved platforms.
    type: bool
    default: true
  jobs:
    description:
      - Images saved at the same time, 1 to 20.
    type: int
    default: 4
  image_timeout:
    description:
      - Seconds one image may take before it fails.
    type: float
    default: 600
  failed_file:
    description:
      - Write the lines of failed images to this file in image list format.
    type: path
extends_documentation_fragment:
  - airgap.hangar.registry.source
  - airgap.hangar.registry.common
  - airgap.hangar.attributes
  - airgap.hangar.attributes.actiongroup_hangar
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    details: Reads the archive and the registries; reports what would be added or removed.
  diff_mode:
    support: full
    details: Lists C(reference@digest) of the archive's images before and after.
notes:
  - The archive is written on the managed host. In an AWX execution environment, write it to a
    mounted volume, not into the container's own file system.
  - Signatures are never saved, as in Hangar.
requirements:
  - requests >= 2.32.2
"""

EXAMPLES = r"""
- name: Save the Rancher images for the air-gapped site
  airgap.hangar.hangar_save:
    images_file: rancher-images.txt
    dest: /mnt/transfer/rancher-images.zip
    arch: [amd64]
    jobs: 8
    failed_file: /mnt/transfer/save-failed.txt

- name: Add two images to an existing archive
  airgap.hangar.hangar_save:
    images:
      - docker.io/library/nginx:1.27
      - quay.io/skopeo/stable:v1.16
    dest: /mnt/transfer/rancher-images.zip
    append: true
"""

RETURN = r"""
dest:
  description: Path of the archive.
  returned: always
  type: str
archive:
  description: The archive after the run.
  returned: always
  type: dict
  contains:
    path:
      description: Path of the archive.
      type: str
    size:
      description: Size in bytes.
      type: int
    images:
      description: C(reference@digest) of every image in the archive.
      type: list
      elements: str
images:
  description: One entry per requested image, as in M(airgap.hangar.hangar_mirror).
  returned: always
  type: list
  elements: dict
summary:
  description: Totals over all images, as in M(airgap.hangar.hangar_mirror).
  returned: always
  type: dict
removed:
  description: References removed from the archive because they were not requested.
  returned: always
  type: list
  elements: str
failed_file:
  description: Path of the failed-list file, when one was written.
  returned: when O(failed_file) is set and an image failed
  type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.airgap.hangar.plugins.module_utils import bulk
from ansible_collections.airgap.hangar.plugins.module_utils.archive_save import SaveJob
from ansible_collections.airgap.hangar.plugins.module_utils.copy_engine import CopyTask
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.image_list import (
    apply_overrides,
    combine,
)
from ansible_collections.airgap.hangar.plugins.module_utils.module_support import (
    ClientFactory,
    common_options,
    fail,
    require_requests,
    source_options,
)
from ansible_collections.airgap.hangar.plugins.module_utils.registry_io import RegistrySource


def argument_spec() -> dict:
    spec = dict(
        dest=dict(type="path", required=True, aliases=["path", "archive_path"]),
        append=dict(type="bool", default=False),
        src_registry=dict(type="str"),
    )
    for options in (bulk.list_options(), bulk.platform_options(), bulk.run_options(),
                    source_options(), common_options()):
        spec.update(options)
    return spec


def build_tasks(module: AnsibleModule, clients: ClientFactory) -> list:
    params = module.params
    listing = combine(params["images"], params["images_file"], allow_mirror_format=False)
    for warning in listing.warnings:
        module.warn(warning)
    registry = bulk.registry_host(params["src_registry"], clients.schemes)
    tasks = []
    for entry in listing.entries:
        source = apply_overrides(entry.source, registry=registry)
        tasks.append(CopyTask(entry.line, source, source))
    return tasks


def run(module: AnsibleModule, clients: ClientFactory) -> dict:
    params = module.params
    options = bulk.copy_options(params, module.check_mode)
    tasks = build_tasks(module, clients)
    source = RegistrySource(lambda registry: clients.client(registry, "src_"))
    job = SaveJob(params["dest"], append=params["append"], check_mode=module.check_mode)
    started = time.monotonic()
    results = job.run(source, options, tasks)
    values, failure = bulk.outcome(results, time.monotonic() - started)
    values["changed"] = job.changed
    values.update(dest=params["dest"], archive=job.describe(), removed=job.removed)
    for warning in bulk.warnings_for(results) + job.warnings:
        module.warn(warning)
    if module._diff:  # pylint: disable=protected-access
        values["diff"] = bulk.text_diff(job.before, job.after, params["dest"])
    if not module.check_mode:
        written = bulk.write_failed_file(params["failed_file"], results)
        if written:
            values["failed_file"] = written
        if os.path.exists(params["dest"]):
            file_args = module.load_file_common_arguments(params)
            values["changed"] = module.set_fs_attributes_if_different(file_args, values["changed"])
    if failure:
        module.fail_json(msg=failure, **values)
    return values


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("images", "images_file")],
        required_by={"src_password": "src_username"},
        supports_check_mode=True,
        add_file_common_args=True,
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
