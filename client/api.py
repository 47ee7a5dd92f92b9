"""The relay's HTTP API (docs/http-api.md) as async methods, and nothing more.

No verification happens here: everything the relay returns is untrusted and checked by
``directory`` (key log), ``protocol.open_grant`` and ``protocol.open_message``. This module
maps transport failures to ``RelayUnreachable`` and problem documents to ``RelayRefused``,
keeps the session token in memory only (never on disk), logs in again once when the relay
answers 401, and sends ``Kok-Log-Head`` with every request once a head is known.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from protocol.auth import sign_auth
from protocol.encoding import SignedItem, b64decode, b64encode
from protocol.keys import SigningKeyPair

from .errors import RelayRefused, RelayUnreachable, UsageError

TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                    asyncio.TimeoutError, ConnectionError)
UNAUTHORISED = 401
RATE_LIMITED = 429
MAX_RETRY_AFTER = 10


def retry_after(resp: aiohttp.ClientResponse) -> int | None:
    """Seconds to wait for a short ``429`` (``Retry-After``), None otherwise."""
    if resp.status != RATE_LIMITED:
        return None
    value = resp.headers.get("Retry-After", "")
    if value.isdigit() and int(value) <= MAX_RETRY_AFTER:
        return max(1, int(value))
    return None


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


class RelayApi:
    """One relay, one identity's session; an async context manager around aiohttp."""

    def __init__(self, base_url: str, *, log_head: Callable[[], str | None] | None = None) -> None:
        self.base_url = check_relay_url(base_url)
        self._log_head = log_head
        self._http: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._login: tuple[str, SigningKeyPair, str] | None = None

    async def __aenter__(self) -> RelayApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._http

    async def close(self) -> None:
        """End the session at the relay (best effort) and close connections."""
        if self._token is not None and self._http is not None and not self._http.closed:
            try:
                await self._request("DELETE", "/v1/auth/session", auth=True, relogin=False)
            except (RelayRefused, RelayUnreachable):
                pass  # the session expires on its own within the hour
        self._token = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _headers(self, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        head = self._log_head() if self._log_head else None
        if head:
            headers["Kok-Log-Head"] = head
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def _request(self, method: str, path: str, *, json: Any = None,
                       params: dict[str, Any] | None = None, auth: bool = False,
                       relogin: bool = True) -> Any:
        if auth and self._token is None:
            await self.login()
        for attempt in (1, 2):
            try:
                async with self._session().request(
                        method, self.base_url + path, json=json, params=params,
                        headers=self._headers(auth)) as resp:
                    if resp.status == UNAUTHORISED and auth and relogin and attempt == 1:
                        self._token = None
                        await self.login()
                        continue
                    wait = retry_after(resp)
                    if wait is not None and attempt == 1:
                        await asyncio.sleep(wait)  # a short rate limit: wait it out once
                        continue
                    if resp.status >= 400:
                        raise await problem(resp)
                    if resp.status == 204:
                        return None
                    return await resp.json(content_type=None)
            except TRANSPORT_ERRORS:
                raise RelayUnreachable(self.base_url) from None
            except ValueError:
                # a body that is not JSON: not a kok relay, or a broken proxy in between
                raise RelayRefused("bad_response", 502, "not JSON") from None
        raise RelayRefused("unauthorized", UNAUTHORISED, "the relay refused the request twice")

    def send_log_head(self, log_head: Callable[[], str | None]) -> None:
        """From now on, send ``Kok-Log-Head`` with the value ``log_head()`` returns."""
        self._log_head = log_head

    # --- auth ------------------------------------------------------------------------

    def use_identity(self, staff_id: str, key: SigningKeyPair, origin: str) -> None:
        """Remember who to log in as; the login happens on the first authenticated call."""
        self._login = (staff_id, key, origin)
        self._token = None

    async def login(self) -> dict[str, Any]:
        """Challenge, sign (bound to the relay origin), and keep the session token."""
        if self._login is None:
            raise UsageError("no_staff_identity")
        staff_id, key, origin = self._login
        challenge = await self._request("POST", "/v1/auth/challenge", json={"staff_id": staff_id})
        nonce = b64decode(str(challenge["nonce"]), size=32, field="nonce")
        answer = await self._request("POST", "/v1/auth/session", json={
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
        return dict(await self._request("POST", "/v1/log", json={"record": record.to_json()}))

    async def status(self, token: bytes) -> dict[str, Any]:
        return dict(await self._request("POST", "/v1/status", json={"token": b64encode(token)}))

    async def retract(self, token: bytes) -> dict[str, Any]:
        return dict(await self._request("POST", "/v1/retract", json={"token": b64encode(token)}))

    # --- grants ----------------------------------------------------------------------

    async def put_grants(self, org_id: str, epoch: int, grants: list[tuple[str, bytes]]) -> Any:
        body = {"grants": [{"staff_id": s, "grant": b64encode(g)} for s, g in grants]}
        return await self._request("PUT", f"/v1/grants/{org_id}/{epoch}", json=body, auth=True)

    async def grants(self) -> list[dict[str, Any]]:
        return list((await self._request("GET", "/v1/grants", auth=True))["grants"])

    # --- messages --------------------------------------------------------------------

    async def send(self, idempotency_key: bytes, ttl: int,
                   envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = {"idempotency_key": b64encode(idempotency_key), "ttl": ttl, "envelopes": envelopes}
        return list((await self._request("POST", "/v1/messages", json=body, auth=True))["messages"])

    async def messages(self, after: int, limit: int = 100) -> dict[str, Any]:
        return dict(await self._request("GET", "/v1/messages",
                                        params={"after": after, "limit": limit}, auth=True))

    async def ack(self, relay_id: str) -> dict[str, Any]:
        return dict(await self._request("POST", f"/v1/messages/{relay_id}/ack", auth=True))

    # --- events ----------------------------------------------------------------------

    async def events(self, after: int) -> aiohttp.ClientWebSocketResponse:
        """Open the WebSocket of new envelopes after ``after`` (logging in first if needed)."""
        if self._token is None:
            await self.login()
        url = self.base_url + "/v1/events"
        for attempt in (1, 2):
            try:
                return await self._session().ws_connect(
                    url, params={"after": after}, headers=self._headers(auth=True),
                    heartbeat=30, timeout=aiohttp.ClientWSTimeout(ws_close=10))
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == UNAUTHORISED and attempt == 1:
                    self._token = None
                    await self.login()
                    continue
                raise RelayRefused("unauthorized" if exc.status == UNAUTHORISED else "bad_response",
                                   exc.status, exc.message) from None
            except TRANSPORT_ERRORS:
                raise RelayUnreachable(self.base_url) from None
        raise RelayRefused("unauthorized", UNAUTHORISED, "login failed")


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
    return RelayRefused(code, resp.status, detail)
