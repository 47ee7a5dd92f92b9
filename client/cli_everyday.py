"""Everyday ``kok`` commands beside send and read: orgs, sent, search, thread, keep, export,
app.

Each one is a thin skin over one ``Client`` method; the lines are plain text, one fact per
line, in the person's language (``client.i18n``), or JSON with ``--json``.
"""

from __future__ import annotations

import os

import click

from protocol.keys import format_fingerprint

from ._client import Client
from .cli_common import parse_duration, settings, with_client
from .conversations import ThreadEntry
from .errors import UsageError
from .export import Export
from .i18n import file_size, local_time, t, tn
from .models import Message
from .orgs_list import OrgEntry, display_name
from .render import retention_line, short_id, withdrawn_lines
from .sent_items import SentItem


def org_entry_lines(orgs: list[OrgEntry]) -> list[str]:
    """One block per organisation: name and id, fingerprint, standing, staff."""
    lines = [t("orgs.count", n=len(orgs))]
    for o in orgs:
        lines.append(t("orgs.org", name=o.name, org=o.org_id))
        lines.append(t("orgs.fingerprint", fingerprint=format_fingerprint(o.fingerprint)))
        lines.append(t(f"orgs.standing_{o.verification}"))
        if o.revoked:
            lines.append(t("orgs.revoked"))
        elif not o.active:
            lines.append(t("orgs.not_active"))
        lines.append(tn("orgs.staff_count", o.staff_count))
        for s in o.staff:
            lines.append(t("orgs.staff", name=s.display_name, staff=s.staff_id,
                           role=t(f"role.{s.role}")))
    return lines


def sent_lines(items: list[SentItem]) -> list[str]:
    """One line per sent message, newest first, with its delivery state when known."""
    lines = [t("sent.count", n=len(items))]
    for s in items:
        state = t(f"state.{s.state}") if s.state else t("sent.state_unknown")
        lines.append(t("sent.line", id=short_id(s.id), sent=local_time(s.sent),
                       to=", ".join(s.to), subject=s.subject, state=state))
    return lines


def search_lines(text: str, hits: list[Message]) -> list[str]:
    lines = [t("search.count", n=len(hits), text=text)]
    for m in hits:
        key = "inbox.line" if m.read else "inbox.line_unread"
        lines.append(t(key, id=short_id(m.id), sent=local_time(m.sent), sender=m.from_staff,
                       subject=m.subject))
        lines += withdrawn_lines(m)
    return lines


def thread_lines(entries: list[ThreadEntry]) -> list[str]:
    lines = [t("thread.count", n=len(entries))]
    for e in entries:
        lines.append("")
        if e.direction == "sent":
            lines.append(t("thread.sent", id=short_id(e.id), sent=local_time(e.sent),
                           to=", ".join(e.to), subject=e.subject))
        else:
            lines.append(t("thread.received", id=short_id(e.id), sent=local_time(e.sent),
                           sender=display_name(e.from_staff), org=e.from_org,
                           subject=e.subject))
            if e.message is not None and e.message.withdrawn:
                lines += withdrawn_lines(e.message)
            else:
                lines.extend((e.body or "").splitlines() or [""])
    return lines


@click.command("orgs", help=t("help.orgs"))
@click.pass_context
def orgs_cmd(ctx: click.Context) -> None:
    orgs = with_client(ctx, lambda c: c.orgs())
    settings(ctx).out(org_entry_lines(orgs), [o.to_json() for o in orgs])


@click.command("sent", help=t("help.sent"))
@click.option("--offline", is_flag=True, help=t("help.opt_sent_offline"))
@click.pass_context
def sent_cmd(ctx: click.Context, offline: bool) -> None:
    items = with_client(ctx, lambda c: c.sent(status=not offline))
    settings(ctx).out(sent_lines(items), [s.to_json() for s in items])


@click.command("search", help=t("help.search"))
@click.argument("text")
@click.pass_context
def search_cmd(ctx: click.Context, text: str) -> None:
    hits = with_client(ctx, lambda c: c.search(text))
    settings(ctx).out(search_lines(text, hits), [m.to_json(body=False) for m in hits])


@click.command("thread", help=t("help.thread"))
@click.argument("message_id")
@click.pass_context
def thread_cmd(ctx: click.Context, message_id: str) -> None:
    entries = with_client(ctx, lambda c: c.thread(message_id))
    settings(ctx).out(thread_lines(entries), [e.to_json() for e in entries])


