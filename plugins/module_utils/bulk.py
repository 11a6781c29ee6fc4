# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the bulk modules (mirror, save, load) share around the copy engine.

Options for lists, platforms and concurrency; the image list read into copy tasks; the results
turned into the module's return value, diff, warnings and failed-list file.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.airgap.hangar.plugins.module_utils.copy_engine import (
    ACTION_FAILED,
    ACTION_SKIPPED,
    CopyOptions,
    ImageResult,
    summarize,
)
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.platform import PlatformFilter
from ansible_collections.airgap.hangar.plugins.module_utils.registry import split_scheme
from ansible_collections.airgap.hangar.plugins.module_utils.signature_policy import SignaturePolicy

MAX_JOBS = 20

# A failing run names this many errors in msg; every error is in the images list.
ERRORS_IN_MESSAGE = 3


class OptionError(HangarError):
    """Module options that contradict each other or are out of range."""


def list_options() -> Dict[str, Any]:
    return dict(
        images=dict(type="list", elements="str", aliases=["names"]),
        images_file=dict(type="path"),
    )


def platform_options() -> Dict[str, Any]:
    return dict(
        arch=dict(type="list", elements="str", default=["amd64", "arm64"]),
        os=dict(type="list", elements="str", default=["linux"]),
        provenance=dict(type="bool", default=True),
    )


def run_options() -> Dict[str, Any]:
    return dict(
        jobs=dict(type="int", default=4),
        image_timeout=dict(type="float", default=600),
        failed_file=dict(type="path"),
    )


def copy_options(params: Dict[str, Any], check_mode: bool) -> CopyOptions:
    jobs = params["jobs"]
    if not 1 <= jobs <= MAX_JOBS:
        raise OptionError(f"jobs must be between 1 and {MAX_JOBS}, got {jobs}")
    if params["image_timeout"] <= 0:
        raise OptionError("image_timeout must be a positive number of seconds")
    return CopyOptions(
        platforms=PlatformFilter(tuple(params["arch"]), tuple(params["os"])),
        provenance=params["provenance"],
        overwrite=params.get("overwrite") or False,
        platform_tags=params.get("platform_tags") or False,
        remove_signatures=params.get("remove_signatures") or False,
        policy=SignaturePolicy.load(params["policy_path"]) if params.get("policy_path") else None,
        check_mode=check_mode,
        image_timeout=params["image_timeout"],
        jobs=jobs,
    )


def registry_host(value: Optional[str], schemes: Dict[str, str]) -> Optional[str]:
    """The host[:port] of a registry option, remembering an explicit http:// or https://."""
    if not value:
        return None
    scheme, host = split_scheme(value.strip())
    if scheme:
        schemes[host] = scheme
    return host


def warnings_for(results: List[ImageResult]) -> List[str]:
    return [result.warning for result in results if result.warning]


def diff_for(results: List[ImageResult]) -> Dict[str, Dict[str, Optional[str]]]:
    """before/after of destination reference to digest, for the references that change."""
    before: Dict[str, Optional[str]] = {}
    after: Dict[str, Optional[str]] = {}
    for result in results:
        if result.changed:
            before[str(result.task.destination)] = result.before
            after[str(result.task.destination)] = result.digest
    return dict(before=before, after=after)


def text_diff(before: List[str], after: List[str], path: str) -> Dict[str, str]:
    """An archive's images before and after, one ``reference@digest`` a line.

    Ansible's diff display takes text (or dicts); a list breaks its callback.
    """
    return dict(before="".join(f"{line}\n" for line in before),
                after="".join(f"{line}\n" for line in after),
                before_header=path, after_header=path)


def write_failed_file(path: Optional[str], results: List[ImageResult]) -> Optional[str]:
    """Write the failed lines in list format, ready to be used as images_file again.

    Written only when something failed; an older file from an earlier run is removed so it is
    not mistaken for this run's failures.
    """
    if not path:
        return None
    lines = [result.task.line for result in results if result.action == ACTION_FAILED]
    if not lines:
        if os.path.isfile(path):
            os.unlink(path)
        return None
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".failed-", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
    os.replace(temporary, path)
    return path


def outcome(results: List[ImageResult], seconds: float) -> Tuple[Dict[str, Any], Optional[str]]:
    """The common return values, and the failure message when any image failed."""
    summary = summarize(results, seconds)
    values = dict(
        changed=any(result.changed for result in results),
        images=[result.as_dict() for result in results],
        summary=summary,
    )
    failed = [result for result in results if result.action == ACTION_FAILED]
    if not failed:
        return values, None
    errors = "; ".join(f"{result.task.source}: {result.error}"
                       for result in failed[:ERRORS_IN_MESSAGE])
    more = f" (and {len(failed) - ERRORS_IN_MESSAGE} more)" if len(failed) > ERRORS_IN_MESSAGE \
        else ""
    message = f"{len(failed)} of {len(results)} images failed: {errors}{more}"
    return values, message


def skipped_count(results: List[ImageResult]) -> int:
    return sum(1 for result in results if result.action == ACTION_SKIPPED)
