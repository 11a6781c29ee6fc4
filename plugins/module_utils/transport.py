# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP transport shared by the registry and Harbor clients.

One pooled ``requests.Session`` per remote host, TLS settings per host, retries with backoff for
requests that can be replayed, and the translation of ``requests`` exceptions into messages that
name the host and the option that fixes the problem. Nothing here knows the registry protocol.
"""

from __future__ import annotations

import email.utils
import http.cookiejar
import random
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional
from urllib.parse import urlsplit

from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.tls import (
    CaBundles,
    HostTls,
    TlsSettings,
    resolve_host_tls,
)

REQUESTS_IMPORT_ERROR: Optional[str]
try:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.utils import get_environ_proxies
except ImportError:
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    HTTPAdapter = object  # the subclass below must still be definable
    TIMEOUT_TYPES: tuple = (socket.timeout, TimeoutError)
else:
    REQUESTS_IMPORT_ERROR = None
    # urllib3's read timeouts wrap the socket's; socket.timeout is no TimeoutError before 3.10.
    TIMEOUT_TYPES = (socket.timeout, TimeoutError, requests.exceptions.Timeout)

# Large enough that Python's per-chunk overhead disappears, small enough to bound memory.
IO_BLOCK = 1 << 20

# Statuses that say "try again later" on any request; the body was not processed.
RETRY_STATUSES = (429, 500, 502, 503, 504)

# A server asking for a longer pause than this is treated as down, not busy.
MAX_RETRY_AFTER = 60.0

# Error bodies are read for their message only; a hostile server must not make us read more.
ERROR_BODY_LIMIT = 64 * 1024

REPLAYABLE_METHODS = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")

# Exception chains are short; the bound only guards against a cycle.
MAX_CAUSE_DEPTH = 20


class TransportError(HangarError):
    """The remote host could not be reached or the connection broke."""

    def __init__(self, message: str, host: str = "", retryable: bool = True) -> None:
        super().__init__(message)
        self.host = host
        self.retryable = retryable


class TlsError(TransportError):
    """The TLS handshake failed: certificate, protocol or client certificate problem."""

    def __init__(self, message: str, host: str = "", retryable: bool = False) -> None:
        # A certificate or protocol mismatch fails the same way every time it is tried.
        super().__init__(message, host, retryable)


class TransportTimeout(TransportError):
    """The host accepted the connection but did not answer in time."""


class BodyTooLarge(TransportError):
    """A response body was larger than the cap for its kind."""


@dataclass(frozen=True)
class TransportSettings:
    tls: TlsSettings = TlsSettings()
    timeout: float = 60.0
    retries: int = 3
    retry_delay: float = 1.0
    pool_size: int = 10
    user_agent: str = "airgap.hangar"
    use_proxy: bool = True


class BlockAdapter(HTTPAdapter):
    """An adapter whose connections send file-like bodies in 1 MiB blocks instead of 16 KiB."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = IO_BLOCK
        super().init_poolmanager(*args, **kwargs)


class NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Harbor answers CSRF 403 to API calls that carry its session cookie; never keep one."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


