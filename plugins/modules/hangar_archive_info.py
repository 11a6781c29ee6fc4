#!/usr/bin/python
# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module hangar_archive_info: list and verify a Hangar archive."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hangar_archive_info
short_description: List the images of a Hangar archive and verify its blobs
version_added: 0.1.0
description:
  - Lists the images of a Hangar zip archive, written by Hangar or by
    M(airgap.hangar.hangar_save), with their platforms, digests and sizes.
  - With O(verify=true), reads every blob again, checks its sha256 digest and size, and reports
    missing or corrupt members instead of failing.
  - The archive's structure is checked on opening (member names, one C(index.json), its
    version); an archive that fails those checks fails the task with the reason.
author:
  - airgap.hangar developers (@airgap-hangar)
options:
  path:
    description:
      - Path of the archive on the managed host.
    type: path
    required: true
    aliases: [src, archive_path]
  verify:
    description:
      - Re-hash every blob the images need and report problems in RV(problems).
    type: bool
    default: false
extends_documentation_fragment:
  - airgap.hangar.registry.group_only
  - airgap.hangar.attributes
  - airgap.hangar.attributes.actiongroup_hangar
attributes:
  check_mode:
    support: full
    details: The module never changes anything.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the archive on the transfer disk before loading it
  airgap.hangar.hangar_archive_info:
    path: /mnt/transfer/rancher-images.zip
    verify: true
  register: archive
  failed_when: not archive.valid

- name: Show how many images it holds
  ansible.builtin.debug:
    msg: "{{ archive.count }} images, {{ archive.size | human_readable }}"
"""

RETURN = r"""
path:
  description: Path of the archive.
  returned: always
  type: str
size:
  description: Size of the archive in bytes.
  returned: always
  type: int
version:
  description: Index version, V(v1.2.0) for current archives.
  returned: always
  type: str
time:
  description: When the index was written (RFC 3339).
  returned: always
  type: str
count:
  description: Number of images.
  returned: always
  type: int
images:
  description: The images of the archive.
  returned: always
  type: list
  elements: dict
  contains:
    reference:
      description: The reference the image was saved as.
      type: str
    source:
      description: C(registry/repository) of the image.
      type: str
    tag:
      description: Tag of the image.
      type: str
    digest:
      description: Digest of the source's index or manifest, when the archive recorded it.
      type: str
    platforms:
      description: Platform manifests (os, architecture, variant, digest, media_type, layers,
        size of the layers).
      type: list
      elements: dict
    size:
      description: Sum of the layer sizes of all platforms, in bytes.
      type: int
valid:
  description: False when O(verify=true) found a problem.
  returned: always
  type: bool
problems:
  description: Missing or corrupt members found by O(verify=true).
  returned: always
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.airgap.hangar.plugins.module_utils.archive import ArchiveReader
from ansible_collections.airgap.hangar.plugins.module_utils.archive_compose import verify_archive
from ansible_collections.airgap.hangar.plugins.module_utils.archive_io import describe_entry
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.module_support import (
    common_options,
    fail,
)


def describe(reader: ArchiveReader, verify: bool) -> dict:
    images = [describe_entry(entry, reader_size(reader)) for entry in reader.images]
    problems = verify_archive(reader) if verify else []
    return dict(path=reader.path, size=os.path.getsize(reader.path),
                version=reader.index.version, time=reader.index.time, count=len(images),
                images=images, valid=not problems, problems=problems)


def reader_size(reader: ArchiveReader):
    return lambda digest: reader.blob_size(digest) if reader.has_blob(digest) else 0


def main() -> None:
    spec = dict(
        path=dict(type="path", required=True, aliases=["src", "archive_path"]),
        verify=dict(type="bool", default=False),
    )
    spec.update(common_options())
    module = AnsibleModule(
        argument_spec=spec,
        supports_check_mode=True,
    )
    try:
        with ArchiveReader(module.params["path"]) as reader:
            result = describe(reader, module.params["verify"])
    except HangarError as error:
        fail(module, error)
    for problem in result["problems"][:5]:
        module.warn(f"{problem['image']}: {problem['member']}: {problem['error']}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
