"""The app's one unlocked profile: open on the passphrase, forgotten on the idle lock.

Theory of operation
-------------------
The keystore is decrypted only in this process, when the person types the passphrase into
the unlock page (or, for ``kok app`` started with a passphrase file, at start), or its keys
come from the profile's running unlock agent (``kok unlock``, ``client.agent``): at start and
whenever the unlock page is shown, unless the app locked itself (the idle lock, the Lock
button), which asks for the passphrase again because it locks this browser window. Keys from
the agent are the agent's session: when it ends (``kok lock``, its time runs out) the app
locks too, within a few seconds, and the unlock page says why. While it is
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

from .. import agent_client
from .._client import Client
from ..agent_client import AgentKeystore
from ..errors import KokError, ProfileError
from ..profile import load_profile

DEFAULT_IDLE_MINUTES = 15
MIN_IDLE_MINUTES = 1
MAX_IDLE_MINUTES = 8 * 60
LISTEN_RETRY = 5.0


class AppState:
    """The profile this app serves, its client while unlocked, and who listens for news."""

    def __init__(self, home: Path | None, profile: str | None, *,
                 idle_minutes: int = DEFAULT_IDLE_MINUTES,
                 clock: Callable[[], float] = time.monotonic,
                 ca_file: Path | None = None) -> None:
        self.home = home
        self.profile = profile
        self.ca_file = ca_file
        """A CA to trust for the relay's TLS besides the system's (``kok --ca-file``)."""
        self.idle_minutes = idle_minutes
        self.clock = clock
        self.client: Client | None = None
        self.last_active = clock()
        self.locked_for_idle = False
        self.locked_for_agent = False
        """The keys came from the unlock agent, which ended (``kok lock``)."""
        self.locked_by_app = False
        """The app locked itself (idle, Lock button): the agent's keys are not taken then."""
        self.listen_problem: str | None = None
        self._listener: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._subscribers: set[asyncio.Queue[int]] = set()
        self._opening = asyncio.Lock()
        """One unlock at a time: two pages asking at once must not open two clients."""
        self.unseen = 0
        """Messages that arrived since the inbox was last shown."""

    # --- lock and unlock -------------------------------------------------------------

    @property
    def unlocked(self) -> bool:
        return self.client is not None

    async def unlock(self, passphrase: str) -> Client:
        """Open the profile (a wrong passphrase raises ``ProfileError``), start listening."""
        async with self._opening:
            if self.client is not None:
                return self.client
            client = await Client.open(self.home, self.profile, passphrase,
                                       ca_file=self.ca_file)
            return self._opened(client)

    async def unlock_from_agent(self) -> Client | None:
        """Open the profile with the keys of its running unlock agent, if there is one and
        the app did not lock itself; ``None`` means the passphrase is needed."""
        async with self._opening:
            if self.client is not None:
                return self.client
            if self.locked_by_app:
                return None
            try:
                prof = load_profile(self.home, self.profile)
            except ProfileError:
                return None
            keystore = await asyncio.to_thread(agent_client.open_keystore, prof)
            if keystore is None:
                return None
            try:
                client = await Client.open_keystore(prof, keystore, ca_file=self.ca_file)
            except KokError:
                keystore.secrets.clear()
                return None
            return self._opened(client)

    def _opened(self, client: Client) -> Client:
        self.client = client
        self.locked_for_idle = self.locked_for_agent = self.locked_by_app = False
        self.touch()
        if client.kind in ("org", "staff"):
            self._listener = asyncio.create_task(self._listen(client))
        return client

    @property
    def keys_from_agent(self) -> bool:
        """True while the open keys are the unlock agent's (they end with it)."""
        return self.client is not None and isinstance(self.client.keystore, AgentKeystore)

    async def lock(self, *, idle: bool = False, agent_ended: bool = False) -> None:
        """Forget the keys: stop listening and close the client."""
        self.locked_for_idle = idle
        self.locked_for_agent = agent_ended
        self.locked_by_app = not agent_ended
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
            elif self.keys_from_agent and not await self._agent_alive():
                await self.lock(agent_ended=True)

    async def _agent_alive(self) -> bool:
        client = self.client
        if client is None:
            return False
        return await asyncio.to_thread(agent_client.status, client.profile) is not None

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
