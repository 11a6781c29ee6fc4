# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The root of every exception family of the collection.

Each util raises its own family (transport, registry, archive, Harbor), all rooted here, so a
module's ``main()`` translates exactly one type into ``fail_json``.
"""

from __future__ import annotations


class HangarError(Exception):
    """An error with a message written for the person running the task."""
