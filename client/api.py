"""The relay's HTTP API (docs/http-api.md): the client's one transport.

Theory of operation
-------------------
Every request the client makes, JSON calls as well as drop uploads and downloads and the
event WebSocket, goes through ``RelayApi``: one ``aiohttp`` session (with the trusted CA of
``ca_file``, if any), the same headers (``Kok-Log-Head`` once a head is known, the session
token) and one ``RetryPolicy``.

A request is made once by an *attempt* function; ``RelayApi.retrying`` runs it under the
policy:

* a transport failure (refused or reset connection, a pooled keep-alive connection the
  relay closed when it restarted, a timeout) is tried again with exponential backoff, but
  only for a request that may be repeated: everything except a POST that neither carries an
  idempotency key nor is harmless to repeat (a log append is the one such call);
* ``401`` on an authenticated request means the session ended (expiry, relay restart):
  log in again and repeat, once per attempt;
* a short ``429`` is waited out (``Retry-After`` up to ``max_retry_after`` seconds);
* a certificate the client does not trust is never retried and is reported as a
  certificate problem (``RelayCertificateError``), not as an unreachable relay.

No verification happens here: everything the relay returns is untrusted and checked by
``directory`` (key log), ``protocol.open_grant`` and ``protocol.open_message``. The session
token is kept in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp

from protocol.auth import sign_auth
from protocol.encoding import SignedItem, b64decode, b64encode
from protocol.keys import SigningKeyPair

from .errors import RelayCertificateError, RelayRefused, RelayUnreachable, UsageError

T = TypeVar("T")

TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
# Drop transfers take as long as the file needs; only a stalled socket ends them.
TRANSFER_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
# A large read buffer lets the socket fill while the last piece of a download is decrypted.
READ_BUFFER = 1024 * 1024
TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                    asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError)
CERTIFICATE_ERRORS = (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)
UNAUTHORISED = 401
RATE_LIMITED = 429


@dataclass(frozen=True)
class RetryPolicy:
    """What is tried again, how often, and how long to wait in between."""

    attempts: int = 4
    """Tries of an ordinary call (the first and three more)."""
    transfer_attempts: int = 9
    """Tries of a resumable drop transfer (each resumes where the last one stopped)."""
    first_delay: float = 0.25
    max_delay: float = 4.0
    max_retry_after: int = 10
    """A longer ``Retry-After`` is not waited out: the caller hears the refusal."""
    reconnect_max: float = 30.0
    """The longest wait between two attempts of ``listen`` to open the event stream."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.first_delay * 2 ** (attempt - 1), self.max_delay))

    def reconnect_delay(self, attempt: int) -> float:
        """Seconds ``listen`` waits before opening the event stream again."""
        return float(min(2 ** (attempt - 1), self.reconnect_max))


DEFAULT_POLICY = RetryPolicy()


def check_relay_url(url: str) -> str:
    """Normalise a relay base URL (no trailing slash); only http(s) with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("bad_relay_url", url=url)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # the session token and everything else would cross the network in clear text
        raise UsageError("insecure_relay_url", url=url)
    return url.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wall_clock() -> float:
    """This computer's clock (a seam for tests of a wrong clock)."""
    return time.time()


def trust_context(ca_file: str | Path | None) -> ssl.SSLContext | None:
    """The TLS context trusting ``ca_file`` besides the system's CAs (None: system only)."""
    if ca_file is None:
        return None
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError("ca_file_unreadable", path=str(ca_file), detail=detail) from None
    return context


def drop_path(*parts: str) -> str:
    """The API path of the drop collection, or of one drop (and a sub-resource)."""
    return "/".join(["/v1/drops", *(quote(p, safe="") for p in parts)])


def link_path(nameplate: str, side: str | None = None) -> str:
    """The API path of a device-linking mailbox (and one side of it)."""
    return "/".join(["/v1/link", quote(nameplate, safe=""), *([side] if side else [])])


