#!/usr/bin/python
# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module hangar_archive: compose a Hangar archive from other archives."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hangar_archive
short_description: Merge, split or create Hangar archives
version_added: 0.1.0
description:
  - Makes O(dest) hold the images of the O(sources) archives, all of them or those named in
    O(images), each blob stored once. This covers Hangar's C(archive merge) (several sources),
    C(archive export) (some images of one source) and C(archive init) (no source, an empty
    archive).
  - When O(dest) already holds exactly those images, nothing is written.
  - The new archive is written beside O(dest) and renamed into place.
author:
  - airgap.hangar developers (@airgap-hangar)
options:
  dest:
    description:
      - Path of the archive to write.
    type: path
    required: true
    aliases: [path]
  sources:
    description:
      - Archives to take images from. When two hold the same reference, the later one wins.
    type: list
    elements: path
    default: []
  images:
    description:
      - Take only these images, matched after normalisation (C(nginx) matches
        C(docker.io/library/nginx:latest)).
    type: list
    elements: str
    aliases: [names]
extends_documentation_fragment:
  - airgap.hangar.registry.group_only
  - airgap.hangar.attributes
  - airgap.hangar.attributes.actiongroup_hangar
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Lists C(reference@digest) of the images of O(dest) before and after.
"""

EXAMPLES = r"""
- name: Merge the archives of two teams into one
  airgap.hangar.hangar_archive:
    dest: /mnt/transfer/all-images.zip
    sources:
      - /data/rancher-images.zip
      - /data/monitoring-images.zip

- name: Export two images into a small archive
  airgap.hangar.hangar_archive:
    dest: /tmp/hotfix.zip
    sources: [/data/rancher-images.zip]
    images:
      - rancher/rancher:v2.9.1
      - rancher/rancher-agent:v2.9.1

- name: Create an empty archive to append to later
  airgap.hangar.hangar_archive:
    dest: /data/new.zip
"""

RETURN = r"""
dest:
  description: Path of the archive.
  returned: always
  type: str
images:
  description: C(reference@digest) of every image in O(dest) after the run.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.airgap.hangar.plugins.module_utils.archive import ArchiveReader
from ansible_collections.airgap.hangar.plugins.module_utils.archive_compose import compose
from ansible_collections.airgap.hangar.plugins.module_utils.bulk import text_diff
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.module_support import (
    common_options,
    fail,
)
from ansible_collections.airgap.hangar.plugins.module_utils.reference import parse_reference


def run(module: AnsibleModule) -> dict:
    params = module.params
    wanted = [parse_reference(text) for text in params["images"]] if params["images"] else None
    readers = []
    try:
        for path in params["sources"]:
            readers.append(ArchiveReader(path))
        outcome = compose(params["dest"], readers, wanted, module.check_mode)
    finally:
        for reader in readers:
            reader.close()
    for warning in outcome["warnings"]:
        module.warn(warning)
    changed = outcome["changed"]
    if not module.check_mode:
        file_args = module.load_file_common_arguments(params)
        changed = module.set_fs_attributes_if_different(file_args, changed)
    values = dict(changed=changed, dest=params["dest"], images=outcome["after"])
    if module._diff:  # pylint: disable=protected-access
        values["diff"] = text_diff(outcome["before"], outcome["after"], params["dest"])
    return values


def main() -> None:
    spec = dict(
        dest=dict(type="path", required=True, aliases=["path"]),
        sources=dict(type="list", elements="path", default=[]),
        images=dict(type="list", elements="str", aliases=["names"]),
    )
    spec.update(common_options())
    module = AnsibleModule(
        argument_spec=spec,
        supports_check_mode=True,
        add_file_common_args=True,
    )
    try:
        module.exit_json(**run(module))
    except HangarError as error:
        fail(module, error)


if __name__ == "__main__":
    main()
