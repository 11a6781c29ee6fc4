# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Look at the destination registry from the controller, for lookups of the playbooks.

    python registry_probe.py writes URL CA_PATH LOG
        Print how many write requests (PUT, POST, PATCH, DELETE under /v2/) the registry
        logged so far.
    python registry_probe.py status URL CA_PATH AUTH_FILE PATH...
        HEAD each PATH under URL/v2/ with the credentials of the containers AUTH_FILE and
        print a JSON object of PATH to HTTP status.

Run through the pipe lookup, these cost no module run per request, which keeps the target
fast. CA_PATH may be '' for a plain-HTTP registry.
"""

from __future__ import annotations

import json
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Dict, List, Optional

WRITE_RE = re.compile(r'"(PUT|POST|PATCH|DELETE) /v2/')
MARKER_TIMEOUT = 10  # seconds for the marker request to reach the access log
MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))


def context(ca_path: str) -> Optional[ssl.SSLContext]:
    return ssl.create_default_context(cafile=ca_path) if ca_path else None


def request_status(request: urllib.request.Request, ca_path: str) -> int:
    try:
        with urllib.request.urlopen(request, context=context(ca_path), timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def count_writes(url: str, ca_path: str, log: str) -> int:
    """Count after a marker request appears: the registry logs a request after answering it,
    so once the marker is in the log, every earlier request is too."""
    marker = f"it-marker-{uuid.uuid4().hex}"
    request_status(urllib.request.Request(f"{url}/v2/?{marker}"), ca_path)

    deadline = time.monotonic() + MARKER_TIMEOUT
    while True:
        with open(log, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        if marker in text:
            return sum(1 for line in text.splitlines() if WRITE_RE.search(line))
        if time.monotonic() > deadline:
            raise SystemExit(f"marker request {marker} never reached {log}")
        time.sleep(0.05)


def authorization(auth_file: str, url: str) -> Dict[str, str]:
    with open(auth_file, encoding="utf-8") as handle:
        auths = json.load(handle).get("auths", {})
    entry = auths.get(urllib.parse.urlsplit(url).netloc)
    return {"Authorization": f"Basic {entry['auth']}"} if entry else {}


def statuses(url: str, ca_path: str, auth_file: str, paths: List[str]) -> Dict[str, int]:
    headers = {"Accept": MANIFEST_TYPES, **authorization(auth_file, url)}
    return {
        path: request_status(
            urllib.request.Request(f"{url}/v2/{path}", headers=headers, method="HEAD"), ca_path)
        for path in paths
    }


def main(argv: List[str]) -> None:
    if len(argv) == 5 and argv[1] == "writes":
        print(count_writes(argv[2], argv[3], argv[4]))
    elif len(argv) >= 6 and argv[1] == "status":
        print(json.dumps(statuses(argv[2], argv[3], argv[4], argv[5:])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
