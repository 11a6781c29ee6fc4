# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fault-injecting HTTP proxy for loopback tests, standard library only.

:class:`FaultProxy` listens on ``127.0.0.1:<free port>`` in front of one upstream (a
``docker-registry`` or the fake Harbor) and forwards every request unchanged: repeated headers
such as several ``Accept`` lines stay separate, bodies stream both ways, and an upstream
``Location`` that names the upstream is rewritten to name the proxy, so upload sessions come
back through it.

Faults are armed per test as :class:`Rule` objects, from Python (:meth:`FaultProxy.arm`) or over
HTTP (``POST /__fault`` with the rule as JSON, ``DELETE /__fault`` clears, ``GET /__fault`` shows
rules and log). A rule matches on method and path (regular expressions) and fires according to
its counters; the first rule that fires handles the request. Actions:

``corrupt``   flip one byte of the response body (or, with ``direction="request"``, of the body
              sent upstream) at ``offset`` (default: the middle)
``truncate``  send ``offset`` bytes of the body (default half), then shut the socket down
``reset``     send ``offset`` bytes (default half), then close with ``SO_LINGER`` 0, so the client
              gets a TCP RST; with ``direction="request"`` read that much of the request body
              and reset before anything reaches the upstream
``resize``    serve the body ``size_delta`` bytes longer (zero padded) or shorter, with a
              ``Content-Length`` that matches the new body
``stall``     send the headers, then wait ``delay`` seconds before the body
``delay``     send the body in ``chunk`` byte pieces, ``delay`` seconds apart
``hold``      keep the request until :meth:`FaultProxy.release` (or ``delay`` seconds) before
              forwarding it, so a test can act while a transfer is in flight
``status``    answer ``status`` (default 503) with a registry-style JSON error and, when given,
              ``Retry-After``; nothing reaches the upstream
``header``    set (or, with value ``None``, drop) response headers from ``headers``
``redirect``  answer 307 to ``location`` + the request path and query
``respond``   answer ``status`` with ``headers`` and ``body``, nothing reaches the upstream
``html``      answer 200 with an HTML page, like a captive portal or a web server

Counters, all optional and combined with AND: ``first_n`` (fires on the first n matches),
``after_n`` (only after n matches), ``every_n`` (every n-th match) and ``probability`` with
``seed``. The random draw hashes the seed, the method, the path (upload session ids replaced by
the blob digest) and how often that path was seen, so the same requests get the same faults in
whatever order parallel workers send them.

The request log keeps method, path, query, the ``Range`` and ``Accept`` values, status, the
fault applied and whether an ``Authorization`` header was present; the header's value is never
stored. Give ``upstream_authorization`` to make the proxy authenticate to the upstream itself,
as a pre-signed object-store URL would: the test then sees whether the *client* sent
credentials to a host it was redirected to.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import socket
import ssl
import struct
import termios
import threading
import time
from dataclasses import asdict, dataclass, field
from http.client import HTTPConnection, HTTPResponse, HTTPSConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Optional
from urllib.parse import urlsplit

from .ports import LOOPBACK, free_port

ACTIONS = ("corrupt", "truncate", "reset", "resize", "stall", "delay", "hold", "status",
           "header", "redirect", "respond", "html")
CONTROL_PATH = "/__fault"
IO_CHUNK = 64 * 1024
UPSTREAM_TIMEOUT = 60  # seconds; loopback upstreams answer in milliseconds
DEFAULT_DELAY = 1.0  # seconds of a stall or between slowed pieces
DEFAULT_HOLD = 60.0  # seconds a held request waits when nobody releases it
SEND_QUEUE_WAIT = 10.0  # seconds a reset waits for the client to take what was sent
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "upgrade", "transfer-encoding", "host"})
NO_BODY_STATUSES = (204, 304)
UPLOAD_SESSION = re.compile(r"(/blobs/uploads/)[^/?]+")
HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Welcome</title></head>"
             b"<body><h1>Please sign in to continue</h1></body></html>")
STATUS_CODES = {429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNKNOWN", 503: "UNAVAILABLE",
                504: "UNKNOWN"}


class FaultProxyError(Exception):
    """The proxy was given a rule it cannot apply, or could not start."""


