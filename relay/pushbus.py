"""Several relay processes on one PostgreSQL store: what one process does, the others learn.

The PostgreSQL store announces, in the same transaction as the change (so only committed
changes are ever announced), on the channel ``kok_relay``:

- ``sent``: envelopes stored (org, cursor). Every other process that holds an event stream
  of that org reads them and pushes them at once, as if they had been sent to it.
- ``log``: a key-log entry appended. Every other process catches up its copy of the log,
  which ends the sessions and closes the event streams of a removed staff member or a
  revoked organisation (the same listeners as for its own appends).
- ``logout``: a session ended; other processes forget it and close its streams.
- ``rate``: (published here, once a second) how many requests each rate-limit key spent in
  this process, so every process charges the whole network's use against one budget.

A process ignores its own announcements. If the listening connection is lost, every event
stream of this process is closed with 1012 ("service restart") so clients reconnect and
catch up by cursor: nothing is silently missed while the bus was deaf; the key log is
caught up on reconnection.

Staleness the bus cannot close on its own (an announcement arrives a moment after the
client's next request) is closed by ``learn_shared_state``: every bearer token is
looked up in the store before the handler runs (one primary-key read), so a session opened
or ended through another process counts at once; a session new to this process, a login
request or a ``Kok-Log-Head`` ahead of ours catches the key log up first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from .errors import AuthRequired
from .handlers.common import SERVICE, bearer_token
from .service.hashing import SESSION, secret_hash

if TYPE_CHECKING:
    from .ratelimit import RateLimiter
    from .service import RelayService
    from .store.postgres import PostgresStore

log = structlog.get_logger("relay")
RATE_INTERVAL = 1.0
RECONNECT_DELAY = 1.0
MAX_PAYLOAD = 7000  # NOTIFY payloads must stay under 8000 bytes
CLOSE_RESTART = 1012


class PushBus:
    """Listens for other processes' announcements and acts on them in this process."""

    def __init__(self, relay: RelayService, store: PostgresStore) -> None:
        self.relay = relay
        self.store = store
        self._conn: Any = None
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._ready = asyncio.Event()
        self.received = 0

    @property
    def limiters(self) -> dict[str, RateLimiter]:
        relay = self.relay
        return {"staff": relay.staff_limiter, "org": relay.org_limiter,
                "public": relay.public_limiter, "login": relay.login_limiter}

    def ready(self) -> None:
        """The service has loaded its state: act on announcements from now on (those that
        arrived since ``start`` were queued, so nothing committed meanwhile is missed)."""
        self._ready.set()

    async def start(self) -> None:
        """Listen (before the service loads its state); act only after ``ready``."""
        for limiter in self.limiters.values():
            limiter.track_spending()
        await self._connect()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._handle_loop()),
                       loop.create_task(self._rate_loop())]

    async def close(self) -> None:
        self._closing = True
        self._events.put_nowait(None)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    # --- the listening connection -------------------------------------------------------

    async def _connect(self) -> None:
        import asyncpg

        from .store.postgres import CHANNEL

        self._conn = await asyncpg.connect(self.store.url)
        self._conn.add_termination_listener(self._lost)
        await self._conn.add_listener(CHANNEL, self._on_notify)

    def _lost(self, _conn: Any) -> None:
        if not self._closing:
            asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        log.warning("push_bus_lost")
        # Streams may have missed pushes meanwhile: make their clients catch up by cursor.
        await self.relay.hub.close_all(CLOSE_RESTART, "relay reconnecting: catch up by cursor")
        while not self._closing:
            try:
                await self._connect()
            except Exception:  # the database is away: try again shortly
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            self._events.put_nowait({"k": "log", "i": ""})
            log.info("push_bus_back")
            return

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if isinstance(event, dict) and event.get("i") != self.store.instance:
            self._events.put_nowait(event)

    # --- acting on announcements (in order) ------------------------------------------------

    async def _handle_loop(self) -> None:
        await self._ready.wait()
        while True:
            event = await self._events.get()
            if event is None:
                return
            self.received += 1
            try:
                await self._handle(event)
            except Exception as exc:  # one bad event must not stop the bus
                log.error("push_bus_event_failed", kind=event.get("k"),
                          error=type(exc).__name__)

    async def _handle(self, event: dict[str, Any]) -> None:
        relay = self.relay
        kind = event.get("k")
        if kind == "sent":
            wanted = [int(c) for org, c in event.get("m", []) if relay.hub.has_subscribers(org)]
            if wanted:
                for message in await self.store.messages_at(wanted):
                    relay.hub.publish(message)
        elif kind == "log":
            await relay.directory.catch_up(int(time.time()))
        elif kind == "logout":
            token_hash = bytes.fromhex(event["h"])
            relay.sessions.forget(token_hash)
            await relay.hub.close_session(token_hash)
        elif kind == "rate":
            now = time.monotonic()
            for name, spent in event.get("r", {}).items():
                limiter = self.limiters.get(name)
                if limiter is not None:
                    for key, count in spent.items():
                        limiter.charge(key, int(count), now)

    # --- sharing rate-limit spending ---------------------------------------------------------

    async def _rate_loop(self) -> None:
        from .store.postgres import CHANNEL

        while True:
            await asyncio.sleep(RATE_INTERVAL)
            for payload in self._rate_payloads():
                with contextlib.suppress(Exception):  # a lost bus reconnects by itself
                    await self.store.pool.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    def _rate_payloads(self) -> list[str]:
        payloads: list[str] = []
        current: dict[str, dict[str, int]] = {}
        size = 0
        for name, limiter in self.limiters.items():
            for key, count in limiter.drain_spent().items():
                current.setdefault(name, {})[key] = count
                size += len(key) + 12
                if size > MAX_PAYLOAD:
                    payloads.append(self._rate_event(current))
                    current, size = {}, 0
        if current:
            payloads.append(self._rate_event(current))
        return payloads

    def _rate_event(self, spent: dict[str, dict[str, int]]) -> str:
        return json.dumps({"k": "rate", "i": self.store.instance, "r": spent},
                          separators=(",", ":"))


async def learn_shared_state(request: web.Request) -> None:
    """Before a handler runs, learn what another process committed a moment ago (the
    relay's middleware, ``relay.edge``, awaits this when the store is shared)."""
    relay = request.app[SERVICE]
    now = int(time.time())
    learned = False
    if "Authorization" in request.headers:
        # The session row decides, not this process's memory: a logout or removal through
        # another process holds at once, whatever the notifications are doing.
        with contextlib.suppress(AuthRequired):  # malformed: the handler says so
            learned = await relay.sessions.sync(secret_hash(SESSION, bearer_token(request)),
                                                now)
    head = request.headers.get("Kok-Log-Head", "")
    size_text = head.partition(":")[0].strip()
    if learned or request.path.startswith("/v1/auth/") or request.path == "/v1/grants" or (
            size_text.isdigit() and int(size_text) > relay.directory.keylog.size):
        await relay.directory.catch_up(now)