@click.command("keep", help=t("help.keep"))
@click.argument("message_id")
@click.option("--undo", is_flag=True, help=t("help.opt_keep_undo"))
@click.pass_context
def keep_cmd(ctx: click.Context, message_id: str, undo: bool) -> None:
    message = with_client(ctx, lambda c: c.keep(message_id, keep=not undo))
    settings(ctx).out(retention_line(message), message.to_json(body=False))


def export_lines(done: Export) -> list[str]:
    lines = [t("export.written", path=str(done.text_file))]
    lines += [t("save.done", name=f.name, size=file_size(f.size), path=str(f.path))
              for f in done.files]
    if done.attachments_missing:
        lines.append(t("export.attachments_missing", reason=done.attachments_missing))
    return lines


@click.command("export", help=t("help.export"))
@click.argument("message_id")
@click.option("--out", "out", required=True, metavar="FOLDER", help=t("help.opt_export_out"))
@click.option("--no-attachments", is_flag=True, help=t("help.opt_export_no_attachments"))
@click.option("--force", is_flag=True, help=t("help.opt_force"))
@click.pass_context
def export_cmd(ctx: click.Context, message_id: str, out: str, no_attachments: bool,
               force: bool) -> None:
    done = with_client(ctx, lambda c: c.export(message_id, out, attachments=not no_attachments,
                                               force=force))
    # said every time: the file is outside the app, and nothing deletes it again
    click.echo(t("export.warning", path=str(done.folder)), err=True)
    settings(ctx).out(export_lines(done), done.to_json())


@click.command("app", help=t("help.app"))
@click.option("--port", type=click.IntRange(0, 65535), default=0, help=t("help.opt_app_port"))
@click.option("--no-browser", is_flag=True, help=t("help.opt_no_browser"))
@click.option("--idle-lock", "idle_lock", default="15m", show_default=True, metavar="DURATION",
              help=t("help.opt_idle_lock"))
@click.pass_context
def app_cmd(ctx: click.Context, port: int, no_browser: bool, idle_lock: str) -> None:
    from .app import run_app
    from .errors import ProfileError
    from .profile import default_profile, load_profile

    s = settings(ctx)
    idle_minutes = idle_lock_minutes(idle_lock)
    try:
        name = load_profile(s.home, s.profile).name  # a broken profile is reported first
    except ProfileError as exc:
        if exc.code != "profile_missing":
            raise
        # No such profile on this computer: the app offers only to join it as a new device
        # of a person, with the code one of their devices shows (docs/app.md, Devices).
        run_app(s.home, s.profile or default_profile(), port=port,
                open_browser=not no_browser, idle_minutes=idle_minutes, ca_file=s.ca_file)
        return
    # A passphrase given the usual non-interactive ways unlocks at start; otherwise the
    # page asks for it (never the terminal: the person is in the browser).
    passphrase = None
    if s.passphrase_file is not None or os.environ.get("KOK_PASSPHRASE"):
        passphrase = s.passphrase()
    run_app(s.home, name, port=port, open_browser=not no_browser,
            idle_minutes=idle_minutes, passphrase=passphrase, ca_file=s.ca_file)


IDLE_LOCK_MINUTES = (1, 480)


def idle_lock_minutes(text: str) -> int:
    """``--idle-lock`` in whole minutes: a duration like every other option (``30m``,
    ``2h``), or a bare number of minutes as before; from one minute to eight hours."""
    seconds = int(text) * 60 if text.strip().isascii() and text.strip().isdigit() else \
        parse_duration(text, "--idle-lock")
    low, high = IDLE_LOCK_MINUTES
    if seconds % 60 or not low * 60 <= seconds <= high * 60:
        raise UsageError("idle_lock_range", value=text, low=low, high=high)
    return seconds // 60


async def latest_or(client: Client, message_id: str | None) -> str:
    """``message_id``, or the message sent last when none was given."""
    if message_id:
        return message_id
    from .sent_items import latest_sent_id

    return await latest_sent_id(client.store)


EVERYDAY_COMMANDS = (orgs_cmd, sent_cmd, search_cmd, thread_cmd, keep_cmd, export_cmd, app_cmd)