@dataclass
class Rule:
    """One armed fault; see the module docstring for the actions and counters."""

    action: str
    method: str = ".*"
    path: str = ".*"
    first_n: Optional[int] = None
    after_n: Optional[int] = None
    every_n: Optional[int] = None
    probability: Optional[float] = None
    seed: int = 0
    direction: str = "response"
    offset: Optional[int] = None
    size_delta: int = 0
    delay: Optional[float] = None
    chunk: int = 1024
    status: int = 503
    retry_after: Optional[str] = None
    headers: dict = field(default_factory=dict)
    body: str = ""
    location: str = ""
    matched: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise FaultProxyError(f"unknown fault action {self.action!r}; use one of {ACTIONS}")
        if self.direction not in ("request", "response"):
            raise FaultProxyError(f"direction must be request or response, not {self.direction}")
        self._seen: dict = {}

    def matches(self, method: str, path: str) -> bool:
        return bool(re.fullmatch(self.method, method, re.IGNORECASE)
                    and re.search(self.path, path))

    def fires(self, method: str, path: str, query: str) -> bool:
        """Count one matching request and tell whether the fault applies to it."""
        self.matched += 1
        count = self.matched
        if self.first_n is not None and count > self.first_n:
            return False
        if self.after_n is not None and count <= self.after_n:
            return False
        if self.every_n is not None and count % self.every_n:
            return False
        if self.probability is not None and not self._draw(method, path, query):
            return False
        self.fired += 1
        return True

    def _draw(self, method: str, path: str, query: str) -> bool:
        key = f"{method} {stable_path(path, query)}"
        occurrence = self._seen[key] = self._seen.get(key, 0) + 1
        material = f"{self.seed}|{key}|{occurrence}".encode()
        value = int.from_bytes(hashlib.sha256(material).digest()[:8], "big") / 2 ** 64
        return value < (self.probability or 0.0)

    def seconds(self, default: float) -> float:
        return default if self.delay is None else self.delay

    def describe(self) -> dict:
        return {key: value for key, value in asdict(self).items() if not key.startswith("_")}


@dataclass
class ProxyRecord:
    """One request as the proxy saw it; credentials are reduced to 'present or not'."""

    method: str
    path: str
    query: str
    authorization: bool
    range: str
    accept: list
    content_type: str
    started: float
    status: Optional[int] = None
    fault: Optional[str] = None
    bytes_sent: int = 0
    finished: bool = False


def stable_path(path: str, query: str) -> str:
    """The path with an upload session id replaced by the blob digest of the request, if any."""
    digest = re.search(r"(?:^|&)digest=([^&]+)", query)
    replacement = r"\1" + (digest.group(1).replace("%3A", ":") if digest else "")
    return UPLOAD_SESSION.sub(replacement, path)


def error_body(status: int, message: str) -> bytes:
    code = STATUS_CODES.get(status, "UNKNOWN")
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple, proxy: "FaultProxy") -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Broken connections are what this server produces on purpose; stay quiet about them.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self.server.proxy.handle(self)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET


