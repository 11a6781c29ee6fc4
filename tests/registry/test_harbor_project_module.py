# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""harbor_project run for real: as a module process with an args file, or through ``ansible``.

The fake Harbor's request log shows what the module sent, so "nothing written" is checked on
the server side, not inferred from ``changed``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

import ansible_collections.airgap.hangar.plugins.module_utils.harbor as harbor_utils
from tests.support.certs import generate_certs
from tests.support.harbor_server import (
    ADMIN,
    API,
    SYSTEM_ROBOT,
    USER,
    Account,
    HarborServer,
)
from tests.support.registry import RegistryServer

MODULE = "ansible_collections.airgap.hangar.plugins.modules.harbor_project"
COLLECTIONS_ROOT = str(Path(harbor_utils.__file__).parents[5])
GIB = 1024 ** 3


@pytest.fixture
def harbor(registry_plain: RegistryServer) -> Iterator[HarborServer]:
    with HarborServer(registry_plain.url) as server:
        yield server


class Runner:
    """Runs harbor_project the way Ansible does, one process per task."""

    def __init__(self, harbor: HarborServer, workdir: Path) -> None:
        self.harbor = harbor
        self.workdir = workdir
        self.runs = 0

    def __call__(self, account: Optional[Account] = ADMIN, *, check: bool = False,
                 diff: bool = False, env: Optional[Dict[str, str]] = None,
                 **options: Any) -> Dict[str, Any]:
        args: Dict[str, Any] = {"api_url": self.harbor.url}
        if account is not None:
            args.update(api_username=account.name, api_password=account.password)
        args.update(options)
        args = {key: value for key, value in args.items() if value is not None}
        args.update(_ansible_check_mode=check, _ansible_diff=diff)
        self.runs += 1
        path = self.workdir / f"args-{self.runs}.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        process = subprocess.run(
            [sys.executable, "-m", MODULE, str(path)], capture_output=True, text=True,
            timeout=60, check=False,
            env={**os.environ, "PYTHONPATH": COLLECTIONS_ROOT, **(env or {})})
        return json.loads(process.stdout)


@pytest.fixture
def run(harbor: HarborServer, tmp_path: Path) -> Runner:
    return Runner(harbor, tmp_path)


def writes(harbor: HarborServer) -> List[tuple]:
    return [(r.method, r.path) for r in harbor.writes()]


# -- create, no-op, update ------------------------------------------------------------------


def test_present_creates_private_project(harbor: HarborServer, run: Runner) -> None:
    result = run(name="rancher")

    assert result["changed"] is True
    assert result["project"]["public"] is False
    assert result["project_id"] == harbor.project("rancher").project_id
    assert result["actions"] == ["created project rancher"]
    assert harbor.project("rancher").metadata == {"public": "false"}


def test_present_second_run_writes_nothing(harbor: HarborServer, run: Runner) -> None:
    run(name="rancher", public=True, auto_scan=True, storage_quota="10G")
    harbor.clear_log()

    result = run(name="rancher", public=True, auto_scan=True, storage_quota="10G")

    assert result["changed"] is False
    assert writes(harbor) == []


def test_check_mode_create_writes_nothing(harbor: HarborServer, run: Runner) -> None:
    result = run(name="rancher", auto_scan=True, storage_quota=GIB, check=True, diff=True)

    assert result["changed"] is True
    assert result["project_id"] is None
    assert result["project"]["auto_scan"] is True
    assert result["project"]["storage_quota"] == GIB
    assert result["diff"] == {
        "before": {"name": "rancher", "state": "absent"},
        "after": {"name": "rancher", "state": "present", "auto_scan": True,
                  "storage_quota": GIB},
    }
    assert writes(harbor) == []
    assert harbor.project("rancher") is None


