# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter image_ref: an image reference split into its parts, as the modules read it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: image_ref
short_description: Split an image reference into registry, project, name, tag and digest
version_added: 0.1.0
author:
  - airgap.hangar developers (@airgap-hangar)
description:
  - Parses an image reference C([REGISTRY/][PROJECT/]NAME[:TAG][@DIGEST]) with the same code the
    modules of this collection use, so a playbook sees exactly the registry, project and tag
    that M(airgap.hangar.hangar_mirror) or M(airgap.hangar.hangar_load) would use.
  - References are expanded as Hangar does, so C(nginx) is C(docker.io/library/nginx:latest), and a
    first path component is a registry when it holds a C(.) or a C(:) or is C(localhost) (with
    three components the first one always is).
  - An invalid reference fails the task with a message that says what is wrong with it.
positional: default_registry
options:
  _input:
    description: The image reference.
    type: str
    required: true
  default_registry:
    description:
      - Registry of a reference that names none, C(host[:port]).
    type: str
    default: docker.io
"""

EXAMPLES = r"""
- name: Show where an image of the list lands in the air-gapped registry
  ansible.builtin.debug:
    # registry.airgap.local/rancher/rancher:v2.9.0
    msg: "registry.airgap.local/{{ ref.repository }}:{{ ref.tag }}"
  vars:
    ref: "{{ 'rancher/rancher:v2.9.0' | airgap.hangar.image_ref }}"

- name: List the Harbor projects an image list needs
  ansible.builtin.set_fact:
    needed_projects: >-
      {{ images | map('airgap.hangar.image_ref') | map(attribute='project') | unique }}

- name: Expand short names against a private registry
  ansible.builtin.debug:
    # {'registry': 'registry.local:5000', 'project': 'library', 'name': 'alpine', ...}
    msg: "{{ 'alpine:3.20' | airgap.hangar.image_ref('registry.local:5000') }}"
"""

RETURN = r"""
_value:
  description: The parts of the reference.
  type: dict
  contains:
    registry:
      description: Registry host and port; Docker Hub's aliases become V(docker.io).
      type: str
      sample: docker.io
    project:
      description: First component of the repository (a Harbor project).
      type: str
      sample: library
    name:
      description: The repository after the project; may hold C(/).
      type: str
      sample: nginx
    repository:
      description: C(project/name).
      type: str
      sample: library/nginx
    tag:
      description: The tag; V(latest) when neither a tag nor a digest is given, V(null) when only
        a digest is.
      type: str
      sample: "1.27"
    digest:
      description: The digest, or V(null).
      type: str
      sample: null
    reference:
      description: The normalised reference, C(registry/repository[:tag][@digest]).
      type: str
      sample: docker.io/library/nginx:1.27
"""

from typing import Any, Callable, Dict, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.airgap.hangar.plugins.module_utils.reference import (
    DEFAULT_REGISTRY,
    ReferenceError,
    parse_reference,
)


def image_ref(text: Any, default_registry: str = DEFAULT_REGISTRY) -> Dict[str, Optional[str]]:
    """Return the parts of the image reference ``text``."""
    if not isinstance(text, str):
        raise AnsibleFilterError(
            f"image_ref: expected an image reference as a string, got {_kind(text)}"
        )

    try:
        ref = parse_reference(text, default_registry)
    except ReferenceError as exc:
        raise AnsibleFilterError(f"image_ref: {exc}") from exc

    return {
        "registry": ref.registry,
        "project": ref.project,
        "name": ref.name,
        "repository": ref.repository,
        "tag": ref.tag,
        "digest": ref.digest,
        "reference": str(ref),
    }


def _kind(value: Any) -> str:
    # Ansible hands over tagged subclasses (_AnsibleTaggedInt); name the plain type instead.
    for plain in (bool, int, float, dict, list):
        if isinstance(value, plain):
            return plain.__name__
    return "null" if value is None else type(value).__name__


class FilterModule:  # pylint: disable=too-few-public-methods
    """The image_ref filter."""

    def filters(self) -> Dict[str, Callable[..., Dict[str, Optional[str]]]]:
        return {"image_ref": image_ref}
