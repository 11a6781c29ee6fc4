#!/usr/bin/python
# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module harbor_project: create, update and delete a Harbor 2.x project."""

from __future__ import annotations

DOCUMENTATION = r"""
module: harbor_project
short_description: Manage a Harbor project, its settings and its storage quota
version_added: 0.1.0
description:
  - Creates, updates or deletes a project of Harbor 2.x through its REST API, including proxy
    cache projects and the project's storage quota.
  - Only the options that are set are compared and changed; Harbor's defaults for the others are
    left alone. Settings Harbor has never stored count as V(false).
author:
  - airgap.hangar contributors (@airgap-hangar)
options:
  name:
    description:
      - Name of the project. Harbor accepts 1 to 255 lower case letters and digits, with single
        C(.), C(_) or C(-) between them; the name starts and ends with a letter or digit.
    type: str
    required: true
  state:
    description:
      - V(present) creates the project or brings the given settings to their values.
      - V(absent) deletes it. A project that still holds repositories is deleted only with
        O(purge=true).
    type: str
    choices: [present, absent]
    default: present
  public:
    description:
      - Whether anyone, even without an account, may pull from the project. New projects are
        private unless this is V(true).
    type: bool
  auto_scan:
    description:
      - Scan images for vulnerabilities when they are pushed.
    type: bool
  content_trust:
    description:
      - Allow only images signed with Notary to be pulled.
      - Cannot be used with O(proxy_cache_registry); Harbor ignores it for proxy cache projects.
    type: bool
  content_trust_cosign:
    description:
      - Allow only images signed with cosign to be pulled.
    type: bool
  prevent_vulnerable:
    description:
      - Prevent pulling images with vulnerabilities of O(severity) or above.
    type: bool
  severity:
    description:
      - Lowest vulnerability severity that O(prevent_vulnerable) blocks.
    type: str
    choices: [none, low, medium, high, critical]
  reuse_sys_cve_allowlist:
    description:
      - Use the system-wide CVE allowlist instead of the project's own.
    type: bool
  auto_sbom_generation:
    description:
      - Generate an SBOM for images when they are pushed.
    type: bool
  storage_quota:
    description:
      - Storage quota of the project in bytes, V(-1) for unlimited.
      - A size with a unit is accepted; units are binary, so V(10G) is 10 GiB (10737418240
        bytes) and C(K), C(M), C(G), C(T), C(P) may be followed by C(B) or C(iB).
      - Harbor accepts 1 byte to 1024T. Only system administrators can change quotas.
    type: raw
  proxy_cache_registry:
    description:
      - Name or numeric ID of a registry endpoint (Administration > Registries) to make this a
        proxy cache project of.
      - Only used when the project is created; Harbor cannot change it later, so asking for
        another value on an existing project fails.
    type: str
  purge:
    description:
      - With O(state=absent), delete the project's repositories and their artifacts first.
        Without it, deleting a project that holds repositories fails and says so.
    type: bool
    default: false
extends_documentation_fragment:
  - airgap.hangar.harbor
  - airgap.hangar.attributes
  - airgap.hangar.attributes.actiongroup_hangar
  - airgap.hangar.attributes.idempotent
attributes:
  check_mode:
    support: full
    details: Only read requests are sent; no project, metadata or quota is written.
  diff_mode:
    support: full
    details: Shows the managed settings (the options that are set) before and after.
  idempotent:
    support: full
notes:
  - Harbor treats wrong credentials as an anonymous caller who sees only public projects. The
    module checks the credentials first (C(GET /api/v2.0/users/current); robots answer 412 there,
    which also proves their secret right), so a wrong password never reads as "project absent".
  - A project that is missing answers 404 only to system administrators, and 403 to everyone
    else; the module tells the two apart with C(HEAD /api/v2.0/projects?project_name=).
  - When Harbor is in read-only mode, or lets only administrators create projects, the module
    fails before any write and says why.
requirements:
  - requests >= 2.32.2
seealso:
  - name: Harbor API v2.0
    description: The REST API this module uses.
    link: https://goharbor.io/docs/main/build-customize-contribute/configure-swagger/
"""

EXAMPLES = r"""
- name: Create a private project for mirrored images
  airgap.hangar.harbor_project:
    api_url: https://harbor.example.com
    api_username: admin
    api_password: "{{ harbor_admin_password }}"
    name: rancher

- name: Public project scanned on push, with a 50 GiB quota
  airgap.hangar.harbor_project:
    api_url: https://harbor.example.com
    api_username: admin
    api_password: "{{ harbor_admin_password }}"
    name: mirror
    public: true
    auto_scan: true
    prevent_vulnerable: true
    severity: high
    storage_quota: 50G

- name: Proxy cache of Docker Hub (the registry endpoint must exist)
  airgap.hangar.harbor_project:
    api_url: https://harbor.example.com
    api_username: admin
    api_password: "{{ harbor_admin_password }}"
    name: dockerhub
    proxy_cache_registry: docker-hub
    public: true

- name: Delete a project and everything pushed into it
  airgap.hangar.harbor_project:
    api_url: https://harbor.example.com
    api_username: admin
    api_password: "{{ harbor_admin_password }}"
    name: scratch
    state: absent
    purge: true

- name: Credentials from HARBOR_URL, HARBOR_USERNAME and HARBOR_PASSWORD, set once for the group
  module_defaults:
    group/airgap.hangar.hangar:
      ca_path: /etc/pki/harbor-ca.pem
  airgap.hangar.harbor_project:
    name: rancher
"""

