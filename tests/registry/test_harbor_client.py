# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HarborClient against the fake Harbor (tests/support/harbor_server.py) and a real registry."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from ansible_collections.airgap.hangar.plugins.module_utils.credentials import Credentials
from ansible_collections.airgap.hangar.plugins.module_utils.harbor import (
    HarborAuthError,
    HarborClient,
    HarborConflict,
    HarborError,
    HarborForbidden,
    HarborInvalid,
    HarborNotFound,
    HarborPrecondition,
    HarborReadOnly,
    NotHarbor,
    parse_storage,
    project_base_url,
    validate_project_name,
)
from ansible_collections.airgap.hangar.plugins.module_utils.tls import TlsSettings
from ansible_collections.airgap.hangar.plugins.module_utils.transport import (
    TlsError,
    TransportSettings,
)
from tests.support.certs import generate_certs
from tests.support.harbor_server import (
    ADMIN,
    API,
    SYSTEM_ROBOT,
    USER,
    Account,
    HarborServer,
)
from tests.support.images import build_image, run_skopeo
from tests.support.registry import RegistryServer

FAST = TransportSettings(retries=0, timeout=10)
INSECURE = TransportSettings(tls=TlsSettings(validate_certs=False), retries=0, timeout=10)


@pytest.fixture
def harbor(registry_plain: RegistryServer) -> Iterator[HarborServer]:
    with HarborServer(registry_plain.url) as server:
        yield server


def credentials(account: Account) -> Credentials:
    return Credentials(account.name, account.password)


@pytest.fixture
def connect(harbor: HarborServer) -> Iterator[Any]:
    """``connect(account)`` gives a client of the fake Harbor; all are closed at the end."""
    clients = []

    def make(account: Optional[Account] = ADMIN,
             settings: TransportSettings = FAST) -> HarborClient:
        creds = credentials(account) if account else None
        client = HarborClient.connect(harbor.url, settings, creds)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def api_writes(server: HarborServer) -> list:
    return [(r.method, r.path) for r in server.writes()]


# -- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(1024, 1024, id="int"),
    pytest.param(-1, -1, id="unlimited-int"),
    pytest.param("-1", -1, id="unlimited-text"),
    pytest.param("4096", 4096, id="digits"),
    pytest.param("10G", 10 * 1024 ** 3, id="G"),
    pytest.param("10g", 10 * 1024 ** 3, id="lower-case"),
    pytest.param("500MiB", 500 * 1024 ** 2, id="MiB"),
    pytest.param("2 TB", 2 * 1024 ** 4, id="TB-with-space"),
    pytest.param("1.5T", int(1.5 * 1024 ** 4), id="fraction"),
    pytest.param("1024T", 1024 ** 5, id="ceiling"),
])
def test_parse_storage_reads_binary_sizes(value: Any, expected: int) -> None:
    assert parse_storage(value) == expected


@pytest.mark.parametrize("value", ["ten", "10X", "", "-2", 0, 1024 ** 5 + 1, True, "1025T"])
def test_parse_storage_refuses_non_sizes(value: Any) -> None:
    with pytest.raises(HarborInvalid, match="storage quota"):
        parse_storage(value)


@pytest.mark.parametrize("name", ["a", "rancher", "my-team", "a.b_c-d", "2024", "a" * 255])
def test_validate_project_name_accepts_harbor_names(name: str) -> None:
    assert validate_project_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "a__b", "a--b", "-a", "a.", "a/b", "a b", "a" * 256])
def test_validate_project_name_refuses_what_harbor_refuses(name: str) -> None:
    with pytest.raises(HarborInvalid, match="Harbor project name"):
        validate_project_name(name)


@pytest.mark.parametrize(("address", "expected"), [
    ("harbor.example.com", ("", "harbor.example.com")),
    ("harbor.example.com:8443/", ("", "harbor.example.com:8443")),
    ("https://harbor.example.com/api/v2.0", ("https", "harbor.example.com")),
    ("http://127.0.0.1:8080", ("http", "127.0.0.1:8080")),
])
def test_project_base_url_splits_scheme_and_host(address: str, expected: tuple) -> None:
    assert project_base_url(address) == expected


@pytest.mark.parametrize("address", ["ftp://h", "", "https://", "/api/v2.0"])
def test_project_base_url_refuses_unusable_addresses(address: str) -> None:
    with pytest.raises(HarborInvalid, match=f"Harbor address '{address}' is not usable"):
        project_base_url(address)


# -- detection ------------------------------------------------------------------------------


