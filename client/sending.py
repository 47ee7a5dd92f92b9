"""Sending: seal one envelope per recipient org, post it, keep the status tokens.

Theory of operation
-------------------
A message is one payload (signed by the staff key) sealed once per recipient organisation
to that organisation's current epoch key from the verified key log. The envelopes go to
the relay in one request with a fresh idempotency key, so a retry after a lost answer
stores nothing twice. If an organisation rotated its key in between (``409 stale_epoch``)
the log is synced and the message sealed again, once. The relay's status tokens, the only
way to ask about or retract the message later, are kept encrypted in the mailbox.

Offline: a message sent while the relay cannot be reached waits in the outbox (encrypted
at rest) and goes with the next sync under the idempotency key it got now. Without
attachments it is sealed now; with attachments each file is encrypted into the profile now
(``client.outbox_files``), and the message is signed and sealed once its files are uploaded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol.encoding import ID_RE, b64decode, b64encode
from protocol.errors import LogOrgRevoked, LogOrgUnknown, ProtocolError
from protocol.keylog import EpochState
from protocol.message import (
    LogPosition,
    MessagePayload,
    parse_payload,
    retraction_notice,
    seal_message,
)

from .api import RelayApi
from .drops import (
    AttachmentSource,
    FileProgress,
    check_sources,
    upload_attachments,
    withdraw_drops,
)
from .errors import AccessError, RelayRefused, RelayUnreachable, UsageError
from .models import DeliveryStatus, RecipientStatus
from .outbox_files import remove_snapshots, take_snapshots, upload_snapshots
from .reading import read_reports_sent_by
from .transfer import TransferError
from .verification import require_unchanged

if TYPE_CHECKING:
    from .context import ClientContext

DEFAULT_TTL = 7 * 86400
MAX_TTL = 30 * 86400
MIN_TTL = 60


def ttl_seconds(ttl: int | timedelta) -> int:
    """A TTL as whole seconds, between one minute and 30 days."""
    seconds = int(ttl.total_seconds()) if isinstance(ttl, timedelta) else int(ttl)
    if not MIN_TTL <= seconds <= MAX_TTL:
        raise UsageError("bad_ttl", min=MIN_TTL // 60, max=MAX_TTL // 86400)
    return seconds


class Sender:
    """The sending half of a ``Client``."""

    def __init__(self, ctx: ClientContext) -> None:
        self.ctx = ctx

    async def send(self, to: Sequence[str], subject: str, body: str,
                   ttl: int | timedelta = DEFAULT_TTL, reply_to: str | None = None,
                   attachments: Sequence[AttachmentSource] = (),
                   progress: FileProgress | None = None) -> str:
        """Seal one envelope per recipient org to its current epoch; returns the message id."""
        recipients = list(dict.fromkeys(o.strip() for o in to if o.strip()))
        if not recipients:
            raise UsageError("no_recipients")
        for org_id in recipients:
            if not ID_RE.fullmatch(org_id):
                raise UsageError("bad_org_id", org=org_id)
        seconds = ttl_seconds(ttl)
        files = check_sources(attachments)  # refuse a missing file before anything
        offline = False
        try:
            await self.ctx.sync_log()
        except RelayUnreachable:
            offline = True  # queue it: sealed now, or with its files when the relay is back
        staff_id = self.ctx.require_staff()
        # a verified org whose identity key changed since: compare the safety code first
        await require_unchanged(self.ctx, recipients)
        thread, parent = secrets.token_bytes(16), None
        if reply_to is not None:
            thread, parent = await self._thread_of(reply_to)
        now = self.ctx.now()
        # Text typed or saved on some systems arrives decomposed (NFD); signed JSON is NFC.
        subject, body = unicodedata.normalize("NFC", subject), unicodedata.normalize("NFC", body)
        payload = MessagePayload(
            id=secrets.token_bytes(16), from_org=str(self.ctx.org_id), from_staff=staff_id,
            to=tuple(recipients), sent=now, subject=subject, body=body, thread=thread,
            expires=now + seconds, reply_to=parent,
            log=LogPosition.of(self.ctx.directory.log),  # recipients compare it (SPEC 9.3)
        )
        try:
            payload.to_bytes()
        except ProtocolError as exc:
            raise UsageError("bad_message", detail=exc.message) from None
        created_drops: list[tuple[str, str]] = []
        uploaded = not files
        key = secrets.token_bytes(16)
        try:
            if files:
                for org_id in recipients:  # a revoked or unknown org: say so before any upload
                    self._current_epoch(org_id)
            if files and not offline:  # valid: upload the files, then sign their drops into it
                payload = dataclasses.replace(payload, attachments=await upload_attachments(
                    self.ctx, files, recipients, seconds, progress, created_drops))
                uploaded = True
            envelopes = self._seal(payload) if uploaded else []
            if offline:
                raise RelayUnreachable(self.ctx.link.url)
            answers = await self._post(payload, seconds, envelopes, key)
        except RelayUnreachable:
            if not uploaded:
                # The files wait as encrypted snapshots and go with the message: never the
                # message without them, nor with a file changed since.
                await withdraw_drops(self.ctx, created_drops)
                await self._queue_with_files(payload, files, seconds, key, progress)
                return payload.id.hex()
            # Kept, encrypted, and sent by the next sync with the same idempotency key: if
            # this attempt reached the relay after all, the relay stores it only once.
            await self.ctx.store.add_outbox(payload.id.hex(), now, payload.expires, {
                "payload": payload.to_bytes().hex(), "ttl": seconds, "key": b64encode(key),
                "envelopes": envelopes, "drops": created_drops})
            return payload.id.hex()
        except BaseException:
            # no message will refer to these drops: delete them now rather than at their TTL
            await withdraw_drops(self.ctx, created_drops)
            raise
        await self._record(payload, answers, now, created_drops)
        return payload.id.hex()

    async def _queue_with_files(self, payload: MessagePayload, files: list[tuple[Path, str]],
                                ttl: int, key: bytes, progress: FileProgress | None) -> None:
        """Queue a message with attachments: each file encrypted into the profile now."""
        message_id = payload.id.hex()
        kept = await take_snapshots(self.ctx.profile.dir, message_id, files, progress)
        try:
            await self.ctx.store.add_outbox(message_id, payload.sent, payload.expires, {
                "payload": payload.to_bytes().hex(), "ttl": ttl, "key": b64encode(key),
                "envelopes": [], "drops": [], "files": kept})
        except BaseException:
            await asyncio.to_thread(remove_snapshots, self.ctx.profile.dir, message_id)
            raise

    async def _upload_queued(self, message_id: str, queued: int, data: dict[str, Any]
                             ) -> dict[str, Any]:
        """Upload a queued message's snapshots; the outbox entry, now sealed, to post.

        The message is signed now, with its drops and our current log position, and sealed
        to the epochs current now; so its ``sent`` is now too (an epoch created while we were
        away must not predate it, SPEC 9.3 step 12). Its ``expires`` and id stay.
        """
        payload = parse_payload(bytes.fromhex(str(data["payload"])))
        now = self.ctx.now()
        ttl = max(1, payload.expires - now)
        created: list[tuple[str, str]] = []
        api = await self.ctx.api()
        try:
            attachments = await upload_snapshots(api, self.ctx.profile.dir, message_id,
                                                 list(data["files"]), list(payload.to), ttl,
                                                 created)
            payload = dataclasses.replace(payload, attachments=attachments, sent=now,
                                          log=LogPosition.of(self.ctx.directory.log))
            sealed = {"payload": payload.to_bytes().hex(), "ttl": ttl, "key": data["key"],
                      "envelopes": self._seal(payload), "drops": [list(d) for d in created]}
            await self.ctx.store.add_outbox(message_id, queued, payload.expires, sealed)
        except BaseException:
            await withdraw_drops(self.ctx, created)
            raise
        await asyncio.to_thread(remove_snapshots, self.ctx.profile.dir, message_id)
        return sealed

    async def _record(self, payload: MessagePayload, answers: list[dict[str, Any]],
                      sent: int, drops: Sequence[Sequence[str]] = ()) -> None:
        """Keep the relay's status tokens of a sent message (encrypted, in the mailbox).

        The drop ids and upload tokens of its attachments are kept too: retracting the
        message deletes its files on the relay with them.
        """
        by_org = {str(a.get("to_org")): a for a in answers}
        record = {
            "to": list(payload.to), "subject": payload.subject, "thread": payload.thread.hex(),
            "recipients": [{"org": org, "relay_id": str(by_org[org]["id"]),
                            "token": str(by_org[org]["status_token"]),
                            "expires": int(by_org[org].get("expires") or payload.expires)}
                           for org in payload.to],
            "drops": [[str(drop), str(token)] for drop, token in drops],
        }
        await self.ctx.store.add_sent(payload.id.hex(), sent, record)

    def _seal(self, payload: MessagePayload) -> list[dict[str, Any]]:
        """One envelope per recipient org, sealed to its current epoch in our verified log."""
        envelopes = []
        for org_id in payload.to:
            epoch = self._current_epoch(org_id)
            sealed = seal_message(payload, self.ctx.signing_key(), org_id, epoch.number,
                                  epoch.public_key, secrets.token_bytes(32))
            envelopes.append({"to_org": org_id, "epoch": epoch.number,
                              "sealed": b64encode(sealed)})
        return envelopes

    async def _post(self, payload: MessagePayload, ttl: int, envelopes: list[dict[str, Any]],
                    key: bytes) -> list[dict[str, Any]]:
        """Send; a stale epoch (rotation in between) re-syncs and seals again once."""
        api = await self.ctx.api()
        try:
            # repeated by the transport after a lost answer: the idempotency key makes it safe
            return await api.send(key, ttl, envelopes)
        except RelayRefused as exc:
            if exc.code != "stale_epoch":
                raise
        await self.ctx.sync_log()
        # Sealed anew to the new epoch, so signed anew: the log position must hold that
        # epoch's record and the message may not be dated before the epoch existed (SPEC
        # 9.3: the log-position check, step 12). A message queued before it is dated now.
        payload = dataclasses.replace(payload, sent=max(payload.sent, self.ctx.now()),
                                      log=LogPosition.of(self.ctx.directory.log))
        return await api.send(secrets.token_bytes(16), ttl, self._seal(payload))

    async def flush_outbox(self, only: str | None = None
                           ) -> tuple[list[str], list[str], list[str]]:
        """Send what waited for the relay; returns (sent ids, ids expired unsent, ids whose
        file snapshots were damaged: dropped and reported, never sent without their files).

        A message past its signed expiry is not sent any more (recipients would refuse
        it): it leaves the outbox and is reported, never dropped silently. A refusal keeps
        the message for the next sync (until it expires). ``only``: just that one.
        A retraction notice leaves no sent record of its own (its message's record names it).
        """
        sent: list[str] = []
        expired: list[str] = []
        failed: list[str] = []
        for message_id, queued, expires, data in await self.ctx.store.outbox():
            if only is not None and message_id != only:
                continue
            if expires <= self.ctx.now():
                await self.ctx.store.remove_outbox(message_id)
                await asyncio.to_thread(remove_snapshots, self.ctx.profile.dir, message_id)
                expired.append(message_id)
                continue
            if data.get("files"):  # queued with attachments: upload them first
                try:
                    data = await self._upload_queued(message_id, queued, data)
                except RelayUnreachable:
                    break
                except TransferError as exc:
                    if exc.code == "snapshot_damaged":  # it can never go as it was written
                        await self.ctx.store.remove_outbox(message_id)
                        await asyncio.to_thread(remove_snapshots, self.ctx.profile.dir,
                                                message_id)
                        failed.append(message_id)
                    continue
                except (RelayRefused, AccessError):
                    continue  # kept until it can go or expires (then reported)
            payload = parse_payload(bytes.fromhex(str(data["payload"])))
            try:
                answers = await self._post(payload, int(data["ttl"]), list(data["envelopes"]),
                                           b64decode(str(data["key"]), size=16, field="key"))
            except RelayUnreachable:
                break  # still away: everything waits for the next sync
            except RelayRefused:
                continue
            if payload.is_retraction:
                pass
            elif await self.ctx.store.sent(message_id) is None:  # not if a crash came between
                await self._record(payload, answers, queued, list(data.get("drops") or ()))
            await self.ctx.store.remove_outbox(message_id)
            sent.append(message_id)
        return sent, expired, failed

    def _current_epoch(self, org_id: str) -> EpochState:
        try:
            return self.ctx.directory.log.current_epoch(org_id)
        except LogOrgRevoked:
            raise AccessError("org_revoked", org=org_id) from None
        except LogOrgUnknown:
            if org_id in self.ctx.directory.log.orgs:
                raise AccessError("org_not_active", org=org_id) from None
            raise AccessError("unknown_org", org=org_id) from None

    async def _thread_of(self, reply_to: str) -> tuple[bytes, bytes]:
        """(thread, parent id) for a reply: the parent's thread, from our inbox or sent items."""
        try:
            full = await self.ctx.store.resolve_id(reply_to)
            row = await self.ctx.store.message(full)
            assert row is not None
            return bytes.fromhex(row[0]["thread"]), bytes.fromhex(full)
        except UsageError as exc:
            if exc.code != "unknown_message":
                raise
        full = await self.ctx.store.resolve_id(reply_to, table="sent")
        sent = await self.ctx.store.sent(full)
        assert sent is not None
        return bytes.fromhex(sent["thread"]), bytes.fromhex(full)

    async def status(self, message_id: str) -> DeliveryStatus:
        """Delivery of a message we sent, per recipient org (asked with its status tokens)."""
        return await self._status(message_id, retract=False)

    async def retract(self, message_id: str) -> DeliveryStatus:
        """Withdraw a message we sent: from every recipient mailbox that still holds it, and
        from the devices of recipients that fetched it already (a signed retraction notice,
        SPEC 9.4); its files are deleted on the relay."""
        return await self._status(message_id, retract=True)

    async def _status(self, message_id: str, *, retract: bool) -> DeliveryStatus:
        full = await self.ctx.store.resolve_id(message_id, table="sent")
        record = await self.ctx.store.sent(full)
        if record is None:
            raise UsageError("unknown_message", id=message_id)
        api = await self.ctx.api()
        out = []
        for rec in record["recipients"]:
            token = b64decode(rec["token"], size=32, field="token")
            if retract:
                try:
                    await api.retract(token)
                except RelayRefused as exc:
                    # Already delivered or expired there: the notice below tells its readers.
                    if exc.code not in ("not_retractable", "not_found"):
                        raise
            out.append(await self._recipient_status(api, rec["org"], token))
        status = DeliveryStatus(id=full, subject=str(record.get("subject", "")),
                                recipients=tuple(out))
        if not retract:
            return status
        # Someone there may hold it: everywhere except where the relay deleted it unread.
        holders = tuple(r.org for r in out if r.state != "retracted" or r.acknowledged)
        if holders:
            await self._notify_retraction(full, record, holders)
        # Nobody keeps the message now (recipients that have it drop its file keys on the
        # notice): its files go too, rather than at their TTL.
        await withdraw_drops(self.ctx, [(str(d), str(t)) for d, t in record.get("drops") or ()])
        return dataclasses.replace(status, notified=holders)

    async def _notify_retraction(self, message_id: str, record: dict[str, Any],
                                 holders: tuple[str, ...]) -> None:
        """Send the signed notice that withdraws ``message_id`` from ``holders`` (SPEC 9.4).

        Made once: it waits in the outbox under its own idempotency key, and the sent record
        names it before it leaves, so a retried retract sends it again only if it is still
        queued, and the relay stores it once.
        """
        queued = record.get("retraction")
        if queued is None:
            await self.ctx.sync_log()
            now = self.ctx.now()
            expires = max(int(r["expires"]) for r in record["recipients"])
            # until the original cannot arrive any more, and long enough for people away
            longest = min(MAX_TTL, self.ctx.link.limit("max_ttl") or MAX_TTL)
            ttl = min(max(expires - now, DEFAULT_TTL), longest)
            notice = retraction_notice(
                bytes.fromhex(message_id), id=secrets.token_bytes(16),
                from_staff=self.ctx.require_staff(), to=holders, sent=now,
                expires=now + ttl, thread=bytes.fromhex(str(record["thread"])),
                log=LogPosition.of(self.ctx.directory.log))
            queued = notice.id.hex()
            await self.ctx.store.add_outbox(queued, now, notice.expires, {
                "payload": notice.to_bytes().hex(), "ttl": ttl,
                "key": b64encode(secrets.token_bytes(16)), "envelopes": self._seal(notice),
                "drops": [], "retracts": message_id})
            await self.ctx.store.update_sent(message_id, {**record, "retraction": queued})
        await self.flush_outbox(only=str(queued))

    async def _recipient_status(self, api: RelayApi, org: str, token: bytes
                                ) -> RecipientStatus:
        # whether that org's staff send read reports is its signed setting in our log
        reports = read_reports_sent_by(self.ctx, org)
        try:
            answer = await api.status(token)
        except RelayRefused as exc:
            if exc.code != "not_found":
                raise
            # Past its expiry plus the relay's grace period, the relay forgets the token.
            return RecipientStatus(org=org, state="unknown", acknowledged=0, of=0,
                                   read_reports=reports)
        read = answer.get("read")
        return RecipientStatus(org=org, state=str(answer.get("state")),
                               acknowledged=int(answer.get("acknowledged") or 0),
                               of=int(answer.get("of") or 0),
                               read=read if isinstance(read, int) and read >= 0 else None,
                               read_reports=reports)
