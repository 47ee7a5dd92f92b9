"""Plain text for people: messages, delivery status, organisations, sync reports.

Screen-reader friendly by design: one fact per line, a label before each value, no tables
drawn with characters, no colour (so ``NO_COLOR`` is respected trivially), dates in local
time, every word from ``client.i18n``.
"""

from __future__ import annotations

import textwrap

from protocol.keys import format_fingerprint

from .i18n import duration, file_size, local_time, t, tn
from .models import DeliveryStatus, Message, OrgInfo, SyncReport
from .org_settings import OrgSettings, unread_days

SHORT_ID = 8


WIDTH = 80


def fit(lines: list[str], width: int = WIDTH) -> list[str]:
    """Lines of at most ``width`` characters (a braille display shows one line at a time);
    continuation lines are indented. Not for message text, which is shown as written."""
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * min(len(line) - len(line.lstrip()) + 2, 8)
        out += textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False,
                             break_long_words=True) or [""]
    return out


def _size(value: object) -> str:
    return file_size(value) if isinstance(value, int) else "?"


def short_id(message_id: str) -> str:
    return message_id[:SHORT_ID]


def inbox_lines(messages: list[Message]) -> list[str]:
    """One line per message, newest first, after a count."""
    unread = sum(1 for m in messages if not m.read)
    lines = [tn("inbox.count", len(messages), unread=unread)]
    for m in messages:
        key = "inbox.line" if m.read else "inbox.line_unread"
        lines.append(t(key, id=short_id(m.id), sent=local_time(m.sent), sender=m.from_staff,
                       subject=m.subject))
        lines += withdrawn_lines(m)
        if m.identity_changed:
            lines.append(t("inbox.identity_changed", org=m.from_org))
        if m.sender_log_behind:
            lines.append(t("inbox.sender_log_behind"))
    return lines


def withdrawn_lines(m: Message) -> list[str]:
    """The line under a message in a list that its sender withdrew it (none otherwise)."""
    if not m.withdrawn:
        return []
    return [t("inbox.withdrawn", sender=m.from_staff, when=local_time(m.withdrawn_at))]


def message_lines(m: Message) -> list[str]:
    """A whole message: labelled header lines, a blank line, the body."""
    warning = [t("read.identity_changed", org=m.from_org)] if m.identity_changed else []
    if m.sender_log_behind:
        warning.append(t("read.sender_log_behind"))
    if m.withdrawn:
        warning += [t("read.withdrawn", sender=m.from_staff, when=local_time(m.withdrawn_at)),
                    t("read.withdrawn_removed")]
    lines = [
        *warning,
        t("read.id", id=m.id),
        t("read.from", sender=m.from_staff, org=m.from_org),
        t("read.to", to=", ".join(m.to)),
        t("read.sent", sent=local_time(m.sent)),
        t("read.expires", expires=local_time(m.expires)),
    ]
    if m.reply_to:
        lines.append(t("read.reply_to", id=short_id(m.reply_to)))
    for a in m.attachments:
        lines.append(t("read.attachment", name=a.get("name"), size=_size(a.get("size"))))
    lines.append(retention_line(m))
    lines.append(t("read.subject", subject=m.subject))
    if not m.withdrawn:
        lines.append("")
        lines.extend(m.body.splitlines() or [""])
    return lines


def retention_line(m: Message) -> str:
    """Whether this device keeps the message, or when its local retention deletes it."""
    if m.kept:
        return t("read.kept", id=short_id(m.id))
    return t("read.deletes_at", when=local_time(m.deletes_at), id=short_id(m.id))


def status_lines(s: DeliveryStatus) -> list[str]:
    """The overall state, then one line per recipient organisation."""
    # "delivered" would only repeat the delivery words; every other state adds to them
    key, values = s.delivery_words()
    summary = "status.summary_delivered" if s.state == "delivered" else "status.summary"
    lines = [t(summary, id=short_id(s.id), subject=s.subject,
               state=t(f"state.{s.state}"), delivery=t(key, **values))]
    if len(s.recipients) > 1:
        for r in s.recipients:
            key, values = r.delivery_words()
            line = "status.recipient_delivered" if r.state == "delivered" else "status.recipient"
            lines.append(t(line, org=r.org, state=t(f"state.{r.state}"),
                           delivery=t(key, **values)))
    if s.notified:
        lines.append(t("status.notified", orgs=", ".join(s.notified)))
    return fit(lines)