# Every boolean option and the metadata key Harbor stores it under.
BOOLEAN_KEYS = {
    "public": "public",
    "auto_scan": "auto_scan",
    "content_trust": "enable_content_trust",
    "content_trust_cosign": "enable_content_trust_cosign",
    "prevent_vulnerable": "prevent_vul",
    "reuse_sys_cve_allowlist": "reuse_sys_cve_allowlist",
    "auto_sbom_generation": "auto_sbom_generation",
}


def test_boolean_options_are_created_as_strings(harbor: HarborServer, run: Runner) -> None:
    result = run(name="team", **{option: True for option in BOOLEAN_KEYS})

    assert all(result["project"][option] is True for option in BOOLEAN_KEYS)
    assert harbor.project("team").metadata == {key: "true" for key in BOOLEAN_KEYS.values()}


def test_boolean_options_change_in_one_put(harbor: HarborServer, run: Runner) -> None:
    metadata = {key: "true" for key in BOOLEAN_KEYS.values()}
    harbor.add_project("team", metadata={**metadata, "severity": "low"})
    harbor.clear_log()
    wanted = {option: False for option in BOOLEAN_KEYS}

    result = run(name="team", diff=True, **wanted)
    again = run(name="team", **wanted)

    assert result["changed"] is True and again["changed"] is False
    assert result["diff"]["before"] == {"name": "team", "state": "present",
                                        **{option: True for option in BOOLEAN_KEYS}}
    assert result["diff"]["after"] == {"name": "team", "state": "present", **wanted}
    assert harbor.project("team").metadata == {
        **{key: "false" for key in BOOLEAN_KEYS.values()}, "severity": "low"}
    assert writes(harbor) == [("PUT", f"{API}/projects/team")]