RETURN = r"""
project:
  description:
    - The project after the task, normalised. Empty after O(state=absent).
    - In check mode, the state the project would have.
  returned: success
  type: dict
  contains:
    name:
      description: Name of the project.
      type: str
      sample: rancher
    project_id:
      description: Harbor's ID of the project; V(null) in check mode when it would be created.
      type: int
      sample: 7
    public:
      description: Whether the project is public.
      type: bool
      sample: false
    auto_scan:
      description: Whether images are scanned on push.
      type: bool
      sample: true
    content_trust:
      description: Whether only Notary-signed images can be pulled.
      type: bool
      sample: false
    content_trust_cosign:
      description: Whether only cosign-signed images can be pulled.
      type: bool
      sample: false
    prevent_vulnerable:
      description: Whether vulnerable images are blocked.
      type: bool
      sample: true
    severity:
      description: Lowest blocked severity, V(null) when never set.
      type: str
      sample: high
    reuse_sys_cve_allowlist:
      description: Whether the system CVE allowlist applies.
      type: bool
      sample: false
    auto_sbom_generation:
      description: Whether SBOMs are generated on push.
      type: bool
      sample: false
    storage_quota:
      description: Hard storage limit in bytes, V(-1) for unlimited.
      type: int
      sample: 53687091200
    storage_used:
      description: Storage used in bytes.
      type: int
      sample: 0
    registry_id:
      description: ID of the registry endpoint of a proxy cache project, else V(null).
      type: int
      sample: 2
    proxy_cache_registry:
      description: Name of that registry endpoint, else V(null).
      type: str
      sample: docker-hub
    repo_count:
      description: Number of repositories in the project.
      type: int
      sample: 12
    owner_name:
      description: The project's owner.
      type: str
      sample: admin
    creation_time:
      description: When the project was created.
      type: str
      sample: "2026-03-01T10:00:00.000Z"
    update_time:
      description: When the project was last updated.
      type: str
      sample: "2026-03-01T10:00:00.000Z"
    metadata:
      description: Harbor's metadata of the project as stored, with string values.
      type: dict
      sample: {"public": "false", "auto_scan": "true"}
project_id:
  description: Harbor's ID of the project; V(null) after O(state=absent) and for a project only
    created in check mode.
  returned: success
  type: int
  sample: 7
actions:
  description: What was done, or would be done in check mode, in plain sentences.
  returned: success
  type: list
  elements: str
  sample: ["created project rancher"]
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.airgap.hangar.plugins.module_utils.credentials import Credentials
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.harbor import (
    SEVERITIES,
    HarborClient,
    ProjectManager,
    ProjectSpec,
)
from ansible_collections.airgap.hangar.plugins.module_utils.module_support import (
    USER_AGENT,
    fail,
    require_requests,
)
from ansible_collections.airgap.hangar.plugins.module_utils.tls import TlsSettings
from ansible_collections.airgap.hangar.plugins.module_utils.transport import TransportSettings


def argument_spec() -> dict:
    return dict(
        api_url=dict(type="str", required=True, aliases=["url", "harbor_url"],
                     fallback=(env_fallback, ["HARBOR_URL"])),
        api_username=dict(type="str", required=True, aliases=["username"],
                          fallback=(env_fallback, ["HARBOR_USERNAME"])),
        api_password=dict(type="str", required=True, no_log=True, aliases=["password"],
                          fallback=(env_fallback, ["HARBOR_PASSWORD"])),
        validate_certs=dict(type="bool", default=True, aliases=["tls_verify"]),
        ca_path=dict(type="path", aliases=["ca_cert"]),
        timeout=dict(type="float", default=60),
        certs_dir=dict(type="path"),
        retries=dict(type="int", default=3),
        auth_file=dict(type="path", aliases=["authfile"]),
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        public=dict(type="bool"),
        auto_scan=dict(type="bool"),
        content_trust=dict(type="bool"),
        content_trust_cosign=dict(type="bool"),
        prevent_vulnerable=dict(type="bool"),
        severity=dict(type="str", choices=list(SEVERITIES)),
        reuse_sys_cve_allowlist=dict(type="bool"),
        auto_sbom_generation=dict(type="bool"),
        storage_quota=dict(type="raw"),
        proxy_cache_registry=dict(type="str"),
        purge=dict(type="bool", default=False),
    )


def connect(params: dict) -> HarborClient:
    settings = TransportSettings(
        tls=TlsSettings(validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                        certs_dir=params["certs_dir"]),
        timeout=params["timeout"],
        retries=params["retries"],
        user_agent=USER_AGENT,
    )
    credentials = Credentials(params["api_username"], params["api_password"],
                              source="api_username/api_password")
    return HarborClient.connect(params["api_url"], settings, credentials)


def run(module: AnsibleModule) -> dict:
    params = module.params
    spec = ProjectSpec.from_params(params)
    client = connect(params)
    try:
        manager = ProjectManager(client, module.check_mode)
        if params["state"] == "present":
            outcome = manager.present(spec)
        else:
            outcome = manager.absent(spec.name, params["purge"])
    finally:
        client.close()
    result = dict(changed=outcome.changed, project=outcome.project,
                  project_id=outcome.project_id, actions=outcome.actions)
    if module._diff:
        result["diff"] = dict(before=outcome.before, after=outcome.after)
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_requests(module)
    try:
        module.exit_json(**run(module))
    except HangarError as error:
        fail(module, error)


if __name__ == "__main__":
    main()
