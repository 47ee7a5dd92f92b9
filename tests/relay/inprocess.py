"""The relay service in process, over a temporary SQLite store, with a clock the test moves.

    async with service_world(tmp_path, max_ttl=600) as world:
        a = await world.setup_org("org-a")          # admitted, staff enrolled, epoch 1, grants
        session = await world.login(a.staff["org-a/admin"])
        world.advance(3600)                         # time passes; nothing sleeps

Everything goes through the same parser (``relay.wire``) and service calls the handlers
use, only without HTTP, so expiry and ordering are tested at exact instants.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from protocol import SigningKeyPair, b64encode, sign_auth
from protocol.encoding import SignedItem
from relay import wire
from relay.config import LimitsConfig, NetworkAnchor, RelayConfig, ServerConfig
from relay.service import RelayService, Session
from relay.service.domain import SentMessage
from relay.store import SqliteStore
from tests.support.actors import Org, Staff, admit, envelope, now, rand


@dataclasses.dataclass
class World:
    """One relay service, its network office key and the test's clock."""

    relay: RelayService
    network: SigningKeyPair
    clock: int

    def now(self) -> int:
        return self.clock

    def advance(self, seconds: int) -> int:
        """Move the clock on; the new time."""
        self.clock += seconds
        return self.clock

    async def append(self, item: SignedItem) -> None:
        await self.relay.directory.append(item.to_json(), self.clock)

    async def setup_org(self, org_id: str, names: tuple[str, ...] = ("admin", "alice")) -> Org:
        """Admit an org, enrol ``names`` (the first as admin), publish epoch 1 and grants."""
        org, item = admit(self.network, org_id)
        await self.append(item)
        for i, name in enumerate(names):
            _, record = org.new_staff(name, "admin" if i == 0 else "staff")
            await self.append(record)
        await self.append(org.new_epoch())
        admin = await self.login(next(iter(org.staff.values())))
        upload = wire.grant_upload(org_id, str(org.epoch), {"grants": org.grants()})
        await self.relay.grants.upload(admin, upload, self.clock)
        return org

    async def login(self, staff: Staff) -> Session:
        sessions = self.relay.sessions
        nonce, _ = await sessions.challenge(staff.staff_id, self.clock)
        signature = sign_auth(staff.signing, self.relay.config.origin, nonce)
        request = wire.login_request({"staff_id": staff.staff_id, "nonce": b64encode(nonce),
                                      "signature": b64encode(signature)})
        return (await sessions.login(request, self.clock)).session

    async def send(self, session: Session, envelopes: list[dict[str, Any]], *,
                   ttl: int = 3600, key: bytes | None = None) -> list[SentMessage]:
        body = {"idempotency_key": b64encode(key or rand(16)), "ttl": ttl,
                "envelopes": envelopes}
        return await self.relay.mailbox.send(session, wire.send_request(body), self.clock)

    async def send_one(self, sender: Staff, to: Org, *, ttl: int = 3600) -> SentMessage:
        session = await self.login(sender)
        return (await self.send(session, [envelope(sender, to)], ttl=ttl))[0]


@contextlib.asynccontextmanager
async def service_world(tmp_path: Path, **limits: Any) -> AsyncIterator[World]:
    """A started relay service over ``tmp_path``; ``limits`` override ``LimitsConfig``."""
    network = SigningKeyPair.from_seed(rand())
    config = RelayConfig(
        directory=tmp_path,
        network=NetworkAnchor("test network", network.public, network.fingerprint),
        log_seed=rand(),
        token_key=rand(),
        server=ServerConfig(public_url="http://127.0.0.1:9"),
        limits=dataclasses.replace(LimitsConfig(), **limits),
    )
    store = SqliteStore(config.database_path)
    await store.open()
    relay = RelayService(config, store)
    world = World(relay, network, now())
    try:
        await relay.start(world.clock)
        yield world
    finally:
        await relay.hub.close_all()
        await store.close()