def test_detect_finds_harbor_at_http_url(harbor: HarborServer) -> None:
    client = HarborClient.detect(harbor.url, FAST, credentials(ADMIN))

    assert client is not None
    assert client.base_url == harbor.url
    client.close()


def test_detect_returns_none_for_plain_registry(registry_plain: RegistryServer) -> None:
    assert HarborClient.detect(registry_plain.url, FAST, None) is None


def test_detect_falls_back_to_http_without_validation(harbor: HarborServer) -> None:
    client = HarborClient.detect(harbor.host, INSECURE, credentials(ADMIN))

    assert client is not None
    assert client.base_url == f"http://{harbor.host}"
    client.close()


def test_detect_never_falls_back_to_http_with_validation(harbor: HarborServer) -> None:
    with pytest.raises(TlsError, match="speaks plain HTTP"):
        HarborClient.detect(harbor.host, FAST, credentials(ADMIN))

    assert harbor.requests == []


def test_detect_uses_https_with_the_given_ca(
        tmp_path: Path, registry_plain: RegistryServer) -> None:
    certs = generate_certs(tmp_path)
    settings = TransportSettings(tls=TlsSettings(ca_path=str(certs.ca_cert)), retries=0)

    with HarborServer(registry_plain.url, cert=str(certs.server_cert),
                      key=str(certs.server_key)) as server:
        client = HarborClient.detect(server.host, settings, credentials(ADMIN))
        account = client.account() if client else None

    assert client is not None and client.base_url == f"https://{server.host}"
    assert account is not None and account.sysadmin


def test_detect_reads_system_info_with_credentials(harbor: HarborServer) -> None:
    harbor.state.creation_restriction = "adminonly"

    client = HarborClient.detect(harbor.url, FAST, credentials(USER))

    assert client is not None and client.admin_only_creation
    client.close()


def test_detect_refuses_to_guess_when_ping_fails(harbor: HarborServer) -> None:
    harbor.fail_next("GET", r"/ping$", 503)

    with pytest.raises(HarborError, match=r"checking whether .* is Harbor failed: 503 UNKNOWN"):
        HarborClient.detect(harbor.url, FAST, credentials(ADMIN))


def test_detect_retries_a_busy_ping(harbor: HarborServer) -> None:
    harbor.fail_next("GET", r"/ping$", 503)
    settings = TransportSettings(retries=1, retry_delay=0.01, timeout=10)

    client = HarborClient.detect(harbor.url, settings, credentials(ADMIN))

    assert client is not None
    client.close()


def test_connect_refuses_a_plain_registry(registry_plain: RegistryServer) -> None:
    with pytest.raises(NotHarbor, match="does not serve the Harbor 2.x API"):
        HarborClient.connect(registry_plain.url, FAST, None)


# -- credentials ----------------------------------------------------------------------------


def test_account_rejects_wrong_password(harbor: HarborServer, connect: Any) -> None:
    client = connect(Account("admin", "Wr0ng-Passw0rd", "admin"))

    with pytest.raises(HarborAuthError, match="rejected the credentials of 'admin'") as caught:
        client.account()

    assert "users/current answered 401" in str(caught.value)
    assert "Wr0ng-Passw0rd" not in str(caught.value)


def test_account_recognises_robot_by_412(connect: Any) -> None:
    account = connect(SYSTEM_ROBOT).account()

    assert (account.username, account.robot, account.sysadmin) == ("robot$ci", True, False)


def test_account_rejects_robot_with_wrong_secret(connect: Any) -> None:
    client = connect(Account("robot$ci", "stale-secret", "system_robot"))

    with pytest.raises(HarborAuthError):
        client.account()


def test_account_knows_admins(connect: Any) -> None:
    assert connect(ADMIN).account().sysadmin is True
    assert connect(USER).account().sysadmin is False


def test_account_without_credentials_asks_for_them(connect: Any) -> None:
    with pytest.raises(HarborAuthError, match="needs credentials"):
        connect(None).account()


# -- projects -------------------------------------------------------------------------------


def test_project_exists_matches_exactly(harbor: HarborServer, connect: Any) -> None:
    client = connect(USER)

    assert client.project_exists("library") is True
    assert client.project_exists("lib") is False


def test_get_project_is_none_when_missing_for_admin(connect: Any) -> None:
    assert connect(ADMIN).get_project("ghost") is None


def test_get_project_is_none_when_missing_for_user(harbor: HarborServer, connect: Any) -> None:
    assert connect(USER).get_project("ghost") is None
    assert [r.status for r in harbor.requests if r.path.endswith("/ghost")] == [403]


def test_get_project_is_none_when_missing_for_robot(connect: Any) -> None:
    assert connect(SYSTEM_ROBOT).get_project("ghost") is None


