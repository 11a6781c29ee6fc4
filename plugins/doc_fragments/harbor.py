# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Harbor API connection options, matching the argument spec of plugins/modules/harbor_*.py."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    """C(DOCUMENTATION): address, account and TLS options of the Harbor 2.x API."""

    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Address of Harbor, C(https://host[:port]), C(http://host[:port]) or C(host[:port]).
        A trailing C(/api/v2.0) is accepted and ignored.
      - Without a scheme HTTPS is used; plain HTTP only when O(validate_certs=false) and
        Harbor does not answer HTTPS.
      - The module checks that the address serves the Harbor 2.x API (C(/api/v2.0/ping)) before
        anything else.
      - When not set, the environment variable E(HARBOR_URL) is used.
    type: str
    required: true
    aliases: [url, harbor_url]
  api_username:
    description:
      - Harbor user name, or a robot account such as C(robot$ci).
      - The credentials are checked first; a wrong password fails the task with an
        authentication error instead of making private projects look absent.
      - When not set, the environment variable E(HARBOR_USERNAME) is used.
    type: str
    required: true
    aliases: [username]
  api_password:
    description:
      - Password of O(api_username), or the robot account's secret.
      - When not set, the environment variable E(HARBOR_PASSWORD) is used.
    type: str
    required: true
    aliases: [password]
  validate_certs:
    description:
      - Verify Harbor's TLS certificate.
    type: bool
    default: true
    aliases: [tls_verify]
  ca_path:
    description:
      - PEM file of the certificate authorities that signed Harbor's certificate, added to the
        default ones.
    type: path
    aliases: [ca_cert]
  timeout:
    description:
      - Seconds to wait for Harbor to connect and to answer each request.
    type: float
    default: 60
  certs_dir:
    description:
      - Directory holding one C(host:port) directory per server, in the containers certs.d
        layout (C(*.crt) CAs, C(*.cert) and C(*.key) client pairs), searched for Harbor's host.
      - When not set, C(~/.config/containers/certs.d), C(/etc/containers/certs.d) and
        C(/etc/docker/certs.d) are searched.
    type: path
  retries:
    description:
      - How often a request that failed to connect, broke, or met a busy Harbor (429, 5xx) is
        retried, with growing pauses. Requests that change something are not retried.
    type: int
    default: 3
  auth_file:
    description:
      - Accepted so that one C(module_defaults) block for C(group/airgap.hangar.hangar) applies
        to every module; the Harbor API credentials are O(api_username) and O(api_password).
    type: path
    aliases: [authfile]
"""