class _Exchange:
    """One request passing through the proxy, with the rule that fired for it (if any)."""

    def __init__(self, proxy: "FaultProxy", handler: _Handler, rule: Optional[Rule],
                 record: ProxyRecord) -> None:
        self.proxy = proxy
        self.handler = handler
        self.rule = rule
        self.record = record
        self.path_and_query = handler.path
        self.length = _request_length(handler)

    @property
    def action(self) -> str:
        return self.rule.action if self.rule else ""

    # -- request side ----------------------------------------------------------------------

    def request_chunks(self) -> Iterator[bytes]:
        """The request body as it arrives, de-chunked when the client sent it chunked."""
        rfile = self.handler.rfile
        if self.length is None:
            yield from _read_chunked(rfile)
            return
        left = self.length
        while left > 0:
            chunk = rfile.read(min(IO_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def drain(self) -> None:
        for _chunk in self.request_chunks():
            pass

    def reset_request(self) -> None:
        """Read part of the upload, then reset: the upstream never sees the request."""
        limit = self.rule.offset if self.rule and self.rule.offset is not None else \
            (self.length or 0) // 2
        received = 0
        for chunk in self.request_chunks():
            received += len(chunk)
            if received >= limit:
                break
        self.abort()

    # -- response side ---------------------------------------------------------------------

    def send_head(self, status: int, headers: list) -> None:
        self.handler.send_response_only(status)
        for name, value in headers:
            self.handler.send_header(name, value)
        self.handler.end_headers()
        self.record.status = status

    def send_canned(self, status: int, headers: list, body: bytes) -> None:
        self.drain()
        framed = [(n, v) for n, v in headers if n.lower() != "content-length"]
        self.send_head(status, framed + [("Content-Length", str(len(body)))])
        if self.handler.command != "HEAD":
            self.write(body)

    def write(self, data: bytes) -> None:
        self.handler.wfile.write(data)
        self.record.bytes_sent += len(data)

    def abort(self, linger: bool = True) -> None:
        """End the connection: an RST when ``linger`` is set, else an orderly shutdown."""
        self.handler.close_connection = True
        connection = self.handler.connection
        try:
            if linger:
                # An RST throws away what is still in our send queue; wait until the client
                # has it, so the bytes "sent before the reset" really reached the client.
                _wait_for_send_queue(connection)
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        except OSError:
            pass


class FaultProxy:
    """A loopback HTTP proxy in front of ``upstream`` that injects armed faults."""

    def __init__(self, upstream: Optional[str] = None, *, ca_path: Optional[str] = None,
                 upstream_authorization: Optional[str] = None, name: str = "proxy") -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.ca_path = ca_path
        self.name = name
        self._upstream_authorization = upstream_authorization
        self._rules: list = []
        self._log: list = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._released = threading.Event()
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> "FaultProxy":
        self.port = free_port()
        self._server = _Server((LOOPBACK, self.port), self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- rules and log ---------------------------------------------------------------------

    def arm(self, action: str, **options: Any) -> Rule:
        """Add a rule; later rules are tried after earlier ones."""
        rule = Rule(action, **options)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule and release held requests; the log stays."""
        with self._lock:
            self._rules.clear()
        self.release()

    def release(self) -> None:
        """Let held requests go on; requests held later are held again after ``hold()``."""
        self._released.set()

    def hold(self) -> None:
        """Make ``hold`` rules keep requests again after a :meth:`release`."""
        self._released.clear()

    @property
    def requests(self) -> list:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def wait_for(self, predicate: Callable[[list], bool], timeout: float = 30.0) -> list:
        """Block until ``predicate(log)`` holds; raise FaultProxyError after ``timeout``.

        The predicate is checked on every new request and every 50 ms, since byte counts of
        requests in flight change without a notification.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._log)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FaultProxyError(f"{self.name}: condition not met within {timeout} s")
                self._changed.wait(min(left, 0.05))
            return list(self._log)

    # -- request handling ------------------------------------------------------------------

    def handle(self, handler: _Handler) -> None:
        path, _mark, query = handler.path.partition("?")
        if path == CONTROL_PATH:
            self._control(handler)
            return
        rule = self._rule_for(handler.command, path, query)
        record = self._record(handler, path, query, rule)
        exchange = _Exchange(self, handler, rule, record)
        try:
            self._dispatch(exchange)
        except OSError:
            # The client went away (often because a fault told it to); nothing to answer.
            handler.close_connection = True
        finally:
            self._finish(record)

    def _record(self, handler: _Handler, path: str, query: str,
                rule: Optional[Rule]) -> ProxyRecord:
        headers = handler.headers
        record = ProxyRecord(
            method=handler.command, path=path, query=query,
            authorization="Authorization" in headers, range=headers.get("Range", ""),
            accept=headers.get_all("Accept") or [], content_type=headers.get("Content-Type", ""),
            started=time.monotonic(), fault=rule.action if rule else None)
        with self._changed:
            self._log.append(record)
            self._changed.notify_all()
        return record

    def _finish(self, record: ProxyRecord) -> None:
        with self._changed:
            record.finished = True
            self._changed.notify_all()

    def _rule_for(self, method: str, path: str, query: str) -> Optional[Rule]:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and rule.fires(method, path, query):
                    return rule
        return None

    def _dispatch(self, exchange: _Exchange) -> None:
        action = exchange.action
        local = {"status": self._answer_status, "redirect": self._answer_redirect,
                 "respond": self._answer_canned, "html": self._answer_html}
        if action in local:
            local[action](exchange)
            return
        if action == "reset" and exchange.rule.direction == "request":
            exchange.reset_request()
            return
        if action == "hold":
            self._released.wait(exchange.rule.seconds(DEFAULT_HOLD))
        self._forward(exchange)

    def _answer_status(self, exchange: _Exchange) -> None:
        rule = exchange.rule
        headers = [("Content-Type", "application/json")]
        if rule.retry_after is not None:
            headers.append(("Retry-After", rule.retry_after))
        body = error_body(rule.status, f"injected by {self.name}")
        exchange.send_canned(rule.status, headers, body)

    def _answer_redirect(self, exchange: _Exchange) -> None:
        target = exchange.rule.location.rstrip("/") + exchange.path_and_query
        exchange.send_canned(307, [("Location", target)], b"")

    def _answer_canned(self, exchange: _Exchange) -> None:
        rule = exchange.rule
        exchange.send_canned(rule.status, list(rule.headers.items()), rule.body.encode())

    def _answer_html(self, exchange: _Exchange) -> None:
        exchange.send_canned(200, [("Content-Type", "text/html; charset=utf-8")], HTML_PAGE)

    # -- forwarding ------------------------------------------------------------------------

    def _forward(self, exchange: _Exchange) -> None:
        if self.upstream is None:
            exchange.send_canned(404, [("Content-Type", "text/plain")], b"404 page not found")
            return
        connection = self._connect()
        try:
            self._send_upstream(connection, exchange)
            response = connection.getresponse()
            self._relay(exchange, response)
        finally:
            connection.close()

    def _connect(self) -> HTTPConnection:
        assert self.upstream is not None
        host, port = self.upstream.hostname, self.upstream.port
        if self.upstream.scheme == "https":
            context = ssl.create_default_context(cafile=self.ca_path)
            return HTTPSConnection(host, port, timeout=UPSTREAM_TIMEOUT, context=context)
        return HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)

    def _send_upstream(self, connection: HTTPConnection, exchange: _Exchange) -> None:
        handler = exchange.handler
        # putheader per line keeps repeated headers (several Accept lines) as the client sent them.
        connection.putrequest(handler.command, exchange.path_and_query, skip_host=True,
                              skip_accept_encoding=True)
        connection.putheader("Host", self.upstream.netloc)
        for name, value in handler.headers.items():
            if name.lower() in HOP_BY_HOP:
                continue
            if name.lower() == "authorization" and self._upstream_authorization:
                continue
            connection.putheader(name, value)
        if self._upstream_authorization:
            connection.putheader("Authorization", self._upstream_authorization)
        if exchange.length is None:
            connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        self._send_body(connection, exchange)

    def _send_body(self, connection: HTTPConnection, exchange: _Exchange) -> None:
        rule = exchange.rule
        corrupt_at = _fault_offset(rule, exchange.length or 0) \
            if exchange.action == "corrupt" and rule.direction == "request" else None
        position = 0
        for chunk in exchange.request_chunks():
            if corrupt_at is not None and position <= corrupt_at < position + len(chunk):
                chunk = _flip(chunk, corrupt_at - position)
            position += len(chunk)
            connection.send(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n"
                            if exchange.length is None else chunk)
        if exchange.length is None:
            connection.send(b"0\r\n\r\n")

    def _relay(self, exchange: _Exchange, response: HTTPResponse) -> None:
        handler = exchange.handler
        has_body = handler.command != "HEAD" and response.status not in NO_BODY_STATUSES
        declared = response.getheader("Content-Length")
        if has_body and declared is None:
            # A chunked or read-to-close upstream body is small here (errors); frame it plainly.
            body = response.read()
            declared = str(len(body))
            chunks: Iterator[bytes] = iter([body])
        else:
            chunks = _read_body(response) if has_body else iter(())
        length = int(declared) if declared and declared.isdigit() else 0
        headers = self._response_headers(exchange, response, declared)
        if exchange.action == "resize" and has_body:
            length += exchange.rule.size_delta
            headers = [(n, str(length) if n.lower() == "content-length" else v)
                       for n, v in headers]
        exchange.send_head(response.status, headers)
        if has_body:
            self._send_response_body(exchange, chunks, length)

    def _response_headers(self, exchange: _Exchange, response: HTTPResponse,
                          declared: Optional[str]) -> list:
        headers = []
        for name, value in response.getheaders():
            if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                continue
            if name.lower() == "location":
                value = self._rewrite_location(value)
            headers.append((name, value))
        if declared is not None:
            headers.append(("Content-Length", declared))
        if exchange.action == "header":
            headers = _apply_header_rule(headers, exchange.rule.headers)
            if not any(n.lower() == "content-length" for n, _value in headers):
                # Without a length the body ends when the connection does.
                exchange.handler.close_connection = True
                headers.append(("Connection", "close"))
        return headers

    def _rewrite_location(self, value: str) -> str:
        assert self.upstream is not None
        target = urlsplit(value)
        if target.netloc != self.upstream.netloc:
            return value
        return target._replace(scheme="http", netloc=self.host).geturl()

    def _send_response_body(self, exchange: _Exchange, chunks: Iterator[bytes],
                            length: int) -> None:
        action, rule = exchange.action, exchange.rule
        if action == "stall":
            self._stopping.wait(rule.seconds(DEFAULT_DELAY))
        if action in ("truncate", "reset"):
            self._send_until(exchange, chunks, _fault_offset(rule, length))
            exchange.abort(linger=action == "reset")
            return
        if action == "resize":
            chunks = _resized(chunks, length)
        if action == "corrupt" and rule.direction == "response":
            chunks = _corrupted(chunks, _fault_offset(rule, length))
        if action == "delay":
            chunks = _slowed(chunks, rule.chunk, rule.seconds(DEFAULT_DELAY), self._stopping)
        for chunk in chunks:
            exchange.write(chunk)

    def _send_until(self, exchange: _Exchange, chunks: Iterator[bytes], limit: int) -> None:
        sent = 0
        for chunk in chunks:
            piece = chunk[:max(0, limit - sent)]
            if piece:
                exchange.write(piece)
                sent += len(piece)
            if sent >= limit:
                return

    # -- control endpoint ------------------------------------------------------------------

    def _control(self, handler: _Handler) -> None:
        length = _request_length(handler) or 0
        raw = handler.rfile.read(length) if length else b""
        try:
            status, answer = self._control_answer(handler.command, raw)
        except (FaultProxyError, TypeError, ValueError) as exc:
            status, answer = 400, {"error": str(exc)}
        body = json.dumps(answer).encode()
        handler.send_response_only(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _control_answer(self, method: str, raw: bytes) -> tuple:
        if method == "POST":
            options = json.loads(raw or b"{}")
            rule = self.arm(options.pop("action", ""), **options)
            return 201, rule.describe()
        if method == "DELETE":
            self.clear()
            return 200, {"rules": []}
        with self._lock:
            rules = [rule.describe() for rule in self._rules]
            log = [asdict(record) for record in self._log]
        return 200, {"rules": rules, "log": log}


def _wait_for_send_queue(connection: socket.socket) -> None:
    """Wait (at most SEND_QUEUE_WAIT seconds) until the peer acknowledged all we sent."""
    if not hasattr(termios, "TIOCOUTQ"):
        return
    deadline = time.monotonic() + SEND_QUEUE_WAIT
    while time.monotonic() < deadline:
        unsent = fcntl.ioctl(connection.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
        if struct.unpack("i", unsent)[0] == 0:
            return
        time.sleep(0.01)


def _request_length(handler: _Handler) -> Optional[int]:
    """The declared body length; None for a chunked body; 0 when there is no body."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        return None
    declared = handler.headers.get("Content-Length", "0")
    return int(declared) if declared.isdigit() else 0


def _read_chunked(rfile: Any) -> Iterator[bytes]:
    while True:
        size_line = rfile.readline()
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return
        yield rfile.read(size)
        rfile.readline()


def _read_body(response: HTTPResponse) -> Iterator[bytes]:
    while True:
        chunk = response.read(IO_CHUNK)
        if not chunk:
            return
        yield chunk


def _fault_offset(rule: Optional[Rule], length: int) -> int:
    if rule is not None and rule.offset is not None:
        return rule.offset
    return length // 2


def _flip(chunk: bytes, position: int) -> bytes:
    data = bytearray(chunk)
    data[position] ^= 0xFF
    return bytes(data)


def _corrupted(chunks: Iterator[bytes], offset: int) -> Iterator[bytes]:
    position = 0
    for chunk in chunks:
        if position <= offset < position + len(chunk):
            chunk = _flip(chunk, offset - position)
        position += len(chunk)
        yield chunk


def _resized(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    """Exactly ``length`` bytes: the upstream body cut short or padded with zeros."""
    sent = 0
    for chunk in chunks:
        piece = chunk[:max(0, length - sent)]
        sent += len(piece)
        if piece:
            yield piece
    if sent < length:
        yield b"\0" * (length - sent)


def _slowed(chunks: Iterator[bytes], size: int, delay: float,
            stopping: threading.Event) -> Iterator[bytes]:
    """Pieces of ``size`` bytes, ``delay`` seconds apart; a stopping proxy stops waiting."""
    for chunk in chunks:
        for start in range(0, len(chunk), size):
            stopping.wait(delay)
            yield chunk[start:start + size]


def _apply_header_rule(headers: list, changes: dict) -> list:
    lowered = {name.lower(): value for name, value in changes.items()}
    kept = [(n, v) for n, v in headers if n.lower() not in lowered]
    return kept + [(name, value) for name, value in changes.items() if value is not None]
