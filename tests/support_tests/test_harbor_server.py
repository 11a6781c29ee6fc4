# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fake Harbor enforces the rules of harbor-security.md section 3.2, each checked here.

The API is called with plain ``requests`` (no collection code), the way any Harbor client would,
and ``/v2/`` goes through to a real ``docker-registry``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import requests

from tests.support.certs import generate_certs
from tests.support.harbor_server import (
    ADMIN,
    API,
    OTHER_USER,
    SYSTEM_ROBOT,
    USER,
    Account,
    HarborServer,
    start_harbor,
)
from tests.support.images import build_image, run_skopeo
from tests.support.registry import RegistryServer

ANONYMOUS: Optional[Account] = None
WRONG_PASSWORD = Account("admin", "not-the-password", "admin")


@pytest.fixture
def registry(registry_plain: RegistryServer) -> RegistryServer:
    return registry_plain


@pytest.fixture
def harbor(registry: RegistryServer) -> Iterator[HarborServer]:
    with HarborServer(registry.url) as server:
        yield server


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed; apt-get install skopeo to run this test")
    return build_image(tmp_path_factory.mktemp("layouts"), "hello", kind="oci-index")


def call(server: HarborServer, method: str, path: str, account: Optional[Account] = ADMIN,
         **kwargs: Any) -> requests.Response:
    """One request without a session, so no cookie is ever sent back."""
    if account is not None:
        kwargs["auth"] = (account.name, account.password)
    url = path if path.startswith("http") else f"{server.url}{path}"
    return requests.request(method, url, timeout=10, **kwargs)


def create(server: HarborServer, name: str, account: Optional[Account] = ADMIN,
           **body: Any) -> requests.Response:
    return call(server, "POST", f"{API}/projects", account, json={"project_name": name, **body})


def error_of(response: requests.Response) -> tuple:
    first = response.json()["errors"][0]
    return response.status_code, first["code"], first["message"]


def push(
        server: HarborServer, image: Any, repository: str,
        account: Optional[Account] = ADMIN) -> None:
    credentials = (f"--dest-creds={account.name}:{account.password}" if account
                   else "--dest-no-creds")
    run_skopeo(["copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
                credentials, f"oci:{image.layout_dir}", f"docker://{server.host}/{repository}"])


# -- system endpoints -----------------------------------------------------------------------


def test_ping_answers_pong_as_text(harbor: HarborServer) -> None:
    answer = call(harbor, "GET", f"{API}/ping", ANONYMOUS)

    assert answer.status_code == 200
    assert answer.text == "Pong"
    assert answer.headers["Content-Type"].startswith("text/plain")


def test_systeminfo_hides_settings_when_anonymous(harbor: HarborServer) -> None:
    anonymous = call(harbor, "GET", f"{API}/systeminfo", ANONYMOUS).json()
    admin = call(harbor, "GET", f"{API}/systeminfo").json()

    assert anonymous["auth_mode"] == "db_auth"
    assert "harbor_version" not in anonymous and "read_only" not in anonymous
    assert admin["read_only"] is False
    assert admin["project_creation_restriction"] == "everyone"
    assert admin["harbor_version"].startswith("v2.")


@pytest.mark.parametrize(("account", "status"), [
    pytest.param(ANONYMOUS, 401, id="anonymous"),
    pytest.param(WRONG_PASSWORD, 401, id="wrong-password"),
    pytest.param(SYSTEM_ROBOT, 412, id="robot"),
    pytest.param(USER, 200, id="user"),
])
def test_current_user_status_depends_on_account(
        harbor: HarborServer, account: Any, status: int) -> None:
    answer = call(harbor, "GET", f"{API}/users/current", account)

    assert answer.status_code == status


def test_current_user_tells_admins_apart(harbor: HarborServer) -> None:
    assert call(harbor, "GET", f"{API}/users/current").json()["sysadmin_flag"] is True
    assert call(harbor, "GET", f"{API}/users/current", USER).json()["sysadmin_flag"] is False


def test_robot_current_user_explains_412(harbor: HarborServer) -> None:
    answer = call(harbor, "GET", f"{API}/users/current", SYSTEM_ROBOT)

    assert error_of(answer) == (412, "PRECONDITION",
                                "get current user not available for security context: robot")


