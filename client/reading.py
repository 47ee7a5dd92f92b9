"""Read reports: telling the relay that this person opened a message (SPEC.md section 21).

Theory of operation
-------------------
Opening a message on this device (``Client.read``: ``kok read``, the app's message page)
*owes* one read report for it, kept in the local mailbox (``messages.read_report``). Owed
reports are sent at the next synchronisation with the relay (``Client.sync``, or a
listening client's next acknowledgement), never at the moment of opening, so the relay
learns only that the message was opened between two synchronisations of this device.

The relay counts a person once, whichever of their devices reports, and refuses a report
naming a message no device of theirs fetched (``not_received``); a refused batch is sent
again id by id and the ids refused alone are forgotten (an expired message, one fetched
before the relay kept receipts). While the organisation's signed settings say it sends no
read reports (``org_settings``, SPEC.md section 6.8), nothing is sent and owed reports
are dropped. A message its sender withdrew (SPEC.md section 9.4) owes no report when it
is opened: its text is gone, and the sender withdrew it so that it would not be read; a
report owed before the notice arrived (opened while it was still there) is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.message import MAX_READ_REPORT

from .errors import RelayRefused, UsageError
from .org_settings import own_settings, settings_for

if TYPE_CHECKING:
    from .context import ClientContext

__all__ = ["note_opened", "read_reports_enabled", "read_reports_sent_by", "send_read_reports"]


def read_reports_enabled(ctx: ClientContext) -> bool:
    """Whether this profile's organisation lets its staff send read reports (verified log)."""
    return own_settings(ctx).read_reports


def read_reports_sent_by(ctx: ClientContext, org_id: str) -> bool:
    """Whether ``org_id``'s staff send read reports, as its signed settings in our log say."""
    try:
        return settings_for(ctx, org_id).read_reports
    except UsageError:  # an org our log does not know: nothing says they are off
        return True


async def note_opened(ctx: ClientContext, message_id: str) -> None:
    """The person opened ``message_id`` here: owe a read report, if the org sends them and
    the sender has not withdrawn it."""
    if not read_reports_enabled(ctx):
        return
    held = await ctx.store.messages_with_id(message_id)
    if held and all(data.get("withdrawn") for data, _, _ in held):
        return  # what was opened is the notice that it was withdrawn, not the message
    await ctx.store.owe_read_report(message_id)


async def send_read_reports(ctx: ClientContext) -> int:
    """Send every owed read report; returns how many the relay newly counted."""
    owed = await ctx.store.owed_read_reports()
    if not owed:
        return 0
    if not read_reports_enabled(ctx):  # switched off since they were owed
        await ctx.store.settle_read_reports(owed)
        return 0
    api = await ctx.api()
    counted = 0
    for start in range(0, len(owed), MAX_READ_REPORT):
        batch = owed[start:start + MAX_READ_REPORT]
        try:
            counted += await api.report_read(batch)
        except RelayRefused as exc:
            if exc.code not in ("not_received", "read_reports_off"):
                raise
            if exc.code == "not_received" and len(batch) > 1:
                counted += await _one_by_one(ctx, batch)
        await ctx.store.settle_read_reports(batch)
    return counted


async def _one_by_one(ctx: ClientContext, batch: list[str]) -> int:
    """A batch was refused for one id: send each alone, so the others still count."""
    api = await ctx.api()
    counted = 0
    for relay_id in batch:
        try:
            counted += await api.report_read([relay_id])
        except RelayRefused as exc:
            if exc.code != "not_received":
                raise
    return counted
