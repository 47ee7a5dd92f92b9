"""``Client``: one opened profile talking to its relay (the library's front door).

Theory of operation
-------------------
``Client.open`` reads ``profile.json``, decrypts the keystore and opens ``state.db``; the
relay is contacted lazily on the first call that needs it (``client.relay_link``):
``/v1/info`` must serve the network key of the profile's anchor, and its log key is pinned
on first use.
From then on every call follows the same order: bring the key-log mirror up to date
(``Directory.sync``, which refuses a rewritten log), check our own standing in that log
(enrolled, not removed, org not revoked), then act. Everything the relay returns is checked
with ``protocol``; an envelope that fails any check goes to quarantine with its code and is
never returned as a message.

Admin operations live in ``client.admin`` (``client.network``, ``client.org``); creating
profiles lives in ``client.onboarding`` (``Client.init_network`` and friends). Those
modules, and sending, receiving, lifecycle, verification and attachments, work on a
``ClientContext`` (``client.context``) that ``Client`` builds once, never on ``Client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from protocol.events import CLOSE_SESSION_ENDED
from protocol.keys import BoxKeyPair, SigningKeyPair

from . import device_link, devices, lifecycle, reading, retention, verification
from . import export as export_mod
from . import org_settings as settings_of_orgs
from .api import RelayApi, check_relay_url
from .attachment_stream import AttachmentStream, open_attachment
from .context import ClientContext
from .conversations import ThreadEntry, search_messages, thread_of
from .directory import Directory
from .drops import AttachmentSource, FileProgress, SavedFile, save_attachments
from .errors import (
    KokError,
    RelayUnreachable,
    UsageError,
)
from .keystore import Keystore
from .mailbox import MailboxStore
from .models import (
    DeliveryStatus,
    Message,
    OrgInfo,
    Quarantined,
    SyncReport,
    Withdrawal,
)
from .onboarding import (
    LogCheck,
    device_profile,
    init_network,
    org_profile,
    remove_new_profile,
    staff_profile,
)
from .org_settings import OrgSettings
from .orgs_list import OrgEntry, list_orgs, org_info
from .pinning import check_pins
from .profile import NetworkAnchor, Profile, load_profile, save_keystore
from .receiving import Receiver
from .relay_link import RelayLink
from .save_checkpoints import SaveCheckpoints
from .sending import DEFAULT_TTL, Sender
from .sent_items import SentItem, list_sent
from .unlocked_keys import UnlockedKeys

if TYPE_CHECKING:
    from .admin import NetworkOffice, OrgAdmin


PURGE_EVERY = 3600
"""Seconds between local-retention purges while ``listen`` runs (it purges at start too)."""


class Client:
    """An opened profile: send, receive and administer, as an async context manager."""

    def __init__(self, profile: Profile, keystore: Keystore, store: MailboxStore,
                 *, relay: str | None = None, clock: Callable[[], float] = time.time,
                 ca_file: str | Path | None = None) -> None:
        self.profile = profile
        self.keystore = keystore
        self.store = store
        self.clock = clock
        self.directory = Directory(profile.info.network.network_key, store, clock)
        self.ca_file = ca_file
        keys = UnlockedKeys(keystore)
        self._link = RelayLink(profile, self.directory, keys, relay=relay, ca_file=ca_file)
        # What the modules (sending, receiving, admin, ...) get instead of this object.
        self.context = ClientContext(profile=profile, keys=keys, store=store,
                                     directory=self.directory, link=self._link, clock=clock)
        self.receiver = Receiver(self.context)
        self.sender = Sender(self.context)

    # --- opening and closing ---------------------------------------------------------

    @classmethod
    async def open(cls, home: str | Path | None, profile: str | None, passphrase: str, *,
                   relay: str | None = None,
                   clock: Callable[[], float] = time.time,
                   ca_file: str | Path | None = None) -> Client:
        """Open profile ``profile`` under ``home`` with its passphrase.

        ``ca_file``: a PEM file of a CA to trust for the relay's TLS certificate besides the
        system's (a relay with a certificate from a private CA).
        """
        prof = load_profile(home, profile)
        keystore = prof.open_keystore(passphrase)
        return await cls._from_parts(prof, keystore, relay=relay, clock=clock, ca_file=ca_file)

    @classmethod
    async def open_keystore(cls, prof: Profile, keystore: Keystore, *,
                            relay: str | None = None, ca_file: str | Path | None = None
                            ) -> Client:
        """Open a profile whose keystore the caller already unlocked (e.g. after a prompt)."""
        return await cls._from_parts(prof, keystore, relay=relay, ca_file=ca_file)

    @classmethod
    async def _from_parts(cls, prof: Profile, keystore: Keystore, *, relay: str | None = None,
                          clock: Callable[[], float] = time.time,
                          ca_file: str | Path | None = None) -> Client:
        storage = keystore.secrets.get("storage")
        if storage is None:
            # A profile made by other tools (e.g. the relay's dev bootstrap) may lack the
            # local storage key; it protects only this device's mailbox, so make one now.
            storage = keystore.secrets["storage"] = secrets.token_bytes(32)
            save_keystore(keystore)
        store = await MailboxStore.open(prof.state_path, storage)
        try:
            await check_pins(prof, keystore, store)
        except BaseException:
            await store.close()
            raise
        client = cls(prof, keystore, store, relay=relay, clock=clock, ca_file=ca_file)
        try:
            await client.directory.load()
            # every opening (each kok command, the app's unlock) first forgets what is due
            await retention.purge(client.context)
            # and removes what saves interrupted long ago left beside their targets
            await SaveCheckpoints(store, client.context.now).sweep()
        except BaseException:
            await store.close()
            raise
        return client

    async def close(self) -> None:
        """End the relay session and close the mailbox."""
        try:
            await self._link.close()
        finally:
            # always: the mailbox's database thread is not a daemon, and one left open keeps
            # the whole process from exiting (kok listen hanging after Ctrl-C)
            await self.store.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def change_passphrase(self, new_passphrase: str) -> None:
        """Encrypt this profile's keystore under ``new_passphrase`` from now on (``kok
        passwd``); one that is easy to guess is refused (``weak_passphrase``), as by kok."""
        await asyncio.to_thread(save_keystore, self.keystore, new_passphrase)

    # --- creating profiles (see client.onboarding) -----------------------------------

    @staticmethod
    async def init_network(home: str | Path | None, profile: str | None, passphrase: str,
                           name: str, **kwargs: Any) -> Any:
        """Create a network-office profile; returns ``(Profile, NetworkAnchor)``."""
        return init_network(home, profile, passphrase, name, **kwargs)

    @classmethod
    async def new_org(cls, home: str | Path | None, profile: str | None, passphrase: str,
                      *, ca_file: str | Path | None = None, **kwargs: Any) -> Any:
        """Create an org-admin profile; returns ``(Profile, admission request bytes)``."""
        prof, keystore, request, check = org_profile(home, profile, passphrase, **kwargs)
        await cls._check_new_profile(prof, keystore, check, ca_file)
        return prof, request

    @classmethod
    async def new_staff(cls, home: str | Path | None, profile: str | None, passphrase: str,
                        *, ca_file: str | Path | None = None, **kwargs: Any) -> Any:
        """Create a staff profile; returns ``(Profile, enrolment request bytes)``."""
        prof, keystore, request, check = staff_profile(home, profile, passphrase, **kwargs)
        await cls._check_new_profile(prof, keystore, check, ca_file)
        return prof, request

    @classmethod
    async def _check_new_profile(cls, prof: Profile, keystore: Keystore, check: LogCheck,
                                 ca_file: str | Path | None) -> None:
        """Mirror the relay's log into a new profile and run ``check``; on failure, undo."""
        try:
            client = await cls._from_parts(prof, keystore, ca_file=ca_file)
            try:
                await client.sync_log()
                check(client.directory.log)
            finally:
                await client.close()
        except (KokError, OSError):
            remove_new_profile(prof)
            raise

    @classmethod
    async def new_device(cls, home: str | Path | None, profile: str | None, passphrase: str,
                         *, ca_file: str | Path | None = None, **kwargs: Any) -> Any:
        """Create a profile for one more device of a person; returns ``(Profile, request)``."""
        prof, keystore, request, check = device_profile(home, profile, passphrase, **kwargs)
        await cls._check_new_profile(prof, keystore, check, ca_file)
        return prof, request

    @classmethod
    async def join_device(cls, home: str | Path | None, profile: str | None, passphrase: str,
                          code: str, *, relay: str, network: NetworkAnchor,
                          ca_file: str | Path | None = None,
                          poll: float = device_link.NEW_POLL) -> Profile:
        """Become a new device of a person with the code their existing device showed.

        The profile is written only after the exchange succeeded and the relay's key log
        shows this device (SPEC.md section 6.9).
        """
        device_link.check_new_profile_free(home, profile, passphrase)
        relay = check_relay_url(relay)
        joined = await device_link.join_link(code, relay, network, ca_file=ca_file, poll=poll)
        prof, keystore, check = device_link.linked_profile(home, profile, passphrase, joined,
                                                           relay, network)
        await cls._check_new_profile(prof, keystore, check, ca_file)
        return prof

    # --- devices ---------------------------------------------------------------------

    async def link_device(self, poll: float = device_link.EXISTING_POLL
                          ) -> device_link.DeviceLink:
        """Offer a link to a new device of this person: show ``.code``, then await ``.wait()``
        (which adds the device and returns its id)."""
        return await device_link.start_link(self.context, poll)

    async def devices(self) -> list[devices.DeviceInfo]:
        """This person's devices as the verified key log shows them."""
        return await devices.list_devices(self.context)

    async def add_device(self, request: bytes) -> str:
        """Add a new device of this person from its link request; returns its device id."""
        return await devices.add_device(self.context, request)

    async def remove_device(self, device_id: str, staff_id: str | None = None) -> int | None:
        """Remove one of this person's devices (an admin: anyone's in the org)."""
        return await devices.remove_device(self.context, staff_id or self.require_staff(),
                                           device_id)

    # --- who we are ------------------------------------------------------------------

    # one answer for the library and its modules: the context's
    @property
    def kind(self) -> str:
        return self.context.kind

    @property
    def org_id(self) -> str | None:
        return self.context.org_id

    @property
    def staff_id(self) -> str | None:
        return self.context.staff_id

    def now(self) -> int:
        return self.context.now()

    def signing_key(self) -> SigningKeyPair:
        return self.context.signing_key()

    def box_key(self) -> BoxKeyPair:
        return self.context.box_key()

    @property
    def network(self) -> NetworkOffice:
        """Network-office operations (admit, revoke); only for a network profile."""
        from .admin import NetworkOffice

        if self.kind != "network":
            raise UsageError("not_network_profile")
        return NetworkOffice(self.context)

    @property
    def org(self) -> OrgAdmin:
        """Org-admin operations (activate, enrol, remove, rotate, show); only for an org admin."""
        from .admin import OrgAdmin

        if self.kind != "org":
            raise UsageError("not_org_profile")
        return OrgAdmin(self.context)

    # --- the relay connection --------------------------------------------------------

    @property
    def relay_url(self) -> str:
        return self._link.url

    async def api(self) -> RelayApi:
        """The relay connection, checked against our anchor (connecting on first use)."""
        return await self._link.api()

    def check_clock(self) -> None:
        """Refuse to go on when this computer's clock is off from the relay's (``Date``)."""
        self._link.check_clock()

    def relay_limit(self, name: str) -> int | None:
        """A limit the relay stated in ``/v1/info`` (None before connecting, or if absent)."""
        return self._link.limit(name)

    async def sync_log(self) -> int:
        """Bring the verified key-log mirror up to date; returns the number of new entries."""
        return await self._link.sync_log()

    # --- our standing ----------------------------------------------------------------

    def require_staff(self) -> str:
        """Our staff id if the log shows us enrolled, not removed, in a live org."""
        return self.context.require_staff()

    # --- sync ------------------------------------------------------------------------

    async def sync(self) -> SyncReport:
        """Update the key log, take in new epoch keys, fetch, verify, store and acknowledge.

        An admin also switches to a newly countersigned identity key and rotates when due
        (``client.lifecycle``); afterwards old epoch secrets are retired for forward secrecy.
        """
        added = await self.sync_log()
        if self.kind == "network":
            return SyncReport(log_entries=added, log_size=self.directory.log.size)
        self.require_staff()
        switched, rotated = False, None
        if self.kind == "org":
            from .identity import switch_identity

            switched = switch_identity(self.context)
            rotated = await self.org.rotate_if_due()
        outbox_sent, outbox_expired, outbox_failed = await self.sender.flush_outbox()
        keys, problems = await self.receiver.sync_grants()
        # a grant that opens with none of our box keys is not helped by keeping old ones
        settled = all(code == "decrypt_failed" for code in problems)
        _, box_keys_retired = await devices.maintain_box_keys(self.context, settled)
        retried = await self.receiver.retry_quarantine()
        messages, quarantined, withdrawals = await self.receiver.fetch()
        await reading.send_read_reports(self.context)
        retired = await lifecycle.retire_epoch_secrets(self.context) + box_keys_retired
        changed = await verification.changed_orgs(self.context)
        withdrawals = [w for w in retried if isinstance(w, Withdrawal)] + withdrawals
        arrived = [m for m in retried if isinstance(m, Message)] + messages
        # a notice later in the same sync withdrew some of them: show them as they are now
        gone = {(w.from_staff, w.id) for w in withdrawals}
        arrived = [await self._reread(m) if (m.from_staff, m.id) in gone else m
                   for m in arrived]
        # after the log sync: new org settings apply at once
        purged = (await retention.purge(self.context)).messages
        return SyncReport(
            log_entries=added, log_size=self.directory.log.size, epoch_keys=keys,
            messages=tuple(_flag(m, changed) for m in arrived),
            withdrawn=tuple(withdrawals),
            quarantined=tuple(quarantined), problems=tuple(problems),
            rotated=rotated[0] if rotated else None,
            rotation_reason=rotated[1] if rotated else None,
            retired_keys=retired, identity_switched=switched,
            outbox_sent=tuple(outbox_sent), outbox_expired=tuple(outbox_expired),
            purged=purged,
            outbox_failed=tuple(outbox_failed),
        )

    async def _reread(self, message: Message) -> Message:
        """``message`` as the mailbox holds it now (after a retraction notice)."""
        for data, received, read_at in await self.store.messages_with_id(message.id):
            if data.get("from_staff") == message.from_staff:
                return Message.from_stored(data, received, read_at)
        return message

    # --- reading ---------------------------------------------------------------------

    async def inbox(self) -> list[Message]:
        """Every verified message in the local mailbox, newest first (no network)."""
        rows = await self.store.messages()
        changed = await verification.changed_orgs(self.context)
        marks = await retention.marks(self.context)
        # Newest first; messages sent within the same second by arrival (the sort is stable).
        arrived = [retention.marked(_flag(Message.from_stored(d, r, a), changed), marks)
                   for d, r, a in reversed(rows)]
        return sorted(arrived, key=lambda m: m.sent, reverse=True)

    async def read(self, message_id: str) -> Message:
        """One message by id or unique id prefix, opened by the person: marks it read (which
        starts its local retention time) and owes its read report, sent with the next sync
        (SPEC.md section 21)."""
        full = await self.store.resolve_id(message_id)
        await self.store.mark_read(full, self.now())
        await reading.note_opened(self.context, full)
        return await self.message(full)

    async def message(self, message_id: str) -> Message:
        """One message by id or unique id prefix, *not* opened: no read mark, no read report
        (for a reply form that only needs its sender and subject)."""
        full = await self.store.resolve_id(message_id)
        row = await self.store.message(full)
        if row is None:
            raise UsageError("unknown_message", id=full)
        message = _flag(Message.from_stored(*row), await verification.changed_orgs(self.context))
        return retention.marked(message, await retention.marks(self.context))

    # --- local retention (client.retention) --------------------------------------------

    async def keep(self, message_id: str, keep: bool = True) -> Message:
        """Mark a received message keep (local retention leaves it), or unmark it."""
        full = await self.store.resolve_id(message_id)
        await self.store.set_keep(full, keep)
        return await self.message(full)

    async def purge(self) -> retention.PurgeReport:
        """Delete from this device what local retention says is due now (no network)."""
        return await retention.purge(self.context)

    async def export(self, message_id: str, folder: str | Path, *, attachments: bool = True,
                     force: bool = False) -> export_mod.Export:
        """Write a received message as a readable text file (and, with ``attachments``, its
        files, fetched and checked) into ``folder`` (made 0700 if missing), for a case record.

        The export is plaintext outside the app: local retention does not delete it.
        """
        return await export_mod.export_message(self.context, await self.message(message_id),
                                               folder, attachments=attachments, force=force)

    async def quarantined(self) -> list[Quarantined]:
        """Envelopes that failed a check (never shown as messages)."""
        return [Quarantined(relay_id=r, code=c, detail=str(d.get("detail", "")), received=t)
                for r, t, c, d in await self.store.quarantined()]

    # --- sending ---------------------------------------------------------------------

    async def send(self, to: Sequence[str], subject: str, body: str,
                   ttl: int | timedelta = DEFAULT_TTL, reply_to: str | None = None,
                   attachments: Sequence[AttachmentSource] = (),
                   progress: FileProgress | None = None) -> str:
        """Seal one envelope per recipient org to its current epoch; returns the message id.

        If the relay cannot be reached, the message is kept (encrypted) in the outbox and
        sent by the next ``sync`` (``queued()`` lists it); it is not sent after its keeping
        time. Its attachments are then encrypted into the profile at once and uploaded with
        it, so a file changed or deleted meanwhile does not change what is sent.

        ``attachments`` are file paths (or ``(path, name)``): each is encrypted while it is
        uploaded as a drop to the same organisations; ``progress(name, done, total)``
        follows the uploads.
        """
        return await self.sender.send(to, subject, body, ttl=ttl, reply_to=reply_to,
                                      attachments=attachments, progress=progress)

    async def queued(self) -> list[str]:
        """Ids of sent messages waiting in the offline outbox for the relay (oldest first)."""
        return [message_id for message_id, *_ in await self.store.outbox()]

    async def save(self, message_id: str, directory: str | Path, force: bool = False,
                   progress: FileProgress | None = None, mkdir: bool = False
                   ) -> list[SavedFile]:
        """Fetch, verify and save a received message's attachments into ``directory``.

        Nothing is written under a file's final name unless every check passed; an existing
        file is replaced only with ``force``; a missing folder is created (0700) only with
        ``mkdir``. ``progress(name, done, total)`` follows the downloads.
        """
        return await save_attachments(self.context, message_id, directory, force=force,
                                      progress=progress, mkdir=mkdir)

    async def status(self, message_id: str) -> DeliveryStatus:
        """Delivery of a message we sent, per recipient org (asked with its status tokens):
        delivered and read counts, or "read reports off" as each org's signed settings say."""
        await self.sync_log()  # the recipients' read-report settings, as now signed
        return await self.sender.status(message_id)

    async def retract(self, message_id: str) -> DeliveryStatus:
        """Withdraw a message we sent: the relay deletes it (and its files) wherever it was
        not fetched yet; recipient orgs where someone fetched it get a signed retraction
        notice (SPEC 9.4, ``DeliveryStatus.notified``), and their devices mark it withdrawn."""
        return await self.sender.retract(message_id)


    # --- everyday views over the local mailbox ----------------------------------------

    async def orgs(self, *, refresh: bool = True) -> list[OrgEntry]:
        """The directory: every organisation with name, id, fingerprint, standing and staff.

        (``Client.directory`` is the verified key-log mirror this is built from.)
        """
        if refresh:
            await self.sync_log()
        return await list_orgs(self.context)

    async def sent(self, *, status: bool = False) -> list[SentItem]:
        """What this profile sent, newest first; with ``status``, delivery from the relay."""
        if status:
            await self.sync_log()  # once for all of them (see ``status``)
        return await list_sent(self.store, self.sender.status if status else None)

    async def search(self, text: str) -> list[Message]:
        """Received messages containing ``text`` (local only: nothing goes to the relay)."""
        return search_messages(await self.inbox(), self.directory.log, text)

    async def thread(self, message_id: str) -> list[ThreadEntry]:
        """The conversation a received or sent message belongs to, oldest first."""
        return await thread_of(self.context, await self.inbox(), message_id)

    async def open_attachment(self, message_id: str, index: int) -> AttachmentStream:
        """Attachment ``index`` of a received message as a stream of checked bytes."""
        return await open_attachment(self.context, message_id, index)

    # --- listening -------------------------------------------------------------------

    async def listen(self) -> AsyncIterator[Message]:
        """New verified messages as they arrive over the WebSocket; reconnects by cursor."""
        report = await self.sync()
        purged_at = time.monotonic()
        for message in report.messages:
            yield message
        failures = 0
        while True:
            api = await self.api()
            cursor = int(await self.store.get_state("cursor", "0") or 0)
            try:
                ws = await api.events(after=cursor)
            except RelayUnreachable:
                failures += 1
                await asyncio.sleep(api.policy.reconnect_delay(failures))
                continue
            opened = time.monotonic()
            await self._send_read_reports_quietly()  # (re)connected: a moment the relay sees
            try:
                async for frame in ws:
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        continue
                    arrived = await self.receiver.event(frame.data)
                    if time.monotonic() - purged_at >= PURGE_EVERY:
                        # a device that listens for weeks forgets on schedule too
                        await retention.purge(self.context)
                        purged_at = time.monotonic()
                    if arrived is not None:
                        # the relay sees this device now anyway: owed read reports go along
                        await self._send_read_reports_quietly()
                        yield arrived
            finally:
                await ws.close()
            if ws.close_code == CLOSE_SESSION_ENDED:
                # Session over (expiry, or we were removed): the log says which.
                await self.sync_log()
                self.require_staff()
                await api.login()
            if time.monotonic() - opened < 1:
                # Closed at once (e.g. 4408 again and again): back off instead of spinning.
                failures += 1
                await asyncio.sleep(api.policy.reconnect_delay(failures))
            else:
                failures = 0

    async def _send_read_reports_quietly(self) -> None:
        """Owed read reports, while listening: a failure leaves them owed for the next sync."""
        with contextlib.suppress(KokError):
            await reading.send_read_reports(self.context)

    # --- directory questions ---------------------------------------------------------

    async def whois(self, org_id: str, compare_head: str | None = None) -> OrgInfo:
        """An organisation's keys, staff, current epoch, safety code and the log head.

        ``compare_head`` is the head another organisation read out (``SIZE:CODE``): a log
        that disagrees with it raises ``log_forked``.
        """
        await self.sync_log()
        if compare_head is not None:
            await verification.compare_head(self.context, compare_head)
        return dataclasses.replace(self.org_info(org_id),
                                   safety_code=verification.pair_code(self.context, org_id),
                                   verification=await verification.standing(self.context, org_id))

    async def verify(self, org_id: str, code: str) -> str:
        """Mark ``org_id`` verified if ``code`` is the safety code both admins read out."""
        return await verification.verify(self.context, org_id, code)

    async def unverify(self, org_id: str) -> str:
        """Take back this profile's verification of ``org_id`` (``verify``); returns its
        standing now: ``unverified``, or ``org_verified`` if our organisation's admin
        verified it for everyone (that record stays)."""
        return await verification.unverify(self.context, org_id)

    async def revoke_self(self) -> str:
        """A lost device: remove ourselves with our own staff key; returns our staff id."""
        from .admin import revoke_self

        return await revoke_self(self.context)

    def org_info(self, org_id: str) -> OrgInfo:
        """``whois`` without contacting the relay (from the local mirror)."""
        return org_info(self.context, org_id)

    # --- organisation settings (SPEC.md section 6.8) -----------------------------------

    async def org_settings(self, org_id: str | None = None, *,
                           refresh: bool = True) -> OrgSettings:
        """An organisation's settings (our own by default) from the verified key log."""
        if refresh:
            await self.sync_log()
        if org_id is None:
            return settings_of_orgs.own_settings(self.context)
        return settings_of_orgs.settings_for(self.context, org_id)

    async def set_org_settings(self, *, read_reports: bool | None = None,
                               retention_days: int | None = None) -> OrgSettings:
        """Publish our org's settings (an org admin); a field not given keeps its value."""
        return await settings_of_orgs.set_settings(
            self.context, read_reports=read_reports, retention_days=retention_days)


def _flag(message: Message, changed: set[str]) -> Message:
    """Mark a message whose sender's org changed its identity key since we verified it."""
    if message.from_org in changed:
        return dataclasses.replace(message, identity_changed=True)
    return message