# -- anonymous fallback and existence checks ------------------------------------------------


def test_wrong_password_lists_only_public_projects(harbor: HarborServer) -> None:
    harbor.add_project("secret")

    answer = call(harbor, "GET", f"{API}/projects", WRONG_PASSWORD)

    assert answer.status_code == 200
    assert [p["name"] for p in answer.json()] == ["library"]
    assert answer.headers["X-Total-Count"] == "1"


def test_wrong_password_is_recorded_as_anonymous(harbor: HarborServer) -> None:
    call(harbor, "GET", f"{API}/projects", WRONG_PASSWORD)

    assert harbor.requests[-1].user == "anonymous"


@pytest.mark.parametrize(("account", "status"), [
    pytest.param(ANONYMOUS, 401, id="anonymous"),
    pytest.param(WRONG_PASSWORD, 401, id="wrong-password"),
    pytest.param(USER, 404, id="user"),
    pytest.param(SYSTEM_ROBOT, 404, id="robot"),
])
def test_head_project_needs_authentication(harbor: HarborServer, account: Any, status: int) -> None:
    answer = call(harbor, "HEAD", f"{API}/projects", account, params={"project_name": "nope"})

    assert answer.status_code == status


def test_head_project_matches_names_exactly(harbor: HarborServer) -> None:
    exact = call(harbor, "HEAD", f"{API}/projects", params={"project_name": "library"})
    prefix = call(harbor, "HEAD", f"{API}/projects", params={"project_name": "lib"})

    assert (exact.status_code, prefix.status_code) == (200, 404)


def test_head_project_sees_private_projects_of_others(harbor: HarborServer) -> None:
    harbor.add_project("private")

    answer = call(harbor, "HEAD", f"{API}/projects", USER, params={"project_name": "private"})

    assert answer.status_code == 200


def test_name_filter_is_fuzzy_and_q_is_exact(harbor: HarborServer) -> None:
    harbor.add_project("mylib")

    fuzzy = call(harbor, "GET", f"{API}/projects", params={"name": "lib"}).json()
    exact = call(harbor, "GET", f"{API}/projects", params={"q": "name=lib"}).json()
    exact_hit = call(harbor, "GET", f"{API}/projects", params={"q": "name=mylib"}).json()

    assert sorted(p["name"] for p in fuzzy) == ["library", "mylib"]
    assert exact == []
    assert [p["name"] for p in exact_hit] == ["mylib"]


@pytest.mark.parametrize(("account", "status"), [
    pytest.param(ADMIN, 404, id="admin"),
    pytest.param(USER, 403, id="user"),
    pytest.param(SYSTEM_ROBOT, 403, id="system-robot"),
    pytest.param(ANONYMOUS, 401, id="anonymous"),
])
def test_missing_project_answer_depends_on_role(
        harbor: HarborServer, account: Any, status: int) -> None:
    answer = call(harbor, "GET", f"{API}/projects/ghost", account,
                  headers={"X-Is-Resource-Name": "true"})

    assert answer.status_code == status


def test_private_project_is_forbidden_to_non_members(harbor: HarborServer) -> None:
    harbor.add_project("private")

    answer = call(harbor, "GET", f"{API}/projects/private", USER)

    assert error_of(answer)[:2] == (403, "FORBIDDEN")


def test_numeric_path_is_an_id_unless_marked_as_name(harbor: HarborServer) -> None:
    harbor.add_project("1999")

    by_id = call(harbor, "GET", f"{API}/projects/1").json()
    by_name = call(harbor, "GET", f"{API}/projects/1999",
                   headers={"X-Is-Resource-Name": "true"}).json()

    assert by_id["name"] == "library"
    assert by_name["name"] == "1999"


def test_numeric_name_without_marker_misses(harbor: HarborServer) -> None:
    harbor.add_project("1999")

    answer = call(harbor, "GET", f"{API}/projects/1999")

    assert answer.status_code == 404


