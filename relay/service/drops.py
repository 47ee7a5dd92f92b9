"""File drops: create, upload at an offset, complete, download, acknowledge, expire.

Theory of operation
-------------------
A staff member creates a drop, declaring the ciphertext size, the recipient organisations
and a TTL. The relay reserves the declared size against each recipient organisation's
drop quota, answers a random drop id and a random **upload token**, and keeps only the
token's hash: the token, not any record of who asked, is what lets the uploader go on.
Nothing stored names the sender. The uploading organisation is remembered in memory only
(never on disk), to bound its unfinished uploads; after a restart that count starts empty
and the quotas (which are on disk) still bound what any drop can hold.

Upload requests append at the current end of the part file (``relay.blobs``): a request
must name that offset, and its bytes are streamed in pieces, never read whole; one request
per drop at a time (a lock in memory). A request that would pass the declared size is
refused and every byte it wrote is cut off again, so a refusal changes nothing. A request
whose connection breaks keeps what arrived: the client asks the durable offset and goes on
from there. ``complete`` checks the size, renames the part file to its final name and only
then records the drop as complete, together with the staff of every recipient organisation
enrolled at that moment; before that nothing is served.

A complete drop is served (with ranges) to current staff of a recipient organisation, and
to nobody else: for anyone else it does not exist (``404``, as for no drop at all). It is
deleted (blob overwritten, then unlinked) when every staff member recorded at completion
has acknowledged it or was removed since, or at its TTL. An open upload that receives no
bytes for ``drop_idle_ttl`` is deleted too; files without a row (a crash between the two)
are swept by the same purge.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import AsyncIterator

from protocol.errors import LogError

from ..blobs import WRITE_PIECE, BlobStore
from ..config import LimitsConfig
from ..errors import (
    DropComplete,
    DropIncomplete,
    DropSizeExceeded,
    DropTooLarge,
    DuplicateRecipient,
    NotFound,
    OffsetMismatch,
    StorageFull,
    TooManyEnvelopes,
    TooManyUploads,
    UploadBusy,
    UploadInterrupted,
)
from ..store import DropRow, NewDrop
from ..store.interface import DropStore
from .directory import Directory
from .domain import DROP_ID_SIZE, UPLOAD_TOKEN_SIZE, CreatedDrop, DropCreate
from .hashing import secret_hash
from .recipients import DeviceActivity, require_recipient
from .sessions import Session
from .ttl import checked_ttl

UPLOAD = b"kok-relay/upload"
LOCK_WAIT = 10.0
"""How long an upload request waits for an earlier one on the same drop (a broken
connection the relay has not noticed yet) before it is refused as busy."""


class Drops:
    """Domain operations on file drops."""

    def __init__(self, store: DropStore, blobs: BlobStore, directory: Directory,
                 limits: LimitsConfig, activity: DeviceActivity | None = None) -> None:
        self.store = store
        self.activity = activity
        self.blobs = blobs
        self.directory = directory
        self.limits = limits
        self._uploading: dict[str, set[bytes]] = {}
        """Open uploads per uploading organisation (memory only: never names a sender on disk)."""
        self._creating: set[bytes] = set()
        """Drops counted in ``_uploading`` whose row is not committed yet."""
        self._locks: dict[bytes, asyncio.Lock] = {}

    # --- the uploader --------------------------------------------------------------------

    async def create(self, session: Session, request: DropCreate, now: int) -> CreatedDrop:
        """Reserve a drop for ``size`` ciphertext bytes to the organisations in ``to``."""
        if request.size > self.limits.max_drop_bytes:
            raise DropTooLarge(
                f"A file may be at most {self.limits.max_drop_bytes} bytes on this relay "
                f"(encrypted), not {request.size}.")
        self._check_recipients(request.to)
        ttl = checked_ttl(request.ttl, self.limits.default_ttl, self.limits.max_ttl)
        drop_id = secrets.token_bytes(DROP_ID_SIZE)
        token = secrets.token_bytes(UPLOAD_TOKEN_SIZE)
        expires = now + ttl
        # Check and take the place in one step (no await between), so parallel creates
        # cannot all pass the check; the place is given back if the create fails.
        open_uploads = self._uploading.setdefault(session.org_id, set())
        if len(open_uploads) >= self.limits.max_open_uploads_per_org:
            raise TooManyUploads(
                f"Your organisation has {len(open_uploads)} unfinished uploads, the most this "
                "relay allows; finish them or wait until they expire.")
        open_uploads.add(drop_id)
        self._creating.add(drop_id)
        try:
            free = await asyncio.to_thread(self.blobs.free_bytes)
            if free - request.size < self.limits.min_free_disk_bytes:
                raise StorageFull("The relay's disk has no room for this file now; try later.")
            await self.store.create_drop(NewDrop(
                id=drop_id, size=request.size, token_hash=secret_hash(UPLOAD, token),
                expires=expires, idle_expires=min(expires, now + self.limits.drop_idle_ttl),
                orgs=request.to, org_quota=self.limits.org_drop_bytes,
                revoked=self.directory.revoked_orgs))
            # The row is committed before the file exists, so the orphan sweep never takes
            # a file whose row is still on its way.
            await self.blobs.create(drop_id)
        except BaseException:
            open_uploads.discard(drop_id)
            raise
        finally:
            self._creating.discard(drop_id)
        return CreatedDrop(drop_id, token, expires)

    def _check_recipients(self, orgs: tuple[str, ...]) -> None:
        if len(orgs) > self.limits.max_envelopes_per_send:
            raise TooManyEnvelopes(
                f"A file may go to at most {self.limits.max_envelopes_per_send} organisations.")
        for index, org_id in enumerate(orgs):
            if org_id in orgs[:index]:
                raise DuplicateRecipient(f"{org_id} is named twice.")
            require_recipient(self.directory.keylog, org_id)

    async def _own(self, drop_id: bytes, token: bytes, now: int) -> DropRow:
        """The drop the upload token belongs to (a wrong token is "not found")."""
        row = await self.store.get_drop(drop_id)
        if (row is None or not row.alive(now)
                or not hmac.compare_digest(row.token_hash, secret_hash(UPLOAD, token))):
            raise NotFound()
        return row

    async def offset(self, drop_id: bytes, token: bytes, now: int) -> tuple[int, int]:
        """(durable offset, declared size) of an upload."""
        row = await self._own(drop_id, token, now)
        if row.complete:
            return row.size, row.size
        have = await self.blobs.durable_size(row.id)
        return (have or 0), row.size

    async def upload(self, drop_id: bytes, token: bytes, offset: int, length: int | None,
                     body: AsyncIterator[bytes], now: int) -> int:
        """Append the body at ``offset`` (which must be the current end); the new offset."""
        row = await self._own(drop_id, token, now)
        if row.complete:
            raise DropComplete()
        if length is not None and offset + length > row.size:
            raise DropSizeExceeded(
                f"{length} bytes at offset {offset} pass the declared size of {row.size}.")
        lock = self._locks.setdefault(row.id, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), LOCK_WAIT)
        except TimeoutError:
            raise UploadBusy() from None
        try:
            row = await self._own(drop_id, token, now)  # again: it may have completed
            if row.complete:
                raise DropComplete()
            try:
                end = await self._append(row, offset, body)
            except UploadInterrupted:
                # what arrived before the connection broke is progress: keep the upload alive
                await self.store.touch_drop(row.id, now + self.limits.drop_idle_ttl)
                raise
        finally:
            lock.release()
        await self.store.touch_drop(row.id, now + self.limits.drop_idle_ttl)
        return end

    async def _append(self, row: DropRow, offset: int, body: AsyncIterator[bytes]) -> int:
        writer = await self.blobs.open_writer(row.id)
        try:
            if writer.offset != offset:
                raise OffsetMismatch(writer.offset)
            pending: asyncio.Future[None] | None = None  # one write in flight, reading on
            buffered: list[bytes] = []
            size = 0
            received = offset
            refused = False
            try:
                async for piece in body:
                    received += len(piece)
                    if received > row.size:
                        refused = True
                        raise DropSizeExceeded(
                            f"The upload passes the declared size of {row.size} bytes.")
                    buffered.append(piece)
                    size += len(piece)
                    if size >= WRITE_PIECE:
                        if pending is not None:
                            await pending
                        pending = asyncio.ensure_future(writer.write(buffered))
                        buffered, size = [], 0
            finally:
                # A broken connection keeps what arrived (the client resumes after it);
                # a refusal takes back everything this request wrote.
                if pending is not None:
                    await pending
                if refused:
                    await writer.truncate(offset)
                elif buffered:
                    await writer.write(buffered)
            return writer.offset
        finally:
            await writer.close()

    async def complete(self, drop_id: bytes, token: bytes, now: int) -> DropRow:
        """Check every byte is there, make the blob servable, record who must fetch it."""
        row = await self._own(drop_id, token, now)
        if row.complete:
            return row
        async with self._locks.setdefault(row.id, asyncio.Lock()):
            row = await self._own(drop_id, token, now)
            if row.complete:
                return row
            have = await self.blobs.durable_size(row.id)
            if have is None and self.blobs.blob_size(row.id) == row.size:
                have = row.size  # renamed before a crash, not yet recorded: finish the job
            if have != row.size:
                raise DropIncomplete(
                    f"The relay holds {have or 0} of the {row.size} bytes declared.")
            await self.blobs.complete(row.id)
            staff = self._recipient_staff(row.orgs)
            devices = await self._recipient_devices(staff, now)
            if not await self.store.complete_drop(row.id, staff, devices):
                raise NotFound()
        self._forget_upload(row.id)
        return row

    async def withdraw(self, drop_id: bytes, token: bytes, now: int) -> None:
        """The uploader deletes its drop: a send that failed after the upload leaves none."""
        row = await self._own(drop_id, token, now)
        async with self._locks.setdefault(row.id, asyncio.Lock()):
            if await self.store.delete_drop(row.id):
                await self.blobs.delete(row.id)
        self._forget_upload(row.id)

    async def _recipient_devices(self, staff: tuple[str, ...], now: int
                                 ) -> tuple[tuple[str, str], ...]:
        """Every current device of the recipients that is not abandoned (recipients.py):
        each must fetch the file before it goes."""
        keylog = self.directory.keylog
        devices = tuple(sorted((s, d.device_id) for s in staff for d in keylog.devices(s)))
        if self.activity is not None:
            return await self.activity.counted(devices, keylog, now)
        return devices

    def _recipient_staff(self, orgs: tuple[str, ...]) -> tuple[str, ...]:
        staff: list[str] = []
        for org_id in orgs:
            org = self.directory.keylog.orgs.get(org_id)
            if org is not None and not org.revoked:
                staff.extend(s.staff_id for s in org.active_staff())
        return tuple(sorted(staff))

    def _forget_upload(self, drop_id: bytes) -> None:
        """The upload is over (complete or deleted): it no longer counts, its lock goes."""
        for open_uploads in self._uploading.values():
            open_uploads.discard(drop_id)
        lock = self._locks.get(drop_id)
        if lock is not None and not lock.locked():
            del self._locks[drop_id]

    # --- recipients ----------------------------------------------------------------------

    async def _mine(self, session: Session, drop_id: bytes, now: int) -> DropRow:
        """A complete drop addressed to the caller's organisation, or "not found"."""
        row = await self.store.get_drop(drop_id)
        if (row is None or not row.complete or not row.alive(now)
                or session.org_id not in row.orgs):
            raise NotFound()
        return row

    async def open_download(self, session: Session, drop_id: bytes, now: int) -> int:
        """The stored size of a drop the caller may fetch (else "not found")."""
        row = await self._mine(session, drop_id, now)
        size = await asyncio.to_thread(self.blobs.blob_size, row.id)
        if size is None:
            raise NotFound()
        return size

    def read(self, drop_id: bytes, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of a drop returned by ``open_download``."""
        return self.blobs.read_range(drop_id, start, end)

    async def acknowledge(self, session: Session, drop_id: bytes, now: int) -> bool:
        """The caller has the file; True if nobody else is waiting for it (it is deleted)."""
        row = await self._mine(session, drop_id, now)
        gone = tuple(s for s in await self.store.drop_pending(row.id) if not self._active(s))
        deleted = await self.store.acknowledge_drop(row.id, session.staff_id, gone,
                                                    session.device)
        if deleted:
            await self.blobs.delete(row.id)
        return deleted

    def _active(self, staff_id: str) -> bool:
        try:
            self.directory.keylog.active_staff(staff_id)
        except LogError:
            return False
        return True

    # --- expiry --------------------------------------------------------------------------

    async def purge(self, now: int) -> int:
        """Delete expired drops, drops nobody current still waits for, and orphaned files."""
        deleted = await self._delete_expired(now)
        gone = [(d, s) for d, s in await self.store.drop_deliveries() if not self._active(s)]
        delivered = await self.store.forget_drop_deliveries(gone) if gone else []
        for drop_id in delivered:
            await self.blobs.delete(drop_id)
        known = await self.store.drop_ids()
        for drop_id in [d for ids in self._uploading.values() for d in ids
                        if d not in known and d not in self._creating]:
            self._forget_upload(drop_id)
        return deleted + len(delivered)

    async def _delete_expired(self, now: int) -> int:
        """Drops past their TTL or idle deadline, and files with no drop (a crash between)."""
        on_disk = await asyncio.to_thread(self.blobs.stored_ids)
        expired = await self.store.delete_expired_drops(now)
        for drop_id in expired:
            await self.blobs.delete(drop_id)
        known = await self.store.drop_ids()
        orphans = [d for d in on_disk if d not in known and d not in expired]
        for drop_id in orphans:
            await self.blobs.delete(drop_id)
        return len(expired) + len(orphans)
