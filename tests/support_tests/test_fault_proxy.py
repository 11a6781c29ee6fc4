# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fault proxy in front of a real docker-registry: forwarding, every fault, the log."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

import pytest
import requests

from tests.support import RegistryServer
from tests.support.fault_proxy import FaultProxy, FaultProxyError, Rule, stable_path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def proxy_for() -> Iterator[Callable[..., FaultProxy]]:
    started: list = []

    def start(upstream: str | None, **options) -> FaultProxy:
        proxy = FaultProxy(upstream, **options).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def hello(registry_plain: RegistryServer, seed) -> dict:
    """The layer of library/hello:v2 (4 KiB of gzip) and its bytes as the registry serves them."""
    layer = seed(registry_plain)["library/hello:v2"]["blobs"][0]
    url = f"{registry_plain.url}/v2/library/hello/blobs/{layer}"
    return {"digest": layer, "path": f"/v2/library/hello/blobs/{layer}",
            "data": requests.get(url, timeout=10).content}


def get(proxy: FaultProxy, path: str, **kwargs) -> requests.Response:
    return requests.get(proxy.url + path, timeout=10, **kwargs)


def raw_get(proxy: FaultProxy, path: str, headers: list) -> http.client.HTTPResponse:
    """A GET whose header lines go out exactly as listed, repeated names included."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    for name, value in headers:
        connection.putheader(name, value)
    connection.endheaders()
    return connection.getresponse()


# -- forwarding ------------------------------------------------------------------------------


def test_proxy_forwards_every_accept_line_when_client_repeats_the_header(
        registry_plain, seed, proxy_for):
    seed(registry_plain)
    proxy = proxy_for(registry_plain.url)

    response = raw_get(proxy, "/v2/library/hello/manifests/oci",
                       [("Accept", DOCKER_MANIFEST), ("Accept", OCI_MANIFEST)])

    # distribution answers 404 unless it sees the OCI type, which only the second line has.
    assert response.status == 200
    assert response.getheader("Content-Type") == OCI_MANIFEST
    assert proxy.requests[0].accept == [DOCKER_MANIFEST, OCI_MANIFEST]


def test_proxy_streams_blob_unchanged_when_no_rule_fires(proxy_for, registry_plain, hello):
    proxy = proxy_for(registry_plain.url)

    response = get(proxy, hello["path"])

    assert hashlib.sha256(response.content).hexdigest() == hello["digest"].split(":")[1]
    # The proxy counts the last block just after the client has it; a wrong count times out.
    proxy.wait_for(lambda log: log[0].bytes_sent == len(hello["data"]), timeout=5)


def test_proxy_rewrites_upload_location_when_upstream_names_itself(registry_plain, proxy_for):
    proxy = proxy_for(registry_plain.url)

    started = requests.post(f"{proxy.url}/v2/proxy-test/upload/blobs/uploads/", timeout=10)
    data = b"through the proxy"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    done = requests.put(f"{started.headers['Location']}&digest={digest}", data=data, timeout=10)

    assert started.headers["Location"].startswith(f"{proxy.url}/v2/proxy-test/upload/")
    assert done.status_code == 201
    assert [record.method for record in proxy.requests] == ["POST", "PUT"]


def test_proxy_streams_chunked_upload_when_client_sends_no_length(registry_plain, proxy_for):
    proxy = proxy_for(registry_plain.url)
    pieces = [b"first piece, ", b"second piece"]
    digest = "sha256:" + hashlib.sha256(b"".join(pieces)).hexdigest()
    started = requests.post(f"{proxy.url}/v2/proxy-test/chunked/blobs/uploads/", timeout=10)

    done = requests.put(f"{started.headers['Location']}&digest={digest}", data=iter(pieces),
                        timeout=10)

    assert done.status_code == 201


# -- faults on response bodies ------------------------------------------------------------------


def test_proxy_corrupts_exactly_one_byte_at_the_offset(registry_plain, proxy_for, hello):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("corrupt", path="/blobs/", offset=100)

    served = get(proxy, hello["path"]).content

    differing = [i for i, (a, b) in enumerate(zip(served, hello["data"])) if a != b]
    assert len(served) == len(hello["data"]) and differing == [100]
    assert proxy.requests[0].fault == "corrupt"


@pytest.mark.parametrize("action, error", [
    ("truncate", "IncompleteRead"),
    ("reset", "Connection reset by peer"),
])
def test_proxy_breaks_body_after_offset_bytes(registry_plain, proxy_for, hello, action, error):
    proxy = proxy_for(registry_plain.url)
    proxy.arm(action, path="/blobs/", offset=1000, first_n=1)

    with pytest.raises(requests.exceptions.ChunkedEncodingError, match=error):
        get(proxy, hello["path"]).content  # noqa: B018 - reading is the point

    assert get(proxy, hello["path"]).content == hello["data"]
    assert [(r.fault, r.bytes_sent) for r in proxy.requests] == \
        [(action, 1000), (None, len(hello["data"]))]


def test_proxy_truncated_body_keeps_the_bytes_before_the_cut(registry_plain, proxy_for, hello):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("truncate", path="/blobs/", offset=1000)

    response = raw_get(proxy, hello["path"], [])

    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert caught.value.partial == hello["data"][:1000]


@pytest.mark.parametrize("delta", [10, -10])
def test_proxy_resize_serves_body_of_matching_length(registry_plain, proxy_for, hello, delta):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("resize", path="/blobs/", size_delta=delta)

    response = get(proxy, hello["path"])

    assert int(response.headers["Content-Length"]) == len(hello["data"]) + delta
    assert len(response.content) == len(hello["data"]) + delta
    assert response.content[:len(hello["data"]) - 10] == hello["data"][:-10]


def test_proxy_stalls_after_headers_until_the_client_times_out(
        registry_plain, proxy_for, hello):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("stall", path="/blobs/", delay=30)
    started = time.monotonic()

    response = requests.get(proxy.url + hello["path"], stream=True, timeout=(5, 0.5))
    with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
        response.content  # noqa: B018 - reading is the point

    assert response.status_code == 200
    assert time.monotonic() - started < 10


def test_proxy_delay_sends_body_in_slow_pieces(registry_plain, proxy_for, hello):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("delay", path="/blobs/", delay=0.1, chunk=1024)
    started = time.monotonic()

    data = get(proxy, hello["path"]).content

    pieces = -(-len(hello["data"]) // 1024)
    assert data == hello["data"]
    assert time.monotonic() - started >= 0.1 * pieces


def test_proxy_hold_keeps_request_until_released(registry_plain, proxy_for, hello):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("hold", path="/blobs/")
    answers: list = []

    worker = threading.Thread(target=lambda: answers.append(get(proxy, hello["path"])))
    worker.start()
    proxy.wait_for(lambda log: any(r.fault == "hold" for r in log))
    time.sleep(0.3)
    waiting = not answers
    proxy.release()
    worker.join(10)

    assert waiting
    assert answers[0].content == hello["data"]


# -- answers the proxy makes up ----------------------------------------------------------------


def test_proxy_answers_429_with_retry_after_for_the_first_n_requests(
        registry_plain, seed, proxy_for):
    seed(registry_plain)
    proxy = proxy_for(registry_plain.url)
    proxy.arm("status", status=429, retry_after="7", path="/manifests/", first_n=2)

    answers = [get(proxy, "/v2/library/hello/manifests/v2",
                   headers={"Accept": DOCKER_MANIFEST}) for _attempt in range(3)]

    assert [answer.status_code for answer in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[0].json()["errors"][0]["code"] == "TOOMANYREQUESTS"


def test_proxy_rewrites_and_drops_response_headers(registry_plain, proxy_for, hello):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("header", path="/blobs/",
              headers={"Docker-Content-Digest": "sha256:" + "0" * 64, "Content-Length": None})

    response = get(proxy, hello["path"])

    assert response.headers["Docker-Content-Digest"] == "sha256:" + "0" * 64
    assert "Content-Length" not in response.headers
    assert response.content == hello["data"]


def test_proxy_serves_an_html_page_for_every_path(registry_plain, proxy_for):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("html")

    answers = [get(proxy, path) for path in ("/v2/", "/v2/x/manifests/1", "/anything")]

    assert {answer.status_code for answer in answers} == {200}
    assert all(answer.headers["Content-Type"].startswith("text/html") for answer in answers)


def test_proxy_respond_answers_canned_status_headers_and_body(registry_plain, proxy_for):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("respond", path="/manifests/", status=200, body='{"schemaVersion": 1}',
              headers={"Content-Type": "application/json"})

    response = get(proxy, "/v2/anything/manifests/1")

    assert response.json() == {"schemaVersion": 1}


def test_redirect_target_sees_no_credentials_the_client_sent_to_the_proxy(
        registry_plain, proxy_for, hello):
    trap = proxy_for(registry_plain.url, name="trap")
    proxy = proxy_for(registry_plain.url)
    proxy.arm("redirect", path="/blobs/", location=trap.url)

    response = get(proxy, hello["path"], auth=("hangar", "Sup3r-Secret"))

    assert response.content == hello["data"]
    assert [r.status for r in proxy.requests] == [307]
    assert proxy.requests[0].authorization and not trap.requests[0].authorization


def test_proxy_with_upstream_authorization_authenticates_itself(registry_basic, seed, proxy_for):
    seed(registry_basic)
    pair = f"{registry_basic.username}:{registry_basic.password}"
    signed = proxy_for(registry_basic.url, ca_path=str(registry_basic.ca_path),
                       upstream_authorization="Basic " + base64.b64encode(pair.encode()).decode())

    response = get(signed, "/v2/library/hello/manifests/v2", headers={"Accept": DOCKER_MANIFEST})

    assert response.status_code == 200
    assert not signed.requests[0].authorization


# -- faults on request bodies ------------------------------------------------------------------


def start_upload(proxy: FaultProxy, repository: str) -> str:
    return requests.post(f"{proxy.url}/v2/{repository}/blobs/uploads/",
                         timeout=10).headers["Location"]


def test_proxy_resets_upload_before_the_upstream_sees_it(registry_plain, proxy_for):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("reset", method="PUT", path="/blobs/uploads/", direction="request")
    location = start_upload(proxy, "proxy-test/reset")
    mark = registry_plain.log_mark()

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.put(f"{location}&digest=sha256:{'1' * 64}", data=b"x" * 100_000, timeout=10)

    assert [e.method for e in registry_plain.requests_since(mark)] == []


def test_proxy_corrupts_upload_so_registry_rejects_its_digest(registry_plain, proxy_for):
    proxy = proxy_for(registry_plain.url)
    proxy.arm("corrupt", method="PUT", path="/blobs/uploads/", direction="request")
    data = b"upload to corrupt"
    location = start_upload(proxy, "proxy-test/corrupt")

    done = requests.put(f"{location}&digest=sha256:{hashlib.sha256(data).hexdigest()}",
                        data=data, timeout=10)

    assert done.status_code == 400
    assert done.json()["errors"][0]["code"] == "DIGEST_INVALID"


# -- counters, control endpoint, log -------------------------------------------------------------


def test_rule_counters_fire_on_the_matches_they_name():
    def fired(**counters) -> list:
        rule = Rule("status", **counters)
        return [n for n in range(1, 9) if rule.fires("GET", "/v2/x", "")]

    assert fired(first_n=2) == [1, 2]
    assert fired(after_n=6) == [7, 8]
    assert fired(every_n=3) == [3, 6]
    assert fired(after_n=2, every_n=2) == [4, 6, 8]


def test_rule_probability_draws_the_same_requests_in_any_order():
    paths = [f"/v2/x/blobs/sha256:{n:064x}" for n in range(200)]

    def drawn(order: list) -> set:
        rule = Rule("reset", probability=0.1, seed=3)
        return {path for path in order if rule.fires("GET", path, "")}

    forward = drawn(paths)
    assert forward == drawn(list(reversed(paths)))
    assert 5 <= len(forward) <= 40
    assert forward != {p for p in paths if Rule("reset", probability=0.1, seed=4).fires(
        "GET", p, "")}


def test_stable_path_names_upload_by_digest_not_session():
    query = "_state=abc&digest=sha256%3A" + "a" * 64

    assert stable_path("/v2/x/blobs/uploads/1f2e-3d4c", query) == \
        "/v2/x/blobs/uploads/sha256:" + "a" * 64


def test_rule_refuses_unknown_action():
    with pytest.raises(FaultProxyError, match="unknown fault action 'explode'"):
        Rule("explode")


def test_control_endpoint_arms_lists_and_clears_rules(registry_plain, seed, proxy_for):
    seed(registry_plain)
    proxy = proxy_for(registry_plain.url)

    armed = requests.post(f"{proxy.url}/__fault", json={"action": "status", "status": 502,
                                                        "path": "/manifests/"}, timeout=10)
    failed = get(proxy, "/v2/library/hello/manifests/v2")
    shown = requests.get(f"{proxy.url}/__fault", timeout=10).json()
    requests.delete(f"{proxy.url}/__fault", timeout=10)
    healed = get(proxy, "/v2/library/hello/manifests/v2", headers={"Accept": DOCKER_MANIFEST})

    assert armed.status_code == 201 and failed.status_code == 502
    assert shown["rules"][0]["fired"] == 1 and shown["log"][0]["status"] == 502
    assert healed.status_code == 200
    assert requests.post(f"{proxy.url}/__fault", json={"action": "x"}, timeout=10) \
        .status_code == 400


def test_log_records_authorization_presence_never_its_value(registry_plain, proxy_for):
    proxy = proxy_for(registry_plain.url)
    secret = "Bearer eyJhbGciOi.s3cr3t-token-value"

    get(proxy, "/v2/", headers={"Authorization": secret})
    shown = requests.get(f"{proxy.url}/__fault", timeout=10).text

    assert proxy.requests[0].authorization is True
    assert "s3cr3t" not in json.dumps(asdict(proxy.requests[0])) + shown


def test_proxy_without_upstream_records_and_answers_404(proxy_for):
    trap = proxy_for(None, name="trap")

    response = get(trap, "/layers/foreign.tar.gz", auth=("user", "pass"))

    assert response.status_code == 404
    assert trap.requests[0].path == "/layers/foreign.tar.gz" and trap.requests[0].authorization