def test_space_in_project_path_is_a_bad_request(harbor: HarborServer) -> None:
    answer = call(harbor, "GET", f"{API}/projects/a b", headers={"X-Is-Resource-Name": "true"})

    assert error_of(answer) == (400, "BAD_REQUEST", "invalid project name: 'a b'")


# -- creation rules -------------------------------------------------------------------------


def test_create_answers_201_with_id_location(harbor: HarborServer) -> None:
    answer = create(harbor, "team")

    assert answer.status_code == 201
    assert answer.headers["Location"] == f"{API}/projects/{harbor.project('team').project_id}"
    assert answer.content == b""


def test_create_location_names_project_on_request(harbor: HarborServer) -> None:
    answer = call(harbor, "POST", f"{API}/projects", json={"project_name": "team"},
                  headers={"X-Resource-Name-In-Location": "true"})

    assert answer.headers["Location"] == f"{API}/projects/team"


@pytest.mark.parametrize("name", ["Team", "a__b", "a--b", "-a", "a-", "a..b", "a/b", "a b"])
def test_create_refuses_names_outside_harbor_grammar(harbor: HarborServer, name: str) -> None:
    answer = create(harbor, name)

    assert error_of(answer) == (
        400, "BAD_REQUEST", "project name is not in lower case or contains illegal characters")


def test_create_refuses_empty_name(harbor: HarborServer) -> None:
    answer = create(harbor, "")

    assert error_of(answer)[:2] == (400, "BAD_REQUEST")
    assert "illegal in length" in error_of(answer)[2]


def test_create_refuses_names_over_255_characters(harbor: HarborServer) -> None:
    answer = create(harbor, "a" * 256)

    assert error_of(answer)[:2] == (422, "UNPROCESSABLE_ENTITY")


def test_create_accepts_255_characters(harbor: HarborServer) -> None:
    assert create(harbor, "a" * 255).status_code == 201


def test_duplicate_create_is_a_conflict(harbor: HarborServer) -> None:
    create(harbor, "team")

    answer = create(harbor, "team")

    assert error_of(answer) == (409, "CONFLICT", "The project named team already exists")


def test_anonymous_create_is_unauthorized(harbor: HarborServer) -> None:
    assert create(harbor, "team", WRONG_PASSWORD).status_code == 401
    assert harbor.project("team") is None


def test_project_robot_cannot_create(harbor: HarborServer) -> None:
    robot = harbor.add_project_robot("library")

    answer = create(harbor, "team", robot)

    assert error_of(answer) == (403, "FORBIDDEN", "Only system level robot can create project")


def test_adminonly_refuses_users_and_robots(harbor: HarborServer) -> None:
    harbor.state.creation_restriction = "adminonly"

    user = create(harbor, "team", USER)
    robot = create(harbor, "team", SYSTEM_ROBOT)
    admin = create(harbor, "team", ADMIN)

    assert error_of(user) == (403, "FORBIDDEN", "Only system admin can create project")
    assert error_of(robot)[0] == 403
    assert admin.status_code == 201


def test_user_creates_when_everyone_may(harbor: HarborServer) -> None:
    answer = create(harbor, "team", USER)

    assert answer.status_code == 201
    assert harbor.project("team").owner.name == "dev"


def test_robot_created_project_is_owned_by_admin(harbor: HarborServer) -> None:
    create(harbor, "team", SYSTEM_ROBOT)

    assert harbor.project("team").owner.name == "admin"


def test_new_project_metadata_has_only_public(harbor: HarborServer) -> None:
    create(harbor, "team")

    project = call(harbor, "GET", f"{API}/projects/team",
                   headers={"X-Is-Resource-Name": "true"}).json()

    assert project["metadata"] == {"public": "false"}
    assert project["repo_count"] == 0
    assert "registry_id" not in project


def test_json_boolean_metadata_is_refused(harbor: HarborServer) -> None:
    answer = create(harbor, "team", metadata={"public": True})

    assert answer.status_code == 422
    assert harbor.project("team") is None


def test_public_must_be_true_or_false(harbor: HarborServer) -> None:
    answer = create(harbor, "team", metadata={"public": "yes"})

    assert error_of(answer) == (
        400, "BAD_REQUEST", "metadata.public should only be 'true' or 'false', but got: 'yes'")