def test_one_changed_option_sends_only_its_key(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team", metadata={"auto_scan": "true"})

    result = run(name="team", auto_scan=True, prevent_vulnerable=True)

    assert result["actions"] == ["set prevent_vul=true on project team"]
    assert harbor.project("team").metadata == {
        "public": "false", "auto_scan": "true", "prevent_vul": "true"}


def test_absent_boolean_key_equals_false(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team")
    harbor.clear_log()

    result = run(name="team", auto_scan=False, content_trust=False)

    assert result["changed"] is False
    assert result["project"]["auto_scan"] is False
    assert writes(harbor) == []


def test_unset_options_are_not_compared(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team", public=True, metadata={"auto_scan": "true"})
    harbor.clear_log()

    result = run(name="team")

    assert result["changed"] is False
    assert result["project"]["public"] is True and result["project"]["auto_scan"] is True
    assert writes(harbor) == []


def test_severity_is_set_then_stable(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team", metadata={"severity": "low"})

    changed = run(name="team", prevent_vulnerable=True, severity="critical")
    again = run(name="team", prevent_vulnerable=True, severity="critical")

    assert changed["changed"] is True and again["changed"] is False
    assert harbor.project("team").metadata["severity"] == "critical"
    assert again["project"]["severity"] == "critical"


def test_check_mode_update_predicts_without_writing(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team")
    harbor.clear_log()

    result = run(name="team", public=True, storage_quota="2G", check=True, diff=True)

    assert result["changed"] is True
    assert result["project"]["public"] is True
    assert result["project"]["storage_quota"] == 2 * GIB
    assert result["diff"]["before"] == {"name": "team", "state": "present", "public": False,
                                        "storage_quota": -1}
    assert writes(harbor) == []
    assert harbor.project("team").public is False


def test_diff_shows_only_managed_keys(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team", metadata={"auto_scan": "true"})

    result = run(name="team", public=True, diff=True)

    assert result["diff"] == {
        "before": {"name": "team", "state": "present", "public": False},
        "after": {"name": "team", "state": "present", "public": True},
    }


# -- storage quota --------------------------------------------------------------------------


def test_storage_quota_in_units_is_applied_at_creation(harbor: HarborServer, run: Runner) -> None:
    result = run(name="team", storage_quota="10G")

    assert harbor.quota("team").hard == 10 * GIB
    assert result["project"]["storage_quota"] == 10 * GIB


def test_storage_quota_change_uses_quota_api(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team", storage_limit=GIB)
    quota_id = harbor.quota("team").quota_id
    harbor.clear_log()

    result = run(name="team", storage_quota=-1)

    assert result["changed"] is True
    assert harbor.quota("team").hard == -1
    assert writes(harbor) == [("PUT", f"{API}/quotas/{quota_id}")]


def test_storage_quota_that_is_no_size_fails_before_requests(
        harbor: HarborServer, run: Runner) -> None:
    result = run(name="team", storage_quota="lots")

    assert result["failed"] is True
    assert "storage quota 'lots' is not a size" in result["msg"]
    assert harbor.requests == []


def test_storage_quota_by_non_admin_fails_clearly(harbor: HarborServer, run: Runner) -> None:
    result = run(USER, name="team", storage_quota="1G")

    assert result["failed"] is True
    assert "only system administrators can change quotas and dev is not one" in result["msg"]
    assert harbor.project("team") is None


# -- delete ---------------------------------------------------------------------------------


def test_absent_deletes_then_is_stable(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team")

    first = run(name="team", state="absent", diff=True)
    second = run(name="team", state="absent")

    assert first["changed"] is True and second["changed"] is False
    assert first["diff"] == {"before": {"name": "team", "state": "present"},
                             "after": {"name": "team", "state": "absent"}}
    assert harbor.project("team") is None


def test_absent_refuses_project_with_repositories(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team")
    harbor.add_repository("team", "app")
    harbor.clear_log()

    result = run(name="team", state="absent")

    assert result["failed"] is True
    assert result["msg"] == (
        "cannot delete Harbor project 'team': it still contains 1 repositories (team/app). "
        "Set purge: true to delete them with the project")
    assert writes(harbor) == []


def test_absent_with_purge_deletes_repositories_first(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team")
    harbor.add_repository("team", "app")
    harbor.clear_log()

    result = run(name="team", state="absent", purge=True)

    assert result["changed"] is True
    assert result["actions"] == ["deleted repository team/app", "deleted project team"]
    assert writes(harbor) == [("DELETE", f"{API}/projects/team/repositories/app"),
                              ("DELETE", f"{API}/projects/team")]


def test_absent_in_check_mode_deletes_nothing(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team")
    harbor.add_repository("team", "app")
    harbor.clear_log()

    result = run(name="team", state="absent", purge=True, check=True)

    assert result["changed"] is True
    assert writes(harbor) == []
    assert harbor.project("team") is not None


# -- bad input, credentials, permissions ----------------------------------------------------


@pytest.mark.parametrize("name", ["Rancher", "a__b", "-x", "a" * 256])
def test_bad_name_fails_before_any_request(harbor: HarborServer, run: Runner, name: str) -> None:
    result = run(name=name)

    assert result["failed"] is True
    assert result["msg"].startswith(f"Harbor project name {name!r} is invalid")
    assert harbor.requests == []


def test_wrong_password_is_an_auth_error_not_absent(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("secret")

    present = run(Account("admin", "Wr0ng", "admin"), name="secret")
    absent = run(Account("admin", "Wr0ng", "admin"), name="secret", state="absent")

    for result in (present, absent):
        assert result["failed"] is True
        assert "rejected the credentials of 'admin'" in result["msg"]
    assert writes(harbor) == []
    assert harbor.project("secret") is not None


def test_user_creates_and_owns_project(harbor: HarborServer, run: Runner) -> None:
    result = run(USER, name="team", public=True)
    again = run(USER, name="team", public=True)

    assert result["changed"] is True and again["changed"] is False
    assert result["project"]["owner_name"] == "dev"


def test_user_cannot_update_project_of_others(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team")

    result = run(USER, name="team", public=True)

    assert result["failed"] is True
    assert "403 FORBIDDEN" in result["msg"] and "dev is not a member" in result["msg"]


def test_adminonly_restriction_is_explained(harbor: HarborServer, run: Runner) -> None:
    harbor.state.creation_restriction = "adminonly"

    result = run(USER, name="team")

    assert result["failed"] is True
    assert "project_creation_restriction: adminonly" in result["msg"]
    assert writes(harbor) == []


def test_system_robot_creates_project(harbor: HarborServer, run: Runner) -> None:
    result = run(SYSTEM_ROBOT, name="team")

    assert result["changed"] is True
    assert result["project"]["owner_name"] == "admin"


def test_read_only_harbor_fails_changes_up_front(harbor: HarborServer, run: Runner) -> None:
    harbor.add_project("team")
    harbor.state.read_only = True

    change = run(name="team", public=True)
    no_change = run(name="team", public=False)

    assert change["failed"] is True
    assert "is in read-only mode" in change["msg"]
    assert no_change["changed"] is False
    assert writes(harbor) == []


def test_not_harbor_fails_clearly(registry_plain: RegistryServer, run: Runner) -> None:
    result = run(name="team", api_url=registry_plain.url)

    assert result["failed"] is True
    assert "does not serve the Harbor 2.x API" in result["msg"]


# -- proxy cache ----------------------------------------------------------------------------


def test_proxy_cache_project_is_created_then_stable(harbor: HarborServer, run: Runner) -> None:
    registry = harbor.add_registry("hub", "https://hub.example", "docker-hub")

    result = run(name="cache", proxy_cache_registry="hub", public=True)
    again = run(name="cache", proxy_cache_registry=str(registry.registry_id), public=True)

    assert result["changed"] is True and again["changed"] is False
    assert harbor.project("cache").registry_id == registry.registry_id
    assert again["project"]["proxy_cache_registry"] == "hub"


def test_proxy_cache_registry_change_is_refused(harbor: HarborServer, run: Runner) -> None:
    first = harbor.add_registry("hub", "https://hub.example", "docker-hub")
    harbor.add_registry("quay", "https://quay.example", "quay")
    harbor.add_project("cache", registry_id=first.registry_id)
    harbor.clear_log()

    result = run(name="cache", proxy_cache_registry="quay")

    assert result["failed"] is True
    assert result["msg"] == (
        "proxy_cache_registry of Harbor project 'cache' can only be set when the project is "
        "created: it has registry endpoint 'hub' and 'quay' was asked. Delete the project and "
        "create it again to change it")
    assert writes(harbor) == []


def test_proxy_cache_on_existing_normal_project_is_refused(
        harbor: HarborServer, run: Runner) -> None:
    harbor.add_registry("hub", "https://hub.example", "docker-hub")
    harbor.add_project("team")

    result = run(name="team", proxy_cache_registry="hub")

    assert result["failed"] is True
    assert "it has no registry (it is not a proxy cache project)" in result["msg"]


def test_proxy_cache_with_content_trust_is_refused(harbor: HarborServer, run: Runner) -> None:
    result = run(name="cache", proxy_cache_registry="hub", content_trust=True)

    assert result["failed"] is True
    assert "content_trust cannot be enabled on a proxy cache project" in result["msg"]
    assert harbor.requests == []


def test_unknown_proxy_registry_is_named(harbor: HarborServer, run: Runner) -> None:
    result = run(name="cache", proxy_cache_registry="nowhere")

    assert result["failed"] is True
    assert "no registry endpoint named 'nowhere'" in result["msg"]


# -- connection options ---------------------------------------------------------------------


def test_environment_supplies_url_and_credentials(harbor: HarborServer, run: Runner) -> None:
    env = {"HARBOR_URL": f"{harbor.url}/api/v2.0", "HARBOR_USERNAME": ADMIN.name,
           "HARBOR_PASSWORD": ADMIN.password}

    result = run(None, name="team", env=env, api_url=None)

    assert result["changed"] is True
    assert harbor.project("team") is not None


def test_https_with_ca_path(tmp_path: Path, registry_plain: RegistryServer) -> None:
    certs = generate_certs(tmp_path / "certs")
    with HarborServer(registry_plain.url, cert=str(certs.server_cert),
                      key=str(certs.server_key)) as server:
        runner = Runner(server, tmp_path)
        trusted = runner(name="team", ca_path=str(certs.ca_cert))
        untrusted = runner(name="other")
        unchecked = runner(name="other", validate_certs=False, api_url=server.host)

    assert trusted["changed"] is True
    assert untrusted["failed"] is True and "is not trusted" in untrusted["msg"]
    assert unchecked["changed"] is True


def test_module_never_sends_cookies(harbor: HarborServer, run: Runner) -> None:
    run(name="team", public=True, storage_quota="1G")
    run(name="team", public=False)
    run(name="team", state="absent")

    assert writes(harbor) == [("POST", f"{API}/projects"), ("PUT", f"{API}/projects/team"),
                              ("DELETE", f"{API}/projects/team")]
    assert not any(r.cookie for r in harbor.requests)


# -- through ansible ------------------------------------------------------------------------


PLAYBOOK_PASSWORD = "Sup3r-S3cret-Harbor"


@pytest.fixture(scope="module")
def playbook_run(registry_plain: RegistryServer,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """One ansible-playbook -vvv run (about 4 s) whose output several tests read."""
    workdir = tmp_path_factory.mktemp("playbook")
    with HarborServer(registry_plain.url) as server:
        server.state.accounts["ops"] = Account("ops", PLAYBOOK_PASSWORD, "admin", user_id=9)
        playbook = workdir / "playbook.yml"
        playbook.write_text(PLAYBOOK.format(url=server.url, password=PLAYBOOK_PASSWORD))
        binary = Path(sys.executable).with_name("ansible-playbook")
        process = subprocess.run(
            [str(binary) if binary.exists() else "ansible-playbook", "-vvv", "--diff",
             "-i", "localhost,", "-c", "local", "-e",
             f"ansible_python_interpreter={sys.executable}", str(playbook)],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_ROOT,
                 "ANSIBLE_NOCOLOR": "true", "ANSIBLE_LOCALHOST_WARNING": "false"})
        yield server, process


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/airgap.hangar.hangar:
      api_url: "{url}"
      api_username: ops
      api_password: "{password}"
  tasks:
    - name: Predict the creation
      airgap.hangar.harbor_project:
        name: checked
        auto_scan: true
      check_mode: true
    - name: Create for real
      airgap.hangar.harbor_project:
        name: created
        auto_scan: true
    - name: Fail on a bad name
      airgap.hangar.harbor_project:
        name: Bad_Name
      ignore_errors: true
    - name: Fail on a wrong password
      airgap.hangar.harbor_project:
        name: created
        api_password: "{password}-wrong"
      ignore_errors: true
"""


def test_playbook_runs_every_task(playbook_run: tuple) -> None:
    process = playbook_run[1]

    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert "ok=4 " in process.stdout and "changed=2 " in process.stdout
    assert "ignored=2" in process.stdout


def test_password_never_appears_in_verbose_output(playbook_run: tuple) -> None:
    process = playbook_run[1]

    assert "rejected the credentials of 'ops'" in process.stdout
    assert PLAYBOOK_PASSWORD not in process.stdout + process.stderr


def test_check_mode_through_ansible_writes_nothing(playbook_run: tuple) -> None:
    server, process = playbook_run

    assert '+    "auto_scan": true,' in process.stdout
    assert server.project("checked") is None
    assert server.project("created") is not None
    assert [(r.method, r.path) for r in server.writes()] == [("POST", f"{API}/projects")]


def test_module_defaults_group_reaches_harbor_project(playbook_run: tuple) -> None:
    server = playbook_run[0]

    assert {r.user for r in server.requests if r.path.startswith(API + "/users")} == {
        "ops", "anonymous"}