class RelayApi:
    """One relay, one identity's session; an async context manager around aiohttp."""

    def __init__(self, base_url: str, *, log_head: Callable[[], str | None] | None = None,
                 ca_file: str | Path | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.base_url = check_relay_url(base_url)
        self.policy = policy
        self._ssl = trust_context(ca_file)
        self._log_head = log_head
        self._http: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._login: tuple[str, SigningKeyPair, str] | None = None
        self.clock_offset: float | None = None
        """The relay's clock minus ours, from the last answer's ``Date`` (None before one)."""

    async def __aenter__(self) -> RelayApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            self._http = aiohttp.ClientSession(timeout=TIMEOUT, read_bufsize=READ_BUFFER,
                                               connector=connector)
        return self._http

    async def close(self) -> None:
        """End the session at the relay (best effort) and close connections."""
        if self._token is not None and self._http is not None and not self._http.closed:
            try:
                await self._once("DELETE", "/v1/auth/session", auth=True)
            except (RelayRefused, RelayUnreachable, *TRANSPORT_ERRORS, *CERTIFICATE_ERRORS):
                pass  # the session expires on its own within the hour
        self._token = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _note_date(self, resp: aiohttp.ClientResponse) -> None:
        try:
            relay_time = email.utils.parsedate_to_datetime(resp.headers["Date"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return
        self.clock_offset = relay_time - wall_clock()

    def _headers(self, auth: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        head = self._log_head() if self._log_head else None
        if head:
            headers["Kok-Log-Head"] = head
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        headers.update(extra or {})
        return headers

    def send_log_head(self, log_head: Callable[[], str | None]) -> None:
        """From now on, send ``Kok-Log-Head`` with the value ``log_head()`` returns."""
        self._log_head = log_head

    # --- the retry policy ------------------------------------------------------------

    async def retrying(self, attempt: Callable[[], Awaitable[T]], *, repeatable: bool,
                       auth: bool, attempts: int | None = None,
                       retry_codes: frozenset[str] = frozenset(),
                       again: tuple[type[Exception], ...] = ()) -> T:
        """Run ``attempt`` under the policy (see the module's theory of operation).

        ``repeatable``: the request may be sent again after a transport failure (it may have
        reached the relay). ``retry_codes``: relay refusals that mean "try again shortly";
        ``again``: exceptions of the caller's own that mean the same.
        """
        tries = attempts or self.policy.attempts
        number = 0
        while True:
            number += 1
            if auth and self._token is None:
                await self.login()
            try:
                return await attempt()
            except RelayRefused as exc:
                if auth and exc.status == UNAUTHORISED and number < tries:
                    self._token = None  # the session ended: log in again and repeat
                    continue
                wait = exc.retry_after
                if wait is not None and wait <= self.policy.max_retry_after and number < tries:
                    await asyncio.sleep(max(1, wait))  # a short rate limit: wait it out
                    continue
                if exc.code in retry_codes and number < tries:
                    await asyncio.sleep(self.policy.delay(number))
                    continue
                raise
            except CERTIFICATE_ERRORS as exc:
                raise RelayCertificateError(self.base_url, _certificate_detail(exc)) from None
            except TRANSPORT_ERRORS:
                if not repeatable or number >= tries:
                    raise RelayUnreachable(self.base_url) from None
                await asyncio.sleep(self.policy.delay(number))
            except again:
                if number >= tries:
                    raise
                await asyncio.sleep(self.policy.delay(number))

    async def _once(self, method: str, path: str, *, json: Any = None,
                    params: dict[str, Any] | None = None, auth: bool = False) -> Any:
        """One JSON request, one attempt: the decoded answer, or ``RelayRefused``."""
        async with self._session().request(method, self.base_url + path, json=json,
                                           params=params, headers=self._headers(auth)) as resp:
            self._note_date(resp)
            if resp.status >= 400:
                raise await problem(resp)
            if resp.status == 204:
                return None
            try:
                return await resp.json(content_type=None)
            except ValueError:
                # a body that is not JSON: not a kok relay, or a broken proxy in between
                raise RelayRefused("bad_response", 502, "not JSON") from None

    async def _request(self, method: str, path: str, *, json: Any = None,
                       params: dict[str, Any] | None = None, auth: bool = False,
                       repeatable: bool | None = None) -> Any:
        """A JSON call under the policy; only a plain POST is not repeated unless told so."""
        return await self.retrying(
            lambda: self._once(method, path, json=json, params=params, auth=auth),
            repeatable=method != "POST" if repeatable is None else repeatable, auth=auth)

    @contextlib.asynccontextmanager
    async def exchange(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                       data: Any = None, json: Any = None, check: bool = True
                       ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One authenticated streaming request (drop transfers): the caller reads the answer.

        A single attempt: run it inside ``retrying``. With ``check``, an answer of 400 or
        more raises ``RelayRefused``; without, the caller looks at the status first.
        """
        async with self._session().request(
                method, self.base_url + path, data=data, json=json, timeout=TRANSFER_TIMEOUT,
                headers=self._headers(True, headers)) as resp:
            if check and resp.status >= 400:
                raise await problem(resp)
            yield resp

    # --- auth ------------------------------------------------------------------------

    def use_identity(self, staff_id: str, key: SigningKeyPair, origin: str) -> None:
        """Remember who to log in as; the login happens on the first authenticated call."""
        self._login = (staff_id, key, origin)
        self._token = None

    async def login(self) -> dict[str, Any]:
        """Challenge, sign (bound to the relay origin), and keep the session token."""
        if self._login is None:
            raise UsageError("no_staff_identity")
        # A challenge is used up by its answer: the pair is repeated as a whole.
        return await self.retrying(self._login_once, repeatable=True, auth=False)

    async def _login_once(self) -> dict[str, Any]:
        assert self._login is not None
        staff_id, key, origin = self._login
        challenge = await self._once("POST", "/v1/auth/challenge", json={"staff_id": staff_id})
        nonce = b64decode(str(challenge["nonce"]), size=32, field="nonce")
        answer = await self._once("POST", "/v1/auth/session", json={
            "staff_id": staff_id, "nonce": b64encode(nonce),
            "signature": b64encode(sign_auth(key, origin, nonce)),
        })
        self._token = str(answer["token"])
        return dict(answer)

    @property
    def token(self) -> str | None:
        return self._token

    # --- public ----------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        return dict(await self._request("GET", "/v1/info"))

    async def log(self, after: int, limit: int = 1000) -> dict[str, Any]:
        return dict(await self._request("GET", "/v1/log", params={"after": after, "limit": limit}))

    async def append(self, record: SignedItem) -> dict[str, Any]:
        # Not repeated: an answer lost after the relay appended would turn into a refusal.
        return dict(await self._request("POST", "/v1/log", json={"record": record.to_json()}))

    async def status(self, token: bytes) -> dict[str, Any]:
        return dict(await self._request("POST", "/v1/status", json={"token": b64encode(token)},
                                        repeatable=True))

    async def retract(self, token: bytes) -> dict[str, Any]:
        # Retracting twice leaves the same state: the second answer says "retracted".
        return dict(await self._request("POST", "/v1/retract", json={"token": b64encode(token)},
                                        repeatable=True))

    # --- grants ----------------------------------------------------------------------

    async def put_grants(self, org_id: str, epoch: int,
                         grants: list[tuple[str, str, bytes]]) -> Any:
        """Upload ``(staff_id, device, sealed grant)`` entries of one epoch."""
        body = {"grants": [{"staff_id": s, "device": d, "grant": b64encode(g)}
                           for s, d, g in grants]}
        return await self._request("PUT", f"/v1/grants/{org_id}/{epoch}", json=body, auth=True)

    async def grants(self) -> list[dict[str, Any]]:
        return list((await self._request("GET", "/v1/grants", auth=True))["grants"])

    # --- messages --------------------------------------------------------------------

    async def send(self, idempotency_key: bytes, ttl: int,
                   envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = {"idempotency_key": b64encode(idempotency_key), "ttl": ttl, "envelopes": envelopes}
        # The idempotency key makes a repeat after a lost answer store nothing twice.
        answer = await self._request("POST", "/v1/messages", json=body, auth=True,
                                     repeatable=True)
        return list(answer["messages"])

    async def messages(self, after: int, limit: int = 100) -> dict[str, Any]:
        return dict(await self._request("GET", "/v1/messages",
                                        params={"after": after, "limit": limit}, auth=True))

    async def ack(self, relay_id: str) -> dict[str, Any]:
        return dict(await self._request("POST", f"/v1/messages/{quote(relay_id, safe='')}/ack",
                                        auth=True, repeatable=True))

    async def report_read(self, relay_ids: list[str]) -> int:
        """Report messages opened (SPEC 21.1); how many the relay newly counted."""
        answer = await self._request("POST", "/v1/messages/read", json={"ids": relay_ids},
                                     auth=True, repeatable=True)
        counted = answer.get("counted") if isinstance(answer, dict) else None
        return counted if isinstance(counted, int) else 0

    # --- drops -----------------------------------------------------------------------

    async def create_drop(self, size: int, to: list[str], ttl: int) -> dict[str, Any]:
        # Repeatable: a drop whose answer was lost is never used and expires.
        return dict(await self._request("POST", drop_path(),
                                        json={"size": size, "to": to, "ttl": ttl},
                                        auth=True, repeatable=True))

    async def withdraw_drop(self, drop: str, upload_token: str) -> None:
        """Delete a drop we uploaded (complete or not) at once."""
        async with self.exchange("DELETE", drop_path(drop),
                                 headers={"Kok-Upload-Token": upload_token}):
            pass

    async def ack_drop(self, drop: str) -> None:
        await self._request("POST", drop_path(drop, "ack"), auth=True, repeatable=True)

    # --- device linking (SPEC 6.8) ---------------------------------------------------

    async def open_link(self) -> dict[str, Any]:
        """Open an empty device-linking mailbox for this device: nameplate and expiry."""
        return dict(await self._request("POST", "/v1/link", auth=True))

    async def post_link(self, nameplate: str, side: str, message: bytes) -> dict[str, Any]:
        """Post one message of ``side`` (``a`` needs this device's session)."""
        # Not repeated: a post whose answer was lost would be refused as one too many.
        return dict(await self._request("POST", link_path(nameplate, side),
                                        json={"message": b64encode(message)},
                                        auth=side == "a"))

    async def read_link(self, nameplate: str, side: str, after: int) -> list[bytes]:
        """What ``side`` posted from position ``after`` on (``b``'s needs our session)."""
        answer = await self._request("GET", link_path(nameplate, side),
                                     params={"after": after}, auth=side == "b")
        return [b64decode(str(m), field="message") for m in answer["messages"]]

    async def close_link(self, nameplate: str) -> None:
        """Delete a device-linking mailbox (nothing happens if it is gone already)."""
        try:
            await self._request("DELETE", link_path(nameplate))
        except RelayRefused as exc:
            if exc.code != "not_found":
                raise

    # --- events ----------------------------------------------------------------------

    async def events(self, after: int) -> aiohttp.ClientWebSocketResponse:
        """Open the WebSocket of new envelopes after ``after`` (logging in first if needed)."""
        async def connect() -> aiohttp.ClientWebSocketResponse:
            try:
                return await self._session().ws_connect(
                    self.base_url + "/v1/events", params={"after": after},
                    headers=self._headers(auth=True), heartbeat=30,
                    timeout=aiohttp.ClientWSTimeout(ws_close=10))
            except aiohttp.WSServerHandshakeError as exc:
                code = "unauthorized" if exc.status == UNAUTHORISED else "bad_response"
                raise RelayRefused(code, exc.status, exc.message) from None

        return await self.retrying(connect, repeatable=True, auth=True)


def _certificate_detail(exc: BaseException) -> str:
    cause = getattr(exc, "certificate_error", None) or exc
    return " ".join(str(getattr(cause, "verify_message", "") or cause).split())


async def problem(resp: aiohttp.ClientResponse) -> RelayRefused:
    """A ``RelayRefused`` from a problem+json answer (or whatever the relay sent)."""
    code, detail = f"http_{resp.status}", resp.reason or ""
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or code)
        detail = str(body.get("detail") or body.get("title") or detail)
    refused = RelayRefused(code, resp.status, detail)
    if resp.status == RATE_LIMITED:
        value = resp.headers.get("Retry-After", "")
        refused.retry_after = int(value) if value.isdigit() else None
    return refused
