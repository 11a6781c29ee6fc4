# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real-registry test harness: docker-registry instances, a token server and test images.

Used by pytest (``tests/conftest.py``), by ansible-test integration targets and scripts through
``python -m tests.support`` (see ``__main__``), and by benchmarks.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _make_collection_importable() -> None:
    """Put a directory holding ``ansible_collections/airgap/hangar`` on ``sys.path`` if needed.

    Developers set PYTHONPATH; shell scripts of integration targets run inside ansible-test's
    ``ansible_collections/airgap/hangar`` copy, or next to ``build/`` from scripts/layout.sh.
    """
    try:
        import ansible_collections.airgap.hangar.plugins.module_utils  # noqa: F401
    except ImportError:
        pass
    else:
        return
    repository = Path(__file__).resolve().parents[2]
    candidates = [repository / "build"]
    if repository.parent.parent.name == "ansible_collections":
        candidates.insert(0, repository.parent.parent.parent)
    for root in candidates:
        if (root / "ansible_collections" / "airgap" / "hangar" / "plugins").is_dir():
            sys.path.insert(0, str(root))
            return
    raise ImportError(
        "tests.support needs the collection importable as ansible_collections.airgap.hangar; "
        "set PYTHONPATH to the directory that holds ansible_collections/ "
        "(scripts/layout.sh makes one in build/)"
    )


_make_collection_importable()

from .certs import CertBundle, generate_certs  # noqa: E402
from .images import (  # noqa: E402
    BuiltImage,
    ImageBuildError,
    build_image,
    build_signature,
    inspect_raw,
    push_image,
    seed_standard_images,
    signature_tag,
)
from .ports import free_port  # noqa: E402
from .registry import (  # noqa: E402
    MODES,
    AccessEntry,
    AttachedRegistry,
    RegistryHarnessError,
    RegistryServer,
)
from .token_server import TokenRequest, TokenServer, TokenUser  # noqa: E402

__all__ = [
    "MODES",
    "AccessEntry",
    "AttachedRegistry",
    "BuiltImage",
    "CertBundle",
    "ImageBuildError",
    "RegistryHarnessError",
    "RegistryServer",
    "TokenRequest",
    "TokenServer",
    "TokenUser",
    "build_image",
    "build_signature",
    "free_port",
    "generate_certs",
    "inspect_raw",
    "push_image",
    "seed_standard_images",
    "signature_tag",
]