def test_top_level_public_is_used_when_metadata_lacks_it(harbor: HarborServer) -> None:
    create(harbor, "team", public=True)

    assert harbor.project("team").metadata["public"] == "true"


def test_proxy_only_metadata_is_dropped_on_normal_projects(harbor: HarborServer) -> None:
    create(harbor, "team", metadata={"proxy_speed_kb": "100", "auto_scan": "true"})

    assert harbor.project("team").metadata == {"public": "false", "auto_scan": "true"}


# -- update, delete -------------------------------------------------------------------------


def test_update_merges_metadata(harbor: HarborServer) -> None:
    create(harbor, "team", metadata={"auto_scan": "true"})

    answer = call(harbor, "PUT", f"{API}/projects/team", headers={"X-Is-Resource-Name": "true"},
                  json={"metadata": {"severity": "HIGH"}})

    assert answer.status_code == 200
    assert harbor.project("team").metadata == {
        "public": "false", "auto_scan": "true", "severity": "high"}


def test_update_by_non_member_is_forbidden(harbor: HarborServer) -> None:
    create(harbor, "team")

    answer = call(harbor, "PUT", f"{API}/projects/team", USER,
                  headers={"X-Is-Resource-Name": "true"}, json={"metadata": {"public": "true"}})

    assert answer.status_code == 403
    assert harbor.project("team").metadata["public"] == "false"


def test_update_ignores_storage_limit(harbor: HarborServer) -> None:
    create(harbor, "team", storage_limit=1024)

    call(harbor, "PUT", f"{API}/projects/team", headers={"X-Is-Resource-Name": "true"},
         json={"storage_limit": 2048, "metadata": {}})

    assert harbor.quota("team").hard == 1024


def test_update_refuses_allowlist_of_another_project(harbor: HarborServer) -> None:
    create(harbor, "team")
    project_id = harbor.project("team").project_id

    answer = call(harbor, "PUT", f"{API}/projects/team", headers={"X-Is-Resource-Name": "true"},
                  json={"cve_allowlist": {"project_id": project_id + 5, "items": []}})

    assert answer.status_code == 400
    assert f"must be {project_id}" in error_of(answer)[2]


def test_delete_refuses_project_with_repositories(harbor: HarborServer) -> None:
    harbor.add_project("team")
    harbor.add_repository("team", "app")

    answer = call(harbor, "DELETE", f"{API}/projects/team",
                  headers={"X-Is-Resource-Name": "true"})

    assert error_of(answer) == (
        412, "PRECONDITION", "the project contains repositories, can not be deleted")
    assert harbor.project("team") is not None


def test_delete_removes_project_quota_and_robots(harbor: HarborServer) -> None:
    project = harbor.add_project("team")
    robot = harbor.add_project_robot("team")

    answer = call(harbor, "DELETE", f"{API}/projects/team",
                  headers={"X-Is-Resource-Name": "true"})
    quotas = call(harbor, "GET", f"{API}/quotas", params={"reference_id": project.project_id})

    assert answer.status_code == 200
    assert harbor.project("team") is None
    assert quotas.json() == []
    assert robot.name not in harbor.state.accounts


def test_delete_missing_project_is_404_for_admin(harbor: HarborServer) -> None:
    answer = call(harbor, "DELETE", f"{API}/projects/ghost",
                  headers={"X-Is-Resource-Name": "true"})

    assert answer.status_code == 404


def test_deletable_reports_repositories(harbor: HarborServer) -> None:
    harbor.add_project("team")
    harbor.add_repository("team", "app")

    answer = call(harbor, "GET", f"{API}/projects/team/_deletable",
                  headers={"X-Is-Resource-Name": "true"}).json()

    assert answer["deletable"] is False


def test_nested_repository_is_deleted_with_double_encoding(harbor: HarborServer) -> None:
    harbor.add_project("team")
    harbor.add_repository("team", "tools/app")

    answer = call(harbor, "DELETE", f"{API}/projects/team/repositories/tools%252Fapp",
                  headers={"X-Is-Resource-Name": "true"})

    assert answer.status_code == 200
    assert harbor.project("team").repositories == {}


