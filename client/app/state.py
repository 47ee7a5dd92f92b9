"""The app's one unlocked profile: open on the passphrase, forgotten on the idle lock.

Theory of operation
-------------------
The keystore is decrypted only in this process, when the person types the passphrase into
the unlock page (or, for ``kok app`` started with a passphrase file, at start). While it is
open a listener task follows the relay's event stream through ``Client.listen`` and tells
every open page of each new message (``subscribe``). Every page request counts as activity;
when none came for the idle-lock time the client is closed, its keys dropped, the listener
stopped, and the next page asks for the passphrase again. Pages learn the lock time so
their script can warn a minute before and offer to extend.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from .._client import Client
from ..errors import KokError

DEFAULT_IDLE_MINUTES = 15
MIN_IDLE_MINUTES = 1
MAX_IDLE_MINUTES = 8 * 60
LISTEN_RETRY = 5.0


class AppState:
    """The profile this app serves, its client while unlocked, and who listens for news."""

    def __init__(self, home: Path | None, profile: str | None, *,
                 idle_minutes: int = DEFAULT_IDLE_MINUTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.home = home
        self.profile = profile
        self.idle_minutes = idle_minutes
        self.clock = clock
        self.client: Client | None = None
        self.last_active = clock()
        self.locked_for_idle = False
        self.listen_problem: str | None = None
        self._listener: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._subscribers: set[asyncio.Queue[int]] = set()
        self.unseen = 0
        """Messages that arrived since the inbox was last shown."""

    # --- lock and unlock -------------------------------------------------------------

    @property
    def unlocked(self) -> bool:
        return self.client is not None

    async def unlock(self, passphrase: str) -> Client:
        """Open the profile (a wrong passphrase raises ``ProfileError``), start listening."""
        if self.client is not None:
            return self.client
        client = await Client.open(self.home, self.profile, passphrase)
        self.client = client
        self.locked_for_idle = False
        self.touch()
        if client.kind in ("org", "staff"):
            self._listener = asyncio.create_task(self._listen(client))
        return client

    async def lock(self, *, idle: bool = False) -> None:
        """Forget the keys: stop listening and close the client."""
        self.locked_for_idle = idle
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        client, self.client = self.client, None
        if client is not None:
            client.keystore.secrets.clear()
            await client.close()

    def touch(self) -> None:
        self.last_active = self.clock()

    @property
    def idle_seconds(self) -> int:
        return self.idle_minutes * 60

    def seconds_left(self) -> float:
        return self.idle_seconds - (self.clock() - self.last_active)

    def start_watch(self) -> None:
        """Lock after the idle time (checked every few seconds)."""
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_idle())

    async def _watch_idle(self) -> None:
        while True:
            await asyncio.sleep(2)
            if self.client is not None and self.seconds_left() <= 0:
                await self.lock(idle=True)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.lock()

    # --- news ------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[int]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[int]) -> None:
        self._subscribers.discard(queue)

    def _announce(self) -> None:
        self.unseen += 1
        for queue in self._subscribers:
            queue.put_nowait(self.unseen)

    async def _listen(self, client: Client) -> None:
        while True:
            try:
                async for _message in client.listen():
                    self.listen_problem = None
                    self._announce()
            except asyncio.CancelledError:
                raise
            except (KokError, aiohttp.ClientError, OSError) as exc:
                # Shown on the inbox; the listener tries again (the relay may be restarting).
                self.listen_problem = getattr(exc, "code", type(exc).__name__)
            await asyncio.sleep(LISTEN_RETRY)
