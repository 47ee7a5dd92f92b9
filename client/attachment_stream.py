"""One received attachment as a stream of checked plaintext pieces (for the staff app).

``Client.save`` writes attachments into a folder; a browser download needs the bytes
instead, and they must never be held whole in memory nor left in a temporary file. So this
reads the drop from the relay chunk by chunk, feeds each chunk to ``FileDecryptor`` (which
releases plaintext only once its chunk authenticated under the signed file key) and yields
it. ``FileDecryptor.finalize`` (exact end, signed size and hash) runs before the last piece
is yielded: a stream that fails any check raises instead, so the caller aborts the download
and the browser marks it failed. The drop is acknowledged only after a complete stream.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol import Attachment, FileDecryptor, b64encode, ciphertext_size
from protocol.errors import ProtocolError
from protocol.stream import padded_stream_size

from .api import TRANSPORT_ERRORS, drop_path
from .drops import _acknowledge, _local_names
from .errors import RelayRefused, RelayUnreachable, UsageError, VerificationError
from .transfer import _check_total, _to_boundary, _total_from

if TYPE_CHECKING:
    from .context import ClientContext


@dataclass(frozen=True)
class AttachmentStream:
    """A received attachment's sanitised name, signed size and media type, and its bytes."""

    name: str
    size: int
    type: str
    _ctx: ClientContext
    _attachment: Attachment

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes, each piece authenticated before it is yielded."""
        ctx, attachment = self._ctx, self._attachment
        await ctx.sync_log()
        ctx.require_staff()
        dec = FileDecryptor(attachment.key, expected_size=attachment.size,
                            expected_hash=attachment.hash)
        total = ciphertext_size(attachment.size)
        padded = padded_stream_size(attachment.size)
        api = await ctx.api()
        async with contextlib.AsyncExitStack() as stack:
            # Opening is repeated under the transport's policy (a dead pooled connection, an
            # ended session); once bytes were yielded, a broken stream ends the download.
            resp = await api.retrying(
                lambda: stack.enter_async_context(
                    api.exchange("GET", drop_path(b64encode(attachment.drop)))),
                repeatable=True, auth=True)
            if resp.status != 200:
                raise RelayRefused("bad_response", resp.status, "not the whole file")
            try:
                _check_total(_total_from(resp), total)
                received = 0
                while received < total:
                    data = await resp.content.readexactly(_to_boundary(received, padded))
                    received += len(data)
                    plain = dec.update(data)
                    if received == total:
                        plain += dec.finalize()
                    if plain:
                        yield plain
            except ProtocolError as exc:
                raise VerificationError.from_protocol(exc) from exc
            except TRANSPORT_ERRORS:
                raise RelayUnreachable(api.base_url) from None
        await _acknowledge(api, attachment)


async def open_attachment(ctx: ClientContext, message_id: str, index: int) -> AttachmentStream:
    """Attachment number ``index`` (from 0) of a received message, ready to stream."""
    full = await ctx.store.resolve_id(message_id)
    row = await ctx.store.message(full)
    if row is None:
        raise UsageError("unknown_message", id=message_id)
    try:
        attachments = [Attachment.from_json(a) for a in row[0].get("attachments") or ()]
    except ProtocolError as exc:
        raise VerificationError.from_protocol(exc) from exc
    if not 0 <= index < len(attachments):
        raise UsageError("no_attachments", id=full[:8])
    attachment = attachments[index]
    name = _local_names(attachments)[index]
    return AttachmentStream(name=name, size=attachment.size, type=attachment.type,
                            _ctx=ctx, _attachment=attachment)

