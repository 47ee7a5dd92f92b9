"""Receiving: epoch keys from grants, envelopes from the mailbox, verification, quarantine.

Theory of operation
-------------------
``Receiver.sync_grants`` opens every new grant with ``protocol.open_grant`` (checked against
the verified key log) into the keystore. ``Receiver.fetch`` pages through the relay mailbox
after the stored cursor and hands each envelope to ``receive``, which either stores a
verified message (encrypted at rest), or quarantines the envelope with the code of the
check that failed, and then acknowledges it. An envelope that fails because our key log
is older than the message (a sender enrolled a moment ago) is retried once after a log
sync; one sealed to an epoch key we do not hold yet waits in quarantine and is opened again
when a grant brings that key. The same payload arriving in a second envelope is a replay.
A retraction notice (SPEC 9.4) is opened like any message but never stored as one: it
marks its signer's message withdrawn, now or when that message arrives.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from protocol.encoding import b64decode, b64encode, check_org_id
from protocol.errors import (
    BadField,
    DecryptFailed,
    LogError,
    ProtocolError,
    SenderInvalid,
    WrongRecipient,
)
from protocol.grants import Grant, grant_log_lag, open_grant
from protocol.keylog import MAX_SKEW
from protocol.message import (
    MessagePayload,
    missed_epoch,
    open_message,
    sealed_log_lag,
    withdrawn_by,
)

from . import devices
from .errors import RelayRefused
from .lifecycle import epoch_secret_name, held_epoch_secret, was_forgotten
from .models import Message, Quarantined, Withdrawal
from .profile import save_keystore

if TYPE_CHECKING:
    from .context import ClientContext

# Why an envelope could not be opened on the first try, and a fresher key log might help:
# a sender enrolled (or an epoch created) after our last sync looks unknown until we sync.
_RETRY_AFTER_SYNC = (LogError, SenderInvalid, WrongRecipient)
# Refusals that a wrong clock on this computer can cause: kept and checked again.
CLOCK_CODES = ("bad_timestamp", "message_expired")


def payload_record(payload: MessagePayload) -> dict[str, Any]:
    """A verified payload as the mailbox stores it (ids in hex)."""
    return {
        "id": payload.id.hex(), "from_org": payload.from_org, "from_staff": payload.from_staff,
        "to": list(payload.to), "subject": payload.subject, "body": payload.body,
        "sent": payload.sent, "expires": payload.expires, "thread": payload.thread.hex(),
        "reply_to": payload.reply_to.hex() if payload.reply_to else None,
        "attachments": [a.to_json() for a in payload.attachments],
    }


def _receipt_time(stored: dict[str, Any]) -> int | None:
    """The relay's receipt time of an envelope (SPEC 9.3 step 6), if it gave a usable one."""
    received = stored.get("received")
    if isinstance(received, int) and not isinstance(received, bool) and received >= 0:
        return received
    return None