# -- read-only mode, CSRF, envelope, paging -------------------------------------------------


def test_read_only_mode_refuses_writes(harbor: HarborServer) -> None:
    harbor.state.read_only = True

    answer = create(harbor, "team")
    listing = call(harbor, "GET", f"{API}/projects")

    assert error_of(answer) == (
        403, "DENIED", "The system is in read only mode. Any modification is prohibited.")
    assert listing.status_code == 200
    assert call(harbor, "GET", f"{API}/systeminfo").json()["read_only"] is True


def test_every_response_sets_a_session_cookie(harbor: HarborServer) -> None:
    answer = call(harbor, "GET", f"{API}/ping", ANONYMOUS)

    assert answer.cookies.get("sid")


def test_write_with_session_cookie_is_a_csrf_failure(harbor: HarborServer) -> None:
    answer = call(harbor, "POST", f"{API}/projects", json={"project_name": "team"},
                  cookies={"sid": "0123"})

    assert error_of(answer) == (403, "FORBIDDEN", "CSRF token invalid")
    assert harbor.requests[-1].cookie is True


def test_session_that_keeps_cookies_fails_its_second_write(harbor: HarborServer) -> None:
    with requests.Session() as session:
        session.auth = (ADMIN.name, ADMIN.password)
        first = session.post(f"{harbor.url}{API}/projects", json={"project_name": "one"})
        second = session.post(f"{harbor.url}{API}/projects", json={"project_name": "two"})

    assert (first.status_code, second.status_code) == (201, 403)


def test_errors_use_envelope_and_echo_request_id(harbor: HarborServer) -> None:
    answer = call(harbor, "POST", f"{API}/projects", json={"project_name": "Bad"},
                  headers={"X-Request-Id": "trace-42"})

    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.headers["X-Request-Id"] == "trace-42"
    assert set(answer.json()) == {"errors"}


def test_request_id_is_generated_when_absent(harbor: HarborServer) -> None:
    answer = call(harbor, "GET", f"{API}/ping", ANONYMOUS)

    assert len(answer.headers["X-Request-Id"]) == 32


def test_paging_sets_total_count_and_link(harbor: HarborServer) -> None:
    for number in range(12):
        harbor.add_project(f"p{number:02d}")

    first = call(harbor, "GET", f"{API}/projects", params={"page": 1, "page_size": 5})
    last = call(harbor, "GET", f"{API}/projects", params={"page": 3, "page_size": 5})

    assert first.headers["X-Total-Count"] == "13"
    assert len(first.json()) == 5
    assert 'rel="next"' in first.headers["Link"]
    assert len(last.json()) == 3
    assert 'rel="next"' not in last.headers["Link"] and 'rel="prev"' in last.headers["Link"]


def test_page_size_over_100_is_unprocessable(harbor: HarborServer) -> None:
    answer = call(harbor, "GET", f"{API}/projects", params={"page_size": 101})

    assert error_of(answer)[:2] == (422, "UNPROCESSABLE_ENTITY")


def test_injected_fault_answers_internal_server_error(harbor: HarborServer) -> None:
    harbor.fail_next("POST", r"/projects$", 500)

    failed = create(harbor, "team")
    retried = create(harbor, "team")

    assert error_of(failed) == (500, "UNKNOWN", "internal server error")
    assert retried.status_code == 201


def test_request_log_holds_no_credentials(harbor: HarborServer) -> None:
    create(harbor, "team")
    call(harbor, "GET", f"{API}/projects", WRONG_PASSWORD)

    logged = repr(harbor.requests)

    assert "admin" in logged
    assert ADMIN.password not in logged and WRONG_PASSWORD.password not in logged


# -- quotas and registry endpoints ----------------------------------------------------------


def test_storage_limit_applies_for_admins_only(harbor: HarborServer) -> None:
    create(harbor, "mine", storage_limit=1024)
    create(harbor, "theirs", USER, storage_limit=1024)

    assert harbor.quota("mine").hard == 1024
    assert harbor.quota("theirs").hard == -1