def test_get_project_refuses_non_member(harbor: HarborServer, connect: Any) -> None:
    harbor.add_project("private")

    with pytest.raises(HarborForbidden, match="dev is not a member"):
        connect(USER).get_project("private")


def test_get_project_addresses_digit_names_by_name(harbor: HarborServer, connect: Any) -> None:
    harbor.add_project("1")

    project = connect().get_project("1")

    assert project is not None and project["name"] == "1"


def test_create_project_sends_string_metadata(harbor: HarborServer, connect: Any) -> None:
    connect().create_project("team", public=True, metadata={"auto_scan": True})

    assert harbor.project("team").metadata == {"public": "true", "auto_scan": "true"}


def test_create_existing_project_is_a_conflict(connect: Any) -> None:
    with pytest.raises(HarborConflict, match="409 CONFLICT The project named library"):
        connect().create_project("library")


def test_update_project_keeps_unsent_metadata(harbor: HarborServer, connect: Any) -> None:
    harbor.add_project("team", metadata={"auto_scan": "true"})

    connect().update_project("team", {"severity": "low"})

    assert harbor.project("team").metadata == {
        "public": "false", "auto_scan": "true", "severity": "low"}


def test_delete_project_refuses_non_empty_project(harbor: HarborServer, connect: Any) -> None:
    harbor.add_project("team")
    harbor.add_repository("team", "app")

    with pytest.raises(HarborPrecondition, match="412 PRECONDITION.*delete them first"):
        connect().delete_project("team")


def test_delete_project_purges_repositories_first(harbor: HarborServer, connect: Any) -> None:
    harbor.add_project("team")
    harbor.add_repository("team", "app")
    harbor.add_repository("team", "tools/cli")

    assert connect().delete_project("team", purge=True) is True
    assert harbor.project("team") is None
    assert api_writes(harbor) == [
        ("DELETE", f"{API}/projects/team/repositories/app"),
        ("DELETE", f"{API}/projects/team/repositories/tools%252Fcli"),
        ("DELETE", f"{API}/projects/team"),
    ]


def test_delete_missing_project_is_false(connect: Any) -> None:
    assert connect(USER).delete_project("ghost") is False


def test_delete_by_non_member_is_forbidden(harbor: HarborServer, connect: Any) -> None:
    harbor.add_project("team")

    with pytest.raises(HarborForbidden, match="Only project admins"):
        connect(USER).delete_project("team")


def test_list_repositories_follows_pages(harbor: HarborServer, connect: Any) -> None:
    harbor.add_project("team")
    for number in range(130):
        harbor.add_repository("team", f"app{number:03d}")

    names = connect().list_repositories("team")

    assert len(names) == 130
    assert names[0] == "team/app000" and names[-1] == "team/app129"


# -- ensure_projects (used by the copy modules) ---------------------------------------------


def test_ensure_projects_creates_missing_private_projects(
        harbor: HarborServer, connect: Any) -> None:
    created = connect().ensure_projects(["rancher", "library", "rancher", "cattle"],
                                        check_mode=False)

    assert created == ["rancher", "cattle"]
    assert harbor.project("rancher").metadata == {"public": "false"}
    assert [write[0] for write in api_writes(harbor)] == ["POST", "POST"]


def test_ensure_projects_is_idempotent(harbor: HarborServer, connect: Any) -> None:
    connect().ensure_projects(["rancher"], check_mode=False)
    harbor.clear_log()

    assert connect().ensure_projects(["rancher"], check_mode=False) == []
    assert api_writes(harbor) == []


def test_ensure_projects_check_mode_writes_nothing(harbor: HarborServer, connect: Any) -> None:
    created = connect().ensure_projects(["rancher"], check_mode=True)

    assert created == ["rancher"]
    assert harbor.project("rancher") is None
    assert api_writes(harbor) == []


def test_ensure_projects_refuses_invalid_name_before_any_request(
        harbor: HarborServer, connect: Any) -> None:
    client = connect()
    harbor.clear_log()

    with pytest.raises(HarborInvalid, match="'My_Project'"):
        client.ensure_projects(["ok", "My_Project"], check_mode=False)

    assert harbor.requests == []


def test_ensure_projects_with_wrong_password_is_an_auth_error(
        harbor: HarborServer, connect: Any) -> None:
    client = connect(Account("admin", "wrong", "admin"))

    with pytest.raises(HarborAuthError):
        client.ensure_projects(["rancher"], check_mode=False)

    assert api_writes(harbor) == []