def org_lines(info: OrgInfo) -> list[str]:
    """``whois``: identity, standing, epoch, staff, and the log head to compare."""
    lines = [
        t("whois.org", org=info.org_id, name=info.name),
        t("whois.fingerprint", fingerprint=format_fingerprint(info.fingerprint)),
        t("whois.admitted", when=local_time(info.admitted)),
    ]
    if info.revoked is not None:
        lines.append(t("whois.revoked", when=local_time(info.revoked),
                       reason=info.revoke_reason or ""))
    if info.epoch is None:
        lines.append(t("whois.no_epoch"))
    else:
        lines.append(t("whois.epoch", epoch=info.epoch, when=local_time(info.epoch_created),
                       fingerprint=format_fingerprint(info.epoch_fingerprint or "")))
    # the list keeps removed colleagues (with the date); the count is of those who can act
    lines.append(tn("whois.staff_count", sum(1 for s in info.staff if s.removed is None)))
    for s in info.staff:
        key = "whois.staff_removed" if s.removed is not None else "whois.staff"
        lines.append(t(key, staff=s.staff_id, role=t(f"role.{s.role}"),
                       fingerprint=format_fingerprint(s.fingerprint), since=local_time(s.added),
                       removed=local_time(s.removed)))
    if info.safety_code is not None:
        # once compared, the code stays visible for a later check but is no longer asked for
        verified = info.verification in ("verified", "org_verified")
        key = "whois.safety_code_verified" if verified else "whois.safety_code"
        lines.append(t(key, code=info.safety_code, org=info.org_id))
        if info.verification in ("verified", "org_verified", "changed", "unverified"):
            lines.append(t(f"whois.{info.verification}", org=info.org_id))
    if info.rotate_every is not None:
        lines.append(t("whois.rotation", every=duration(info.rotate_every),
                       when=local_time(info.next_rotation)))
    lines.append(t("whois.head", size=info.log_size, hash=info.log_code or info.log_hash,
                   org=info.org_id))
    if info.relay_log_fingerprint:
        lines.append(t("whois.relay_log_key",
                       fingerprint=format_fingerprint(info.relay_log_fingerprint)))
    return fit(lines)


def sync_lines(r: SyncReport) -> list[str]:
    """What a sync brought, then each new message and each quarantined envelope."""
    lines = [t("sync.summary", messages=tn("sync.new_messages", len(r.messages)),
               log=tn("sync.new_log_entries", r.log_entries),
               keys=tn("sync.new_keys", r.epoch_keys))]
    for m in r.messages:
        lines.append(t("inbox.line_unread", id=short_id(m.id), sent=local_time(m.sent),
                       sender=m.from_staff, subject=m.subject))
        lines += withdrawn_lines(m)
        if m.identity_changed:
            lines.append(t("inbox.identity_changed", org=m.from_org))
        if m.sender_log_behind:
            lines.append(t("inbox.sender_log_behind"))
    shown = {m.id for m in r.messages}
    for w in r.withdrawn:
        if w.held and w.id not in shown:  # one not held yet is marked when it arrives
            lines.append(t("sync.withdrawn", id=short_id(w.id), sender=w.from_staff))
    for q in r.quarantined:
        lines.append(t("sync.quarantined", code=q.code, detail=q.detail))
    for code in r.problems:
        lines.append(t("sync.problem", code=code))
    if r.identity_switched:
        lines.append(t("sync.identity_switched"))
    if r.rotated is not None:
        lines.append(t(f"sync.rotated_{r.rotation_reason}", epoch=r.rotated))
    if r.retired_keys:
        lines.append(tn("sync.retired", r.retired_keys))
    if r.purged:
        lines.append(tn("sync.purged", r.purged))
    for message_id in r.outbox_sent:
        lines.append(t("sync.outbox_sent", id=short_id(message_id)))
    for message_id in r.outbox_expired:
        lines.append(t("sync.outbox_expired", id=short_id(message_id)))
    for message_id in r.outbox_failed:
        lines.append(t("sync.outbox_failed", id=short_id(message_id)))
    return fit(lines)


def org_settings_lines(settings: OrgSettings) -> list[str]:
    """An organisation's settings, one per line, and whether an admin set them."""
    reports = "org_settings.read_reports_on" if settings.read_reports \
        else "org_settings.read_reports_off"
    lines = [t("org_settings.title", org=settings.org_id), t(reports),
             tn("org_settings.retention", settings.retention_days,
                days=settings.retention_days, unread=unread_days(settings.retention_days))]
    if settings.set_at is None:
        lines.append(t("org_settings.defaults"))
    else:
        lines.append(t("org_settings.set_at", when=local_time(settings.set_at)))
    return lines