@pytest.mark.parametrize(("limit", "message"), [
    pytest.param(-5, "invalid non-positive value for quota limit, value=-5", id="negative"),
    pytest.param(1024 ** 5 + 1, "exceeded 1024TB", id="too-large"),
])
def test_storage_limit_out_of_range_is_refused(
        harbor: HarborServer, limit: int, message: str) -> None:
    answer = create(harbor, "team", storage_limit=limit)

    assert error_of(answer)[0] == 400
    assert message in error_of(answer)[2]


def test_quota_is_found_by_project_reference(harbor: HarborServer) -> None:
    project = harbor.add_project("team", storage_limit=2048)

    quotas = call(harbor, "GET", f"{API}/quotas",
                  params={"reference": "project", "reference_id": project.project_id}).json()

    assert [(q["ref"]["name"], q["hard"]["storage"]) for q in quotas] == [("team", 2048)]


def test_quota_update_sets_hard_storage(harbor: HarborServer) -> None:
    harbor.add_project("team")
    quota_id = harbor.quota("team").quota_id

    answer = call(harbor, "PUT", f"{API}/quotas/{quota_id}", json={"hard": {"storage": 4096}})

    assert answer.status_code == 200
    assert harbor.quota("team").hard == 4096


def test_quota_update_refuses_unknown_resource(harbor: HarborServer) -> None:
    harbor.add_project("team")
    quota_id = harbor.quota("team").quota_id

    answer = call(harbor, "PUT", f"{API}/quotas/{quota_id}", json={"hard": {"count": 4}})

    assert error_of(answer)[:2] == (400, "BAD_REQUEST")


def test_quotas_are_for_admins_only(harbor: HarborServer) -> None:
    harbor.add_project("team", owner=USER)
    quota_id = harbor.quota("team").quota_id

    listing = call(harbor, "GET", f"{API}/quotas", USER)
    update = call(harbor, "PUT", f"{API}/quotas/{quota_id}", USER,
                  json={"hard": {"storage": 1}})

    assert (listing.status_code, update.status_code) == (403, 403)


def test_summary_shows_quota_to_members(harbor: HarborServer) -> None:
    harbor.add_project("team", owner=USER, storage_limit=4096)

    summary = call(harbor, "GET", f"{API}/projects/team/summary", USER,
                   headers={"X-Is-Resource-Name": "true"}).json()

    assert summary["quota"]["hard"]["storage"] == 4096


def test_proxy_cache_project_links_registry(harbor: HarborServer) -> None:
    created = call(harbor, "POST", f"{API}/registries",
                   json={"name": "hub", "url": "https://hub.example", "type": "docker-hub"})
    registry_id = int(created.headers["Location"].rsplit("/", 1)[1])

    answer = create(harbor, "cache", registry_id=registry_id,
                    metadata={"enable_content_trust": "true", "proxy_speed_kb": "10"})
    project = call(harbor, "GET", f"{API}/projects/cache",
                   headers={"X-Is-Resource-Name": "true"}).json()

    assert answer.status_code == 201
    assert project["registry_id"] == registry_id
    assert project["metadata"] == {"public": "false", "proxy_speed_kb": "10"}


def test_proxy_cache_project_needs_admin(harbor: HarborServer) -> None:
    registry = harbor.add_registry("hub", "https://hub.example", "docker-hub")

    answer = create(harbor, "cache", USER, registry_id=registry.registry_id)

    assert error_of(answer) == (
        403, "FORBIDDEN", "Only system admin can create proxy cache project")


def test_proxy_cache_refuses_unsupported_registry_type(harbor: HarborServer) -> None:
    registry = harbor.add_registry("charts", "https://charts.example", "helm-hub")

    answer = create(harbor, "cache", registry_id=registry.registry_id)

    assert error_of(answer) == (400, "BAD_REQUEST", "unsupported registry type helm-hub")


def test_registry_names_filter_exactly_with_q(harbor: HarborServer) -> None:
    harbor.add_registry("hub", "https://hub.example")
    harbor.add_registry("hub-mirror", "https://mirror.example")

    exact = call(harbor, "GET", f"{API}/registries", params={"q": "name=hub"}).json()

    assert [r["name"] for r in exact] == ["hub"]


# -- /v2/ through to the registry -----------------------------------------------------------


