"""``Client``: one opened profile talking to its relay (the library's front door).

Theory of operation
-------------------
``Client.open`` reads ``profile.json``, decrypts the keystore and opens ``state.db``; the
relay is contacted lazily on the first call that needs it (``_connect``): ``/v1/info`` must
serve the network key of the profile's anchor, and its log key is pinned on first use.
From then on every call follows the same order: bring the key-log mirror up to date
(``Directory.sync``, which refuses a rewritten log), check our own standing in that log
(enrolled, not removed, org not revoked), then act. Everything the relay returns is checked
with ``protocol``; an envelope that fails any check goes to quarantine with its code and is
never returned as a message.

Admin operations live in ``client.admin`` (``client.network``, ``client.org``); creating
profiles lives in ``client.onboarding`` (``Client.init_network`` and friends).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from protocol.encoding import b64decode, b64encode, check_org_id
from protocol.errors import (
    BadField,
    LogError,
    LogOrgRevoked,
    LogOrgUnknown,
    ProtocolError,
    SenderInvalid,
    WrongRecipient,
)
from protocol.grants import open_grant
from protocol.keys import BoxKeyPair, SigningKeyPair, fingerprint
from protocol.message import MessagePayload, open_message, seal_message

from .api import RelayApi, check_relay_url
from .directory import Directory
from .errors import (
    AccessError,
    KokError,
    RelayRefused,
    RelayUnreachable,
    UsageError,
    VerificationError,
)
from .keystore import Keystore
from .mailbox import MailboxStore
from .models import (
    DeliveryStatus,
    Message,
    OrgInfo,
    Quarantined,
    RecipientStatus,
    StaffInfo,
    SyncReport,
)
from .profile import Profile, load_profile, save_keystore

if TYPE_CHECKING:
    from .admin import NetworkOffice, OrgAdmin

DEFAULT_TTL = 7 * 86400
MAX_TTL = 30 * 86400
MIN_TTL = 60
WS_CLOSE_SESSION_ENDED = 4401
RECONNECT_MAX = 30.0

# Why an envelope could not be opened on the first try, and a fresher key log might help:
# a sender enrolled (or an epoch created) after our last sync looks unknown until we sync.
_RETRY_AFTER_SYNC = (LogError, SenderInvalid, WrongRecipient)


def epoch_secret_name(org_id: str, epoch: int) -> str:
    """Keystore name of an epoch secret."""
    return f"epoch/{org_id}/{epoch}"


def ttl_seconds(ttl: int | timedelta) -> int:
    """A TTL as whole seconds, between one minute and 30 days."""
    seconds = int(ttl.total_seconds()) if isinstance(ttl, timedelta) else int(ttl)
    if not MIN_TTL <= seconds <= MAX_TTL:
        raise UsageError("bad_ttl", min=MIN_TTL // 60, max=MAX_TTL // 86400)
    return seconds


class Client:
    """An opened profile: send, receive and administer, as an async context manager."""

    def __init__(self, profile: Profile, keystore: Keystore, store: MailboxStore,
                 *, relay: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.profile = profile
        self.keystore = keystore
        self.store = store
        self.clock = clock
        self.directory = Directory(profile.info.network.network_key, store, clock)
        self._relay_override = check_relay_url(relay) if relay else None
        self._api: RelayApi | None = None
        self._log_key: bytes | None = None
        self._info: dict[str, Any] | None = None

    # --- opening and closing ---------------------------------------------------------

    @classmethod
    async def open(cls, home: str | Path | None, profile: str | None, passphrase: str, *,
                   relay: str | None = None,
                   clock: Callable[[], float] = time.time) -> Client:
        """Open profile ``profile`` under ``home`` with its passphrase."""
        prof = load_profile(home, profile)
        keystore = prof.open_keystore(passphrase)
        return await cls._from_parts(prof, keystore, relay=relay, clock=clock)

    @classmethod
    async def _from_parts(cls, prof: Profile, keystore: Keystore, *, relay: str | None = None,
                          clock: Callable[[], float] = time.time) -> Client:
        storage = keystore.secrets.get("storage")
        if storage is None:
            # A profile made by other tools (e.g. the relay's dev bootstrap) may lack the
            # local storage key; it protects only this device's mailbox, so make one now.
            storage = keystore.secrets["storage"] = secrets.token_bytes(32)
            save_keystore(keystore)
        store = await MailboxStore.open(prof.state_path, storage)
        client = cls(prof, keystore, store, relay=relay, clock=clock)
        try:
            await client.directory.load()
        except BaseException:
            await store.close()
            raise
        return client

    async def close(self) -> None:
        """End the relay session and close the mailbox."""
        if self._api is not None:
            await self._api.close()
            self._api = None
        await self.store.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- creating profiles (see client.onboarding) -----------------------------------

    @staticmethod
    async def init_network(home: str | Path | None, profile: str | None, passphrase: str,
                           name: str, **kwargs: Any) -> Any:
        """Create a network-office profile; returns ``(Profile, NetworkAnchor)``."""
        from .onboarding import init_network

        return init_network(home, profile, passphrase, name, **kwargs)

    @staticmethod
    async def new_org(home: str | Path | None, profile: str | None, passphrase: str,
                      **kwargs: Any) -> Any:
        """Create an org-admin profile; returns ``(Profile, admission request bytes)``."""
        from .onboarding import new_org

        return await new_org(home, profile, passphrase, **kwargs)

    @staticmethod
    async def new_staff(home: str | Path | None, profile: str | None, passphrase: str,
                        **kwargs: Any) -> Any:
        """Create a staff profile; returns ``(Profile, enrolment request bytes)``."""
        from .onboarding import new_staff

        return await new_staff(home, profile, passphrase, **kwargs)

    # --- who we are ------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.profile.info.kind

    @property
    def org_id(self) -> str | None:
        return self.profile.info.org_id

    @property
    def staff_id(self) -> str | None:
        return self.profile.info.staff_id

    def now(self) -> int:
        return int(self.clock())

    def signing_key(self) -> SigningKeyPair:
        return SigningKeyPair.from_seed(self._secret("signing"))

    def box_key(self) -> BoxKeyPair:
        return BoxKeyPair.from_seed(self._secret("box"))

    def _secret(self, name: str) -> bytes:
        value = self.keystore.secrets.get(name)
        if value is None:
            raise KokError("keystore_incomplete", name=name)
        return value

    @property
    def network(self) -> NetworkOffice:
        """Network-office operations (admit, revoke); only for a network profile."""
        from .admin import NetworkOffice

        if self.kind != "network":
            raise UsageError("not_network_profile")
        return NetworkOffice(self)

    @property
    def org(self) -> OrgAdmin:
        """Org-admin operations (activate, enrol, remove, rotate, show); only for an org admin."""
        from .admin import OrgAdmin

        if self.kind != "org":
            raise UsageError("not_org_profile")
        return OrgAdmin(self)

    # --- the relay connection --------------------------------------------------------

    @property
    def relay_url(self) -> str:
        url = self._relay_override or self.profile.info.relay
        if not url:
            raise UsageError("no_relay")
        return url

    async def api(self) -> RelayApi:
        """The relay connection, checked against our anchor (connecting on first use)."""
        if self._api is None:
            await self._connect()
        assert self._api is not None
        return self._api

    async def _connect(self) -> None:
        url = self.relay_url
        api = RelayApi(url, log_head=self.directory.head_header)
        try:
            info = await api.info()
            network_key = b64decode(str(info.get("network_key")), size=32, field="network_key")
            log_key = b64decode(str(info.get("log_key")), size=32, field="log_key")
            origin = str(info["origin"])
        except (KeyError, ProtocolError):
            await api.close()
            raise RelayRefused("bad_response", 502, "info") from None
        except BaseException:
            await api.close()
            raise
        if network_key != self.profile.info.network.network_key:
            await api.close()
            raise AccessError("wrong_network", url=url, network=self.profile.info.network.name)
        pinned = self.profile.info.log_key
        if pinned is None:
            self.profile.update(log_key=log_key)
        elif pinned != log_key:
            await api.close()
            raise VerificationError("log_key_changed", url=url)
        if self._relay_override and self._relay_override != self.profile.info.relay:
            self.profile.update(relay=self._relay_override)
        if self.kind in ("org", "staff") and self.staff_id:
            api.use_identity(self.staff_id, self.signing_key(), origin)
        self._api, self._log_key, self._info = api, log_key, info

    async def sync_log(self) -> int:
        """Bring the verified key-log mirror up to date; returns the number of new entries."""
        api = await self.api()
        assert self._log_key is not None
        return await self.directory.sync(api, self._log_key)

    # --- our standing ----------------------------------------------------------------

    def require_staff(self) -> str:
        """Our staff id if the log shows us enrolled, not removed, in a live org."""
        staff_id = self.staff_id
        if self.kind not in ("org", "staff") or staff_id is None or self.org_id is None:
            raise UsageError("not_staff_profile")
        log = self.directory.log
        org = log.orgs.get(self.org_id)
        if org is None:
            raise AccessError("org_not_admitted", org=self.org_id)
        if org.revoked:
            raise AccessError("own_org_revoked", org=self.org_id)
        staff = org.staff.get(staff_id)
        if staff is None or staff.signing_key != self.signing_key().public:
            raise AccessError("not_enrolled", staff=staff_id)
        if not staff.active:
            raise AccessError("staff_removed", staff=staff_id)
        return staff_id

    # --- sync ------------------------------------------------------------------------

    async def sync(self) -> SyncReport:
        """Update the key log, take in new epoch keys, fetch, verify, store and acknowledge."""
        added = await self.sync_log()
        if self.kind == "network":
            return SyncReport(log_entries=added, log_size=self.directory.log.size)
        self.require_staff()
        keys, problems = await self._sync_grants()
        retried = await self._retry_quarantine() if keys else []
        messages, quarantined = await self._fetch()
        return SyncReport(
            log_entries=added, log_size=self.directory.log.size, epoch_keys=keys,
            messages=tuple(retried + messages), quarantined=tuple(quarantined),
            problems=tuple(problems),
        )

    async def _sync_grants(self) -> tuple[int, list[str]]:
        """Open new grants into the keystore; returns (keys added, problem codes)."""
        api = await self.api()
        added, problems = 0, []
        staff_id = self.require_staff()
        for raw in await api.grants():
            try:
                org_id, epoch = str(raw["org_id"]), int(raw["epoch"])
                name = epoch_secret_name(check_org_id(org_id), epoch)
                if name in self.keystore.secrets:
                    continue
                grant = open_grant(b64decode(str(raw["grant"]), field="grant"), staff_id,
                                   self.box_key(), self.directory.log)
                if (grant.org_id, grant.epoch) != (org_id, epoch):
                    raise BadField("the grant is filed under another epoch")
            except ProtocolError as exc:
                problems.append(exc.code)
                continue
            except (KeyError, TypeError, ValueError):
                problems.append("grant_invalid")
                continue
            self.keystore.secrets[name] = grant.secret_key
            added += 1
        if added:
            save_keystore(self.keystore)
        return added, problems

    async def _fetch(self) -> tuple[list[Message], list[Quarantined]]:
        api = await self.api()
        cursor = int(await self.store.get_state("cursor", "0") or 0)
        messages: list[Message] = []
        quarantined: list[Quarantined] = []
        while True:
            page = await api.messages(after=cursor)
            batch = page.get("messages") or []
            for stored in batch:
                got = await self.receive(stored)
                if isinstance(got, Message):
                    messages.append(got)
                elif isinstance(got, Quarantined):
                    quarantined.append(got)
                cursor = max(cursor, int(stored.get("cursor", cursor)))
            cursor = max(cursor, int(page.get("cursor") or cursor))
            await self.store.set_state("cursor", str(cursor))
            if not batch:
                break
        return messages, quarantined

    async def receive(self, stored: dict[str, Any]) -> Message | Quarantined | None:
        """Verify one stored envelope: a ``Message``, a ``Quarantined`` or None (seen before)."""
        relay_id = str(stored.get("id"))
        now = self.now()
        if await self.store.seen_relay_id(relay_id):
            await self._ack(relay_id)
            return None
        try:
            to_org = str(stored["to_org"])
            epoch = int(stored["epoch"])
            sealed = b64decode(str(stored["sealed"]), field="sealed")
        except (KeyError, TypeError, ValueError, ProtocolError):
            return await self._quarantine(relay_id, now, "envelope_invalid", "", {})
        facts = {"to_org": to_org, "epoch": epoch, "sealed": b64encode(sealed)}
        result = await self._open_envelope(relay_id, to_org, epoch, sealed, now, facts)
        await self._ack(relay_id)
        return result

    async def _open_envelope(self, relay_id: str, to_org: str, epoch: int, sealed: bytes,
                             now: int, facts: dict[str, Any]) -> Message | Quarantined:
        if to_org != self.org_id:
            return await self._quarantine(relay_id, now, "wrong_recipient",
                                          f"addressed to {to_org}", facts)
        secret = self.keystore.secrets.get(epoch_secret_name(to_org, epoch))
        if secret is None:
            return await self._quarantine(relay_id, now, "epoch_key_missing",
                                          f"epoch {epoch}", facts)
        opened = None
        for attempt in (1, 2):
            try:
                opened = open_message(sealed, to_org=to_org, epoch=epoch, epoch_secret=secret,
                                      keylog=self.directory.log, now=now)
                break
            except _RETRY_AFTER_SYNC as exc:
                if attempt == 2:
                    return await self._quarantine(relay_id, now, exc.code, exc.message, facts)
                await self.sync_log()
            except ProtocolError as exc:
                return await self._quarantine(relay_id, now, exc.code, exc.message, facts)
        assert opened is not None
        payload = opened.payload
        message_id = payload.id.hex()
        data = payload_record(payload)
        data.update({"to_org": to_org, "epoch": epoch, "relay_id": relay_id})
        if not await self.store.add_message(message_id, relay_id, now, data):
            # Same payload in a new envelope: the relay (or someone) replayed it.
            return await self._quarantine(relay_id, now, "replayed",
                                          f"message {message_id} was delivered before", facts)
        return Message.from_stored(data, now, None)

    async def _quarantine(self, relay_id: str, now: int, code: str, detail: str,
                          facts: dict[str, Any]) -> Quarantined:
        await self.store.quarantine(relay_id, now, code, {**facts, "detail": detail})
        return Quarantined(relay_id=relay_id, code=code, detail=detail, received=now)

    async def _retry_quarantine(self) -> list[Message]:
        """Envelopes that waited for an epoch key we now hold: open them again."""
        opened: list[Message] = []
        for relay_id, received, _code, data in await self.store.quarantined("epoch_key_missing"):
            name = epoch_secret_name(str(data.get("to_org")), int(data.get("epoch", 0)))
            if name not in self.keystore.secrets:
                continue
            await self.store.release(relay_id)
            sealed = b64decode(str(data["sealed"]), field="sealed")
            got = await self._open_envelope(relay_id, str(data["to_org"]), int(data["epoch"]),
                                            sealed, received, data)
            if isinstance(got, Message):
                opened.append(got)
        return opened

    async def _ack(self, relay_id: str) -> None:
        api = await self.api()
        try:
            await api.ack(relay_id)
        except RelayRefused as exc:
            if exc.code != "not_found":  # already deleted (expired, retracted): nothing to do
                raise

    # --- reading ---------------------------------------------------------------------

    async def inbox(self) -> list[Message]:
        """Every verified message in the local mailbox, newest first (no network)."""
        rows = await self.store.messages()
        return sorted((Message.from_stored(d, r, a) for d, r, a in rows),
                      key=lambda m: (m.sent, m.id), reverse=True)

    async def read(self, message_id: str) -> Message:
        """One message by id or unique id prefix; marks it read."""
        full = await self.store.resolve_id(message_id)
        await self.store.mark_read(full, self.now())
        row = await self.store.message(full)
        assert row is not None
        return Message.from_stored(*row)

    async def quarantined(self) -> list[Quarantined]:
        """Envelopes that failed a check (never shown as messages)."""
        return [Quarantined(relay_id=r, code=c, detail=str(d.get("detail", "")), received=t)
                for r, t, c, d in await self.store.quarantined()]

    # --- sending ---------------------------------------------------------------------

    async def send(self, to: Sequence[str], subject: str, body: str,
                   ttl: int | timedelta = DEFAULT_TTL, reply_to: str | None = None) -> str:
        """Seal one envelope per recipient org to its current epoch; returns the message id."""
        recipients = list(dict.fromkeys(o.strip() for o in to if o.strip()))
        if not recipients:
            raise UsageError("no_recipients")
        for org_id in recipients:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,31}", org_id):
                raise UsageError("bad_org_id", org=org_id)
        seconds = ttl_seconds(ttl)
        await self.sync_log()
        staff_id = self.require_staff()
        thread, parent = secrets.token_bytes(16), None
        if reply_to is not None:
            thread, parent = await self._thread_of(reply_to)
        now = self.now()
        payload = MessagePayload(
            id=secrets.token_bytes(16), from_org=str(self.org_id), from_staff=staff_id,
            to=tuple(recipients), sent=now, subject=subject, body=body, thread=thread,
            expires=now + seconds, reply_to=parent,
        )
        try:
            payload.to_bytes()
        except ProtocolError as exc:
            raise UsageError("bad_message", detail=exc.message) from None
        answers = await self._post(payload, seconds)
        by_org = {str(a.get("to_org")): a for a in answers}
        record = {
            "to": recipients, "subject": subject, "thread": thread.hex(),
            "recipients": [{"org": org, "relay_id": str(by_org[org]["id"]),
                            "token": str(by_org[org]["status_token"]),
                            "expires": int(by_org[org].get("expires") or payload.expires)}
                           for org in recipients],
        }
        await self.store.add_sent(payload.id.hex(), now, record)
        return payload.id.hex()

    async def _post(self, payload: MessagePayload, ttl: int) -> list[dict[str, Any]]:
        """Seal and send; a stale epoch (rotation in between) re-syncs and seals again once."""
        api = await self.api()
        for attempt in (1, 2):
            envelopes = []
            for org_id in payload.to:
                epoch = self._current_epoch(org_id)
                sealed = seal_message(payload, self.signing_key(), org_id, epoch.number,
                                      epoch.public_key, secrets.token_bytes(32))
                envelopes.append({"to_org": org_id, "epoch": epoch.number,
                                  "sealed": b64encode(sealed)})
            key = secrets.token_bytes(16)
            try:
                try:
                    return await api.send(key, ttl, envelopes)
                except RelayUnreachable:
                    # The relay may have stored it: the same idempotency key makes a retry safe.
                    await asyncio.sleep(1)
                    return await api.send(key, ttl, envelopes)
            except RelayRefused as exc:
                if exc.code == "stale_epoch" and attempt == 1:
                    await self.sync_log()
                    continue
                raise
        raise RelayRefused("stale_epoch", 409, "")

    def _current_epoch(self, org_id: str) -> Any:
        try:
            return self.directory.log.current_epoch(org_id)
        except LogOrgRevoked:
            raise AccessError("org_revoked", org=org_id) from None
        except LogOrgUnknown:
            if org_id in self.directory.log.orgs:
                raise AccessError("org_not_active", org=org_id) from None
            raise AccessError("unknown_org", org=org_id) from None

    async def _thread_of(self, reply_to: str) -> tuple[bytes, bytes]:
        """(thread, parent id) for a reply: the parent's thread, from our inbox or sent items."""
        try:
            full = await self.store.resolve_id(reply_to)
            row = await self.store.message(full)
            assert row is not None
            return bytes.fromhex(row[0]["thread"]), bytes.fromhex(full)
        except UsageError as exc:
            if exc.code != "unknown_message":
                raise
        full = await self.store.resolve_id(reply_to, table="sent")
        sent = await self.store.sent(full)
        assert sent is not None
        return bytes.fromhex(sent["thread"]), bytes.fromhex(full)

    # --- delivery status -------------------------------------------------------------

    async def status(self, message_id: str) -> DeliveryStatus:
        """Delivery of a message we sent, per recipient org (asked with its status tokens)."""
        return await self._status(message_id, retract=False)

    async def retract(self, message_id: str) -> DeliveryStatus:
        """Withdraw a message we sent from every recipient mailbox that still holds it."""
        return await self._status(message_id, retract=True)

    async def _status(self, message_id: str, *, retract: bool) -> DeliveryStatus:
        full = await self.store.resolve_id(message_id, table="sent")
        record = await self.store.sent(full)
        assert record is not None
        api = await self.api()
        out = []
        for rec in record["recipients"]:
            token = b64decode(rec["token"], size=32, field="token")
            if retract:
                await api.retract(token)
            answer = await api.status(token)
            out.append(RecipientStatus(org=rec["org"], state=str(answer.get("state")),
                                       acknowledged=int(answer.get("acknowledged") or 0),
                                       of=int(answer.get("of") or 0)))
        return DeliveryStatus(id=full, subject=str(record.get("subject", "")),
                              recipients=tuple(out))

    # --- listening -------------------------------------------------------------------

    async def listen(self) -> AsyncIterator[Message]:
        """New verified messages as they arrive over the WebSocket; reconnects by cursor."""
        report = await self.sync()
        for message in report.messages:
            yield message
        delay = 1.0
        while True:
            api = await self.api()
            cursor = int(await self.store.get_state("cursor", "0") or 0)
            try:
                ws = await api.events(after=cursor)
            except RelayUnreachable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            delay = 1.0
            try:
                async for frame in ws:
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        continue
                    arrived = await self._event(frame.data)
                    if arrived is not None:
                        yield arrived
            finally:
                await ws.close()
            if ws.close_code == WS_CLOSE_SESSION_ENDED:
                # Session over (expiry, or we were removed): the log says which.
                await self.sync_log()
                self.require_staff()
                await api.login()

    async def _event(self, text: str) -> Message | None:
        try:
            import json

            event = json.loads(text)
        except ValueError:
            return None
        if not isinstance(event, dict) or event.get("type") != "message":
            return None
        stored = event.get("message")
        if not isinstance(stored, dict):
            return None
        if str(stored.get("to_org")) == self.org_id:
            epoch = stored.get("epoch")
            if (isinstance(epoch, int) and
                    epoch_secret_name(str(self.org_id), epoch) not in self.keystore.secrets):
                await self.sync_log()
                await self._sync_grants()
        got = await self.receive(stored)
        cursor = int(await self.store.get_state("cursor", "0") or 0)
        try:
            cursor = max(cursor, int(stored.get("cursor", cursor)))
        except (TypeError, ValueError):
            pass
        await self.store.set_state("cursor", str(cursor))
        return got if isinstance(got, Message) else None

    # --- directory questions ---------------------------------------------------------

    async def whois(self, org_id: str) -> OrgInfo:
        """An organisation's keys, staff and current epoch from the verified log, and the head."""
        await self.sync_log()
        return self.org_info(org_id)

    def org_info(self, org_id: str) -> OrgInfo:
        """``whois`` without contacting the relay (from the local mirror)."""
        log = self.directory.log
        org = log.orgs.get(org_id)
        if org is None:
            raise AccessError("unknown_org", org=org_id)
        epoch = org.current_epoch
        head = self.directory.head
        return OrgInfo(
            org_id=org.org_id, name=org.name, fingerprint=fingerprint(org.identity_key),
            admitted=org.admitted_at, revoked=org.revoked_at, revoke_reason=org.revoke_reason,
            staff=tuple(StaffInfo(staff_id=s.staff_id, role=s.role,
                                  fingerprint=fingerprint(s.signing_key), added=s.added_at,
                                  removed=s.removed_at) for s in org.staff.values()),
            epoch=epoch.number if epoch else None,
            epoch_created=epoch.created if epoch else None,
            epoch_fingerprint=fingerprint(epoch.public_key) if epoch else None,
            log_size=head.size if head else log.size,
            log_hash=b64encode(head.hash if head else log.head_hash),
        )


def payload_record(payload: MessagePayload) -> dict[str, Any]:
    """A verified payload as the mailbox stores it (ids in hex)."""
    return {
        "id": payload.id.hex(), "from_org": payload.from_org, "from_staff": payload.from_staff,
        "to": list(payload.to), "subject": payload.subject, "body": payload.body,
        "sent": payload.sent, "expires": payload.expires, "thread": payload.thread.hex(),
        "reply_to": payload.reply_to.hex() if payload.reply_to else None,
        "attachments": [a.to_json() for a in payload.attachments],
    }