def new_session(pool_size: int) -> "requests.Session":
    session = requests.Session()
    # trust_env would read ~/.netrc (credentials to every host) and let REQUESTS_CA_BUNDLE
    # override an explicit verify; proxies from the environment are added per request instead.
    session.trust_env = False
    session.cookies.set_policy(NoCookies())
    adapter = BlockAdapter(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def retry_after_seconds(response: "requests.Response") -> Optional[float]:
    """The pause a busy server asks for: ``Retry-After`` in seconds or as an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    wait = (moment - datetime.now(timezone.utc)).total_seconds()
    return min(max(wait, 0.0), MAX_RETRY_AFTER)


def read_capped(response: "requests.Response", limit: int, what: str) -> bytes:
    """Read a whole body, refusing more than ``limit`` bytes.

    The headers arrived, but the body can still break or stall; that becomes a TransportError
    naming the host, never a raw ``requests`` exception escaping to the module.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise BodyTooLarge(f"{what} is {declared} bytes, more than the {limit} bytes allowed")
    data = bytearray()
    try:
        for chunk in response.iter_content(min(limit + 1, IO_BLOCK)):
            data.extend(chunk)
            if len(data) > limit:
                response.close()
                raise BodyTooLarge(f"{what} is larger than the {limit} bytes allowed")
    except (requests.RequestException, OSError) as exc:
        response.close()
        raise body_error(response, exc, what, len(data)) from exc
    return bytes(data)


def body_error(response: "requests.Response", exc: BaseException, what: str,
               received: int) -> TransportError:
    """The error for a body that stopped: a stall (timeout) or a broken connection."""
    host = urlsplit(response.url).netloc
    if is_timeout(exc):
        return TransportTimeout(
            f"{host} stopped sending {what} after {received} bytes: the read timed out; "
            "raise the timeout option if the registry is slow", host)
    return TransportError(
        f"the connection to {host} broke while reading {what} after {received} bytes: "
        f"{root_cause(exc)}", host)


def is_timeout(exc: BaseException) -> bool:
    """Whether an exception, or one it wraps, is a read or connect timeout."""
    seen: Optional[BaseException] = exc
    for _depth in range(MAX_CAUSE_DEPTH):
        if seen is None:
            return False
        if isinstance(seen, TIMEOUT_TYPES):
            return True
        nested = seen.__cause__ or seen.__context__
        if nested is None and seen.args and isinstance(seen.args[0], BaseException):
            nested = seen.args[0]
        seen = nested if nested is not seen else None
    return False


def error_text(response: "requests.Response") -> str:
    """The start of an error body, for messages; never raises."""
    try:
        return read_capped(response, ERROR_BODY_LIMIT, "error body").decode("utf-8", "replace")
    except (TransportError, requests.RequestException):
        return ""


class HttpClient:
    """Sends requests to one host with its TLS settings, retrying what can be retried."""

    def __init__(self, host: str, settings: TransportSettings,
                 bundles: Optional[CaBundles] = None) -> None:
        self.host = host
        self.settings = settings
        self.bundles = bundles or CaBundles()
        self.session = new_session(settings.pool_size)
        self.session.headers["User-Agent"] = settings.user_agent
        self._host_tls: Optional[HostTls] = None
        self._tls_lock = threading.Lock()

    @property
    def host_tls(self) -> HostTls:
        with self._tls_lock:
            if self._host_tls is None:
                self._host_tls = resolve_host_tls(self.settings.tls, self.host, self.bundles)
            return self._host_tls

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, url: str, *, headers: Optional[dict] = None,
                data: Any = None, stream: bool = False, replayable: Optional[bool] = None,
                timeout: Optional[float] = None) -> "requests.Response":
        """Send one request; retry it on connection errors and busy answers when it is safe.

        A body that is a generator or file can be sent only once, so such requests are not
        replayed here: the caller restarts the whole upload instead.
        """
        if replayable is None:
            replayable = method in REPLAYABLE_METHODS and isinstance(data, (bytes, type(None)))
        attempts = 1 + (self.settings.retries if replayable else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(method, url, headers, data, stream, timeout)
            except TransportError as exc:
                if last or not exc.retryable:
                    raise
                self._pause(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                delay = retry_after_seconds(response)
                response.close()
                self._pause(attempt, delay)
                continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _pause(self, attempt: int, retry_after: Optional[float]) -> None:
        if retry_after is not None:
            time.sleep(retry_after)
            return
        # Exponential backoff with jitter, so parallel workers do not retry in lock step.
        delay = min(self.settings.retry_delay * (2 ** attempt), 30.0)
        time.sleep(delay * random.uniform(0.5, 1.0))

    def _send(self, method: str, url: str, headers: Optional[dict], data: Any, stream: bool,
              timeout: Optional[float]) -> "requests.Response":
        tls = self.host_tls
        proxies = get_environ_proxies(url) if self.settings.use_proxy else {}
        seconds = timeout or self.settings.timeout
        try:
            return self.session.request(
                method, url, headers=headers, data=data, stream=stream, verify=tls.verify,
                cert=tls.cert, timeout=(seconds, seconds), proxies=proxies,
                allow_redirects=True,
            )
        except requests.exceptions.SSLError as exc:
            raise self.tls_error(exc) from exc
        except requests.exceptions.Timeout as exc:
            raise TransportTimeout(
                f"{self.host} did not answer {method} {safe_url(url)} within {seconds:g} s; "
                "raise the timeout option if the registry is slow", self.host) from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(
                f"cannot reach {self.host} ({method} {safe_url(url)}): {root_cause(exc)}",
                self.host) from exc

    def tls_error(self, exc: Exception) -> TlsError:
        cause = root_cause(exc)
        detail = getattr(innermost(exc), "verify_message", "") or ""
        if "WRONG_VERSION_NUMBER" in cause or "record layer failure" in cause:
            return TlsError(
                f"server gave HTTP response to HTTPS client: {self.host} speaks plain HTTP. "
                f"Write the registry as http://{self.host} or set validate_certs: false", self.host)
        if "mismatch" in detail.lower():
            # The CA is trusted; a different CA or certs.d entry would not help here.
            return TlsError(
                f"TLS certificate of {self.host} is not valid for the name used ({detail}). "
                "Address the registry by a name or IP address the certificate lists, or set "
                "validate_certs: false", self.host)
        if "CERTIFICATE_VERIFY_FAILED" in cause:
            return TlsError(
                f"TLS certificate of {self.host} is not trusted ({detail or cause}). Give its CA "
                f"with ca_path, put it in a certs.d directory for {self.host} (certs_dir), or set "
                "validate_certs: false", self.host)
        # Without an alert from the server the handshake may just have been cut off.
        return TlsError(
            f"TLS handshake with {self.host} failed ({cause}). Check ca_path, client_cert and "
            f"client_key, or the certs.d directory for {self.host}", self.host,
            retryable="ALERT" not in cause.upper())


def innermost(exc: BaseException) -> BaseException:
    """The innermost exception of a chain, which is the one that explains."""
    seen = exc
    for _depth in range(MAX_CAUSE_DEPTH):
        nested = seen.__cause__ or seen.__context__
        if nested is None and seen.args and isinstance(seen.args[0], BaseException):
            nested = seen.args[0]
        if nested is None or nested is seen:
            break
        seen = nested
    return seen


def root_cause(exc: BaseException) -> str:
    """The message of the innermost exception, or its short reason when it has one."""
    seen = innermost(exc)
    reason = getattr(seen, "reason", None)
    return str(reason if reason is not None and not callable(reason) else seen)


def safe_url(url: str) -> str:
    """A URL without its query string, which may carry upload state or tokens."""
    return url.split("?", 1)[0]


def iter_file(fileobj: Any, block: int = IO_BLOCK) -> Iterable[bytes]:
    while True:
        chunk = fileobj.read(block)
        if not chunk:
            return
        yield chunk


class SizedBody:
    """An iterable body with a known length, so requests sends Content-Length, not chunks.

    ``on_chunk`` sees every chunk as it goes out (used to hash while uploading).
    """

    def __init__(self, chunks: Iterable[bytes], size: int,
                 on_chunk: Optional[Callable[[bytes], None]] = None) -> None:
        self._chunks = chunks
        self._size = size
        self._on_chunk = on_chunk
        self.sent = 0

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        for chunk in self._chunks:
            if self._on_chunk:
                self._on_chunk(chunk)
            self.sent += len(chunk)
            yield chunk
