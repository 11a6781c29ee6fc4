# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter shard: the share of a list that one of several hosts works on."""

from __future__ import annotations

DOCUMENTATION = r"""
name: shard
short_description: Split a list deterministically into one share per host
version_added: 0.1.0
author:
  - airgap.hangar developers (@airgap-hangar)
description:
  - Returns the items of a list that belong to share O(index) of O(count) shares. The shares of
    all indexes from V(0) to O(count) minus one cover the list exactly once, and every host that
    computes them from the same list gets the same answer, with no coordination.
  - With O(strategy=round_robin), item number I goes to share I modulo O(count), so the shares
    differ in length by at most one item and keep the list's order.
  - With O(strategy=hash), an item goes to the share given by the SHA-256 of its text, so an item
    stays in its share when others are added to or removed from the list; the shares are less
    even.
  - The role P(airgap.hangar.registry_mirror#role) uses it to let each host of a play mirror its
    own share of an image list.
positional: index, count
options:
  _input:
    description: The list to split; its items are usually image references.
    type: list
    elements: raw
    required: true
  index:
    description:
      - Which share to return, from V(0) to O(count) minus one, for example the position of
        C(inventory_hostname) in C(ansible_play_hosts_all).
    type: int
    required: true
  count:
    description:
      - How many shares the list is split into, for example C(ansible_play_hosts_all | length).
    type: int
    required: true
  strategy:
    description:
      - How items are assigned to shares.
    type: str
    choices: [round_robin, hash]
    default: round_robin
"""

EXAMPLES = r"""
- name: Mirror this host's share of the image list
  airgap.hangar.hangar_mirror:
    images: >-
      {{ all_images | airgap.hangar.shard(ansible_play_hosts_all.index(inventory_hostname),
                                          ansible_play_hosts_all | length) }}
    dest_registry: registry.airgap.local

- name: Split five items into two shares
  ansible.builtin.debug:
    # ['a', 'c', 'e']
    msg: "{{ ['a', 'b', 'c', 'd', 'e'] | airgap.hangar.shard(0, 2) }}"

- name: Shares that stay put as the list grows
  ansible.builtin.set_fact:
    stable_share: "{{ images | airgap.hangar.shard(1, 3, strategy='hash') }}"
"""

RETURN = r"""
_value:
  description: The items of share O(index), in the order of the input list.
  type: list
  elements: raw
"""

import hashlib
from typing import Any, Callable, Dict, List

from ansible.errors import AnsibleFilterError

STRATEGIES = ("round_robin", "hash")


def shard(items: Any, index: Any, count: Any, strategy: str = "round_robin") -> List[Any]:
    """Return the items of share ``index`` out of ``count`` shares of ``items``."""
    values = _check_items(items)
    count = _check_int(count, "count", minimum=1)
    index = _check_int(index, "index", minimum=0)
    if index >= count:
        raise AnsibleFilterError(
            f"shard: index {index} is out of range for count {count}; "
            f"give an index from 0 to {count - 1}"
        )

    if strategy == "round_robin":
        return values[index::count]
    if strategy == "hash":
        return [item for item in values if _hash_share(item, count) == index]
    raise AnsibleFilterError(
        f"shard: unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}"
    )


def _check_items(items: Any) -> List[Any]:
    # A string or a dict is iterable too, but splitting one by characters or keys is never
    # what a caller means.
    if isinstance(items, (str, bytes, dict)) or not hasattr(items, "__iter__"):
        raise AnsibleFilterError(
            f"shard: the input must be a list, got {_kind(items)}; "
            "split a text into lines first, e.g. text | split('\\n')"
        )
    return list(items)


def _kind(value: Any) -> str:
    # Ansible hands over tagged subclasses (_AnsibleTaggedStr); name the plain type instead.
    for plain in (bool, str, bytes, dict, list, int, float):
        if isinstance(value, plain):
            return plain.__name__
    return type(value).__name__


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool):
        number = None
    else:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None

    if number is None or number < minimum or str(number) != str(value).strip():
        raise AnsibleFilterError(
            f"shard: {name} must be a whole number of at least {minimum}, got {value!r}"
        )
    return number


def _hash_share(item: Any, count: int) -> int:
    digest = hashlib.sha256(str(item).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


class FilterModule:  # pylint: disable=too-few-public-methods
    """The shard filter."""

    def filters(self) -> Dict[str, Callable[..., List[Any]]]:
        return {"shard": shard}