def test_push_through_harbor_lands_in_registry(
        harbor: HarborServer, registry: RegistryServer, image: Any) -> None:
    harbor.add_project("team")

    push(harbor, image, "team/hello:v1")
    upstream = requests.get(f"{registry.url}/v2/team/hello/tags/list", timeout=10).json()

    assert upstream["tags"] == ["v1"]
    assert harbor.project("team").repositories == {"team/hello": {"v1"}}


def test_push_into_missing_project_is_401_project_not_found(harbor: HarborServer) -> None:
    answer = call(harbor, "POST", "/v2/ghost/app/blobs/uploads/")

    assert error_of(answer) == (401, "UNAUTHORIZED", "project ghost not found")


def test_skopeo_push_into_missing_project_fails(harbor: HarborServer, image: Any) -> None:
    with pytest.raises(Exception, match="unauthorized"):
        push(harbor, image, "ghost/hello:v1")


def test_push_by_non_member_is_unauthorized(harbor: HarborServer) -> None:
    harbor.add_project("team")

    answer = call(harbor, "POST", "/v2/team/app/blobs/uploads/", USER)

    assert error_of(answer) == (
        401, "UNAUTHORIZED", "unauthorized to access repository: team/app, action: push")
    assert answer.headers["Www-Authenticate"] == 'Basic realm="harbor"'


def test_project_robot_pushes_into_its_project(harbor: HarborServer, image: Any) -> None:
    harbor.add_project("team")
    robot = harbor.add_project_robot("team")

    push(harbor, image, "team/hello:v1", robot)

    assert "team/hello" in harbor.project("team").repositories


def test_developer_member_pushes(harbor: HarborServer, image: Any) -> None:
    harbor.add_project("team")
    harbor.add_member("team", USER)

    push(harbor, image, "team/hello:v1", USER)

    assert "team/hello" in harbor.project("team").repositories


def test_anonymous_pulls_public_but_not_private(harbor: HarborServer, image: Any) -> None:
    harbor.add_project("open", public=True)
    harbor.add_project("closed")
    push(harbor, image, "open/hello:v1")
    push(harbor, image, "closed/hello:v1")

    public = run_skopeo(["inspect", "--raw", "--tls-verify=false", "--no-creds",
                         f"docker://{harbor.host}/open/hello:v1"])

    assert json.loads(public)["manifests"]
    with pytest.raises(Exception, match="unauthorized to access repository: closed/hello"):
        run_skopeo(["inspect", "--raw", "--tls-verify=false", "--no-creds",
                    f"docker://{harbor.host}/closed/hello:v1"])


def test_anonymous_challenge_points_at_token_service(harbor: HarborServer) -> None:
    answer = call(harbor, "GET", "/v2/", ANONYMOUS)

    assert answer.status_code == 401
    assert answer.headers["Www-Authenticate"] == (
        f'Bearer realm="{harbor.url}/service/token",service="harbor-registry"')


def test_head_without_authorization_is_challenged(harbor: HarborServer) -> None:
    answer = call(harbor, "HEAD", "/v2/library/app/manifests/v1", ANONYMOUS)

    assert answer.status_code == 401
    assert 'scope="repository:library/app:pull"' in answer.headers["Www-Authenticate"]


def test_token_service_refuses_wrong_password(harbor: HarborServer) -> None:
    answer = call(harbor, "GET", "/service/token", WRONG_PASSWORD,
                  params={"service": "harbor-registry", "scope": "repository:library/a:pull"})

    assert answer.status_code == 401


def test_catalog_is_for_admins(harbor: HarborServer) -> None:
    admin = call(harbor, "GET", "/v2/_catalog")
    user = call(harbor, "GET", "/v2/_catalog", USER)

    assert (admin.status_code, user.status_code) == (200, 401)