def test_ensure_projects_explains_adminonly(harbor: HarborServer, connect: Any) -> None:
    harbor.state.creation_restriction = "adminonly"

    with pytest.raises(HarborForbidden, match="project_creation_restriction: adminonly"):
        connect(USER).ensure_projects(["rancher"], check_mode=True)

    assert api_writes(harbor) == []


def test_ensure_projects_lets_robot_meet_adminonly_refusal(
        harbor: HarborServer, connect: Any) -> None:
    harbor.state.creation_restriction = "adminonly"

    with pytest.raises(HarborForbidden, match="Only system admin can create project.*adminonly"):
        connect(SYSTEM_ROBOT).ensure_projects(["rancher"], check_mode=False)


def test_ensure_projects_refuses_project_robot(harbor: HarborServer, connect: Any) -> None:
    robot = harbor.add_project_robot("library")

    with pytest.raises(HarborForbidden, match="project robot"):
        connect(robot).ensure_projects(["rancher"], check_mode=False)


def test_ensure_projects_explains_read_only(harbor: HarborServer, connect: Any) -> None:
    harbor.state.read_only = True

    with pytest.raises(HarborReadOnly, match="read-only mode"):
        connect().ensure_projects(["rancher"], check_mode=True)


def test_ensure_projects_in_read_only_is_fine_when_all_exist(
        harbor: HarborServer, connect: Any) -> None:
    harbor.state.read_only = True

    assert connect().ensure_projects(["library"], check_mode=False) == []


def test_ensure_projects_counts_409_as_present(harbor: HarborServer, connect: Any) -> None:
    client = connect()
    client.account()

    assert client.create_if_absent("library") is False


def test_ensure_projects_error_carries_harbor_code_and_request_id(
        harbor: HarborServer, connect: Any) -> None:
    harbor.fail_next("POST", r"/projects$", 500)

    with pytest.raises(HarborError, match=r"500 UNKNOWN internal server error \(X-Request-Id "
                                          r"[0-9a-f]{32}\)") as caught:
        connect().ensure_projects(["rancher"], check_mode=False)

    assert "creating Harbor project 'rancher'" in str(caught.value)
    assert caught.value.code == "UNKNOWN"


def test_client_never_sends_cookies(harbor: HarborServer, connect: Any) -> None:
    client = connect()
    client.ensure_projects(["one", "two"], check_mode=False)
    client.update_project("one", {"auto_scan": "true"})
    client.delete_project("two")

    assert len(harbor.requests) >= 8
    assert not any(r.cookie for r in harbor.requests)


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_push_succeeds_after_ensure_projects(
        harbor: HarborServer, connect: Any, tmp_path: Path) -> None:
    image = build_image(tmp_path, "hello", kind="docker")
    destination = f"docker://{harbor.host}/fresh/hello:v1"
    push = ["copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
            f"--dest-creds={ADMIN.name}:{ADMIN.password}", f"oci:{image.layout_dir}",
            destination]

    with pytest.raises(Exception, match="unauthorized"):
        run_skopeo(push)
    connect().ensure_projects(["fresh"], check_mode=False)
    run_skopeo(push)

    assert harbor.project("fresh").repositories == {"fresh/hello": {"v1"}}


# -- quotas and registry endpoints ----------------------------------------------------------


def test_project_quota_reads_summary_as_member(harbor: HarborServer, connect: Any) -> None:
    harbor.add_project("team", owner=USER, storage_limit=4096)

    quota = connect(USER).project_quota("team")

    assert (quota.hard, quota.used) == (4096, 0)


def test_set_storage_quota_changes_hard_limit(harbor: HarborServer, connect: Any) -> None:
    project = harbor.add_project("team")

    connect().set_storage_quota(project.project_id, 10 * 1024 ** 3)

    assert harbor.quota("team").hard == 10 * 1024 ** 3


def test_set_storage_quota_needs_admin(harbor: HarborServer, connect: Any) -> None:
    project = harbor.add_project("team", owner=USER)

    with pytest.raises(HarborForbidden, match="Only Harbor system administrators"):
        connect(USER).set_storage_quota(project.project_id, 1024)


def test_find_registry_matches_name_exactly(harbor: HarborServer, connect: Any) -> None:
    harbor.add_registry("hub-mirror", "https://mirror.example")
    wanted = harbor.add_registry("hub", "https://hub.example", "docker-hub")

    assert connect().find_registry("hub")["id"] == wanted.registry_id
    assert connect().find_registry(str(wanted.registry_id))["name"] == "hub"


def test_find_registry_names_the_missing_endpoint(connect: Any) -> None:
    with pytest.raises(HarborNotFound, match="no registry endpoint named 'quay'"):
        connect().find_registry("quay")
