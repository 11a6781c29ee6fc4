# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attribute descriptions shared by the modules of airgap.hangar."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """Standard attributes; each module sets C(support) for them itself."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
"""

    ACTIONGROUP_HANGAR = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/airgap.hangar.hangar) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - airgap.hangar.hangar
"""

    IDEMPOTENT = r"""
options: {}
attributes:
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change.
"""