def test_repeated_accept_headers_reach_registry(harbor: HarborServer, image: Any) -> None:
    harbor.add_project("team")
    push(harbor, image, "team/hello:v1")
    connection = http.client.HTTPConnection(harbor.host.split(":")[0],
                                            int(harbor.host.split(":")[1]), timeout=10)
    connection.putrequest("GET", "/v2/team/hello/manifests/v1")
    token = base64.b64encode(f"{ADMIN.name}:{ADMIN.password}".encode()).decode()
    connection.putheader("Authorization", f"Basic {token}")
    # distribution answers 404 for an OCI index unless an Accept line names its type.
    connection.putheader("Accept", "application/vnd.docker.distribution.manifest.v2+json")
    connection.putheader("Accept", "application/vnd.oci.image.index.v1+json")
    connection.endheaders()
    answer = connection.getresponse()
    body = answer.read()
    connection.close()

    assert answer.status == 200
    assert json.loads(body)["mediaType"] == "application/vnd.oci.image.index.v1+json"


def test_upload_location_points_back_at_harbor(harbor: HarborServer) -> None:
    harbor.add_project("team")

    answer = call(harbor, "POST", "/v2/team/app/blobs/uploads/")

    assert answer.status_code == 202
    assert answer.headers["Location"].startswith(f"{harbor.url}/v2/team/app/blobs/uploads/")


def test_chunked_upload_streams_through(harbor: HarborServer) -> None:
    harbor.add_project("team")
    started = call(harbor, "POST", "/v2/team/app/blobs/uploads/")
    blob = os.urandom(300_000)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(blob), 65536):
            yield blob[start:start + 65536]

    patched = call(harbor, "PATCH", started.headers["Location"], data=pieces(),
                   headers={"Content-Type": "application/octet-stream"})

    assert patched.status_code == 202
    assert patched.headers["Range"] == f"0-{len(blob) - 1}"


def test_read_only_mode_refuses_pushes(harbor: HarborServer) -> None:
    harbor.add_project("team")
    harbor.state.read_only = True

    answer = call(harbor, "POST", "/v2/team/app/blobs/uploads/")

    assert error_of(answer)[:2] == (403, "DENIED")


def test_repository_delete_removes_upstream_tags(
        harbor: HarborServer, registry: RegistryServer, image: Any) -> None:
    harbor.add_project("team")
    push(harbor, image, "team/gone:v1")

    call(harbor, "DELETE", f"{API}/projects/team/repositories/gone",
         headers={"X-Is-Resource-Name": "true"})
    upstream = requests.get(f"{registry.url}/v2/team/gone/manifests/v1", timeout=10,
                            headers={"Accept": "application/vnd.oci.image.index.v1+json"})

    assert upstream.status_code == 404
    assert call(harbor, "DELETE", f"{API}/projects/team",
                headers={"X-Is-Resource-Name": "true"}).status_code == 200


# -- HTTPS and running as a process ---------------------------------------------------------


def test_https_listener_serves_with_test_ca(tmp_path: Path) -> None:
    certs = generate_certs(tmp_path)

    with HarborServer(cert=str(certs.server_cert), key=str(certs.server_key)) as server:
        answer = requests.get(f"{server.url}{API}/ping", verify=str(certs.ca_cert), timeout=10)

    assert server.url.startswith("https://")
    assert answer.text == "Pong"


def test_request_log_file_gets_one_line_per_request(
        registry: RegistryServer, tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"

    with HarborServer(registry.url, record_path=log) as server:
        create(server, "team")

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", f"{API}/projects", 201)]


def test_start_harbor_runs_until_stopped(tmp_path: Path) -> None:
    state = start_harbor(tmp_path, "harbor")
    try:
        answer = requests.get(f"{state['url']}{API}/ping", timeout=10)
        variables = (tmp_path / "harbor.yml").read_text()
    finally:
        os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(state["registry_pid"]):
        time.sleep(0.05)

    assert answer.text == "Pong"
    assert f'harbor_url: "{state["url"]}"' in variables
    assert not _alive(state["registry_pid"])


def _alive(pid: int) -> bool:
    result = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                            text=True, check=False)
    return result.returncode == 0 and not result.stdout.strip().startswith("Z")


def test_other_user_sees_only_public_projects(harbor: HarborServer) -> None:
    harbor.add_project("team", owner=USER)

    names = [p["name"] for p in call(harbor, "GET", f"{API}/projects", OTHER_USER).json()]

    assert names == ["library"]