class Receiver:
    """The receiving half of a ``Client``."""

    def __init__(self, ctx: ClientContext) -> None:
        self.ctx = ctx

    async def sync_grants(self) -> tuple[int, list[str]]:
        """Open new grants into the keystore; returns (keys added, problem codes)."""
        api = await self.ctx.api()
        added, problems = 0, []
        staff_id = self.ctx.require_staff()
        for raw in await api.grants():
            try:
                org_id, epoch = str(raw["org_id"]), int(raw["epoch"])
                name = epoch_secret_name(check_org_id(org_id), epoch)
                if (held_epoch_secret(self.ctx, org_id, epoch) is not None
                        or was_forgotten(self.ctx, org_id, epoch)):
                    continue  # held already, or retired for forward secrecy: never again
                grant = self._open_grant(b64decode(str(raw["grant"]), field="grant"),
                                         staff_id)
                if (grant.org_id, grant.epoch) != (org_id, epoch):
                    raise BadField("the grant is filed under another epoch")
                if not await self._same_history(grant):
                    # the relay showed the admin another history (one where, say, a removed
                    # colleague was still a member): a key from there is not taken
                    problems.append("log_forked")
                    continue
            except ProtocolError as exc:
                problems.append(exc.code)
                continue
            except (KeyError, TypeError, ValueError):
                problems.append("grant_invalid")
                continue
            self.ctx.keystore.secrets[name] = grant.secret_key
            added += 1
        if added:
            save_keystore(self.ctx.keystore)
        return added, problems

    async def _same_history(self, grant: Grant) -> bool:
        """The admin's signed position agrees with our log (after a sync if it is ahead)."""
        lag = grant_log_lag(self.ctx.directory.log, grant)
        if lag is not None and lag < 0:
            await self.ctx.sync_log()
            lag = grant_log_lag(self.ctx.directory.log, grant)
        return lag is not None and lag >= 0

    def _open_grant(self, sealed: bytes, staff_id: str) -> Grant:
        """Open with the current box key, else with an older one this device still holds."""
        held = [devices.current_box_key(self.ctx),
                *devices.held_box_keys(self.ctx).values()]
        for box in held:
            try:
                return open_grant(sealed, staff_id, box, self.ctx.directory.log)
            except DecryptFailed:
                continue
        raise DecryptFailed("the grant opens with none of this device's box keys")

    async def fetch(self) -> tuple[list[Message], list[Quarantined], list[Withdrawal]]:
        """Every envelope after the stored cursor: verified, stored or quarantined, acked."""
        api = await self.ctx.api()
        cursor = int(await self.ctx.store.get_state("cursor", "0") or 0)
        messages: list[Message] = []
        quarantined: list[Quarantined] = []
        withdrawals: list[Withdrawal] = []
        while True:
            page = await api.messages(after=cursor)
            batch = page.get("messages") or []
            for stored in batch:
                got = await self.receive(stored)
                if isinstance(got, Message):
                    messages.append(got)
                elif isinstance(got, Quarantined):
                    quarantined.append(got)
                elif isinstance(got, Withdrawal):
                    withdrawals.append(got)
                cursor = max(cursor, int(stored.get("cursor", cursor)))
            cursor = max(cursor, int(page.get("cursor") or cursor))
            await self.ctx.store.set_state("cursor", str(cursor))
            if not batch:
                break
        return messages, quarantined, withdrawals

    async def receive(self, stored: dict[str, Any]
                      ) -> Message | Quarantined | Withdrawal | None:
        """Verify one stored envelope: a ``Message``, a ``Quarantined``, a ``Withdrawal`` (a
        retraction notice) or None (seen before)."""
        relay_id = str(stored.get("id"))
        now = self.ctx.now()
        if await self.ctx.store.seen_relay_id(relay_id):
            await self._ack(relay_id)
            return None
        try:
            to_org = str(stored["to_org"])
            epoch = int(stored["epoch"])
            sealed = b64decode(str(stored["sealed"]), field="sealed")
        except (KeyError, TypeError, ValueError, ProtocolError):
            return await self._quarantine(relay_id, now, "envelope_invalid", "", {})
        received = _receipt_time(stored)
        facts = {"to_org": to_org, "epoch": epoch, "sealed": b64encode(sealed),
                 "received": received}
        result = await self._open_envelope(relay_id, to_org, epoch, sealed, now, facts)
        await self._ack(relay_id)
        return result

    async def _open_envelope(self, relay_id: str, to_org: str, epoch: int, sealed: bytes,
                             now: int, facts: dict[str, Any]
                             ) -> Message | Quarantined | Withdrawal:
        if to_org != self.ctx.org_id:
            return await self._quarantine(relay_id, now, "wrong_recipient",
                                          f"addressed to {to_org}", facts)
        secret = held_epoch_secret(self.ctx, to_org, epoch)
        if secret is None:
            return await self._quarantine(relay_id, now, "epoch_key_missing",
                                          f"epoch {epoch}", facts)
        opened = None
        for attempt in (1, 2):
            try:
                opened = open_message(sealed, to_org=to_org, epoch=epoch, epoch_secret=secret,
                                      keylog=self.ctx.directory.log, now=now,
                                      received=_receipt_time(facts))
                break
            except _RETRY_AFTER_SYNC as exc:
                if attempt == 2:
                    return await self._quarantine(relay_id, now, exc.code, exc.message, facts)
                await self.ctx.sync_log()
            except ProtocolError as exc:
                return await self._quarantine(relay_id, now, exc.code, exc.message, facts)
        assert opened is not None
        payload = opened.payload
        log = self.ctx.directory.log
        lag = sealed_log_lag(log, payload.log, to_org, epoch)
        if lag is not None and lag < 0:  # the sender saw more than we hold: catch up first
            await self.ctx.sync_log()
            log = self.ctx.directory.log
            lag = sealed_log_lag(log, payload.log, to_org, epoch)
        if lag is None or lag < 0:
            # the relay showed the sender another history, or withholds entries from us
            return await self._quarantine(
                relay_id, now, "log_forked",
                f"the sender's key log at {payload.log.size} entries differs from ours "
                f"({log.size} entries)", facts)
        if payload.is_retraction:
            return await self._withdraw(relay_id, now, payload, facts)
        message_id = payload.id.hex()
        data = payload_record(payload)
        data.update({"to_org": to_org, "epoch": epoch, "relay_id": relay_id})
        # sealed to an epoch the sender's (frozen?) log had not seen replaced: warn
        data["sender_log_behind"] = missed_epoch(log, payload.log, to_org, epoch)
        stored = await self.ctx.store.add_message(message_id, relay_id, now, data)
        if stored is None:
            # Same payload in a new envelope: the relay (or someone) replayed it.
            return await self._quarantine(relay_id, now, "replayed",
                                          f"message {message_id} was delivered before", facts)
        return Message.from_stored(stored, now, None)

    async def _withdraw(self, relay_id: str, now: int, notice: MessagePayload,
                        facts: dict[str, Any]) -> Withdrawal | Quarantined:
        """Apply a verified retraction notice (SPEC 9.4); it is never shown as a message.

        It withdraws its signer's message of that id only: naming a message we hold from
        someone else is refused and changes nothing. A message not held yet is remembered
        until no message with that sender and id can be accepted any more.
        """
        assert notice.retracts is not None
        target = notice.retracts.hex()
        try:
            sender, _ = withdrawn_by(notice, await self.ctx.store.senders_of(target))
        except ProtocolError as exc:
            return await self._quarantine(relay_id, now, exc.code, exc.message, facts)
        held = await self.ctx.store.withdraw(sender, target, notice.sent,
                                             notice.expires + MAX_SKEW, now)
        return Withdrawal(id=target, from_staff=sender, held=held)

    async def _quarantine(self, relay_id: str, now: int, code: str, detail: str,
                          facts: dict[str, Any]) -> Quarantined:
        await self.ctx.store.quarantine(relay_id, now, code, {**facts, "detail": detail})
        return Quarantined(relay_id=relay_id, code=code, detail=detail, received=now)

    async def retry_quarantine(self) -> list[Message | Withdrawal]:
        """Open again what waited: for an epoch key we now hold, or for a clock that is right.

        A message refused for its time (dated in the future, or expired) may have met a
        wrong clock on this computer; it is kept, and checked again at the current time on
        every sync (``Client.sync`` only gets here once the clock agrees with the relay's).
        """
        opened: list[Message | Withdrawal] = []
        waiting = await self.ctx.store.quarantined("epoch_key_missing")
        for code in CLOCK_CODES:
            waiting += await self.ctx.store.quarantined(code)
        for relay_id, received, code, data in waiting:
            if "sealed" not in data:
                continue
            name = epoch_secret_name(str(data.get("to_org")), int(data.get("epoch", 0)))
            if name not in self.ctx.keystore.secrets:
                continue
            await self.ctx.store.release(relay_id)
            sealed = b64decode(str(data["sealed"]), field="sealed")
            when = self.ctx.now() if code in CLOCK_CODES else received
            got = await self._open_envelope(relay_id, str(data["to_org"]), int(data["epoch"]),
                                            sealed, when, data)
            if isinstance(got, Message | Withdrawal):
                opened.append(got)
        return opened

    async def _ack(self, relay_id: str) -> None:
        api = await self.ctx.api()
        try:
            await api.ack(relay_id)
        except RelayRefused as exc:
            if exc.code != "not_found":  # already deleted (expired, retracted): nothing to do
                raise

    async def event(self, text: str) -> Message | None:
        """One WebSocket text frame: a new verified message, or None (anything else)."""
        try:
            event = json.loads(text)
        except ValueError:
            return None
        if not isinstance(event, dict) or event.get("type") != "message":
            return None
        stored = event.get("message")
        if not isinstance(stored, dict):
            return None
        to_org = str(stored.get("to_org"))
        if to_org == self.ctx.org_id:
            epoch = stored.get("epoch")
            held = self.ctx.keystore.secrets
            if isinstance(epoch, int) and epoch_secret_name(to_org, epoch) not in held:
                await self.ctx.sync_log()
                await self.sync_grants()
        got = await self.receive(stored)
        cursor = int(await self.ctx.store.get_state("cursor", "0") or 0)
        try:
            cursor = max(cursor, int(stored.get("cursor", cursor)))
        except (TypeError, ValueError):
            pass
        await self.ctx.store.set_state("cursor", str(cursor))
        return got if isinstance(got, Message) else None
