"""The ``kok`` command: a thin skin over ``client.Client``.

Every command opens the profile, calls the library, and prints plain text (or JSON with
``--json``). Failures never show a traceback: ``KokGroup.main`` maps every error to one
line on stderr and a non-zero exit code (1 for a failed operation, 2 for a usage mistake).
Set ``KOK_DEBUG=1`` to see the traceback of an unexpected error when reporting a bug.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import aiohttp
import click

from kokshared.private_files import use_private_umask
from protocol.errors import ProtocolError

from . import agent_client
from ._client import Client
from .cli_common import (
    FullHelpGroup,
    Settings,
    parse_duration,
    read_file,
    read_secret_file,
    settings,
    with_client,
)
from .errors import KokError, ProfileError, RelayUnreachable, UsageError, VerificationError
from .i18n import file_size, localise_usage, t, tn, use_for_click
from .passphrase_strength import require_strong
from .profile import load_profile, save_keystore
from .progress import progress_for
from .render import inbox_lines, message_lines, org_lines, status_lines, sync_lines
from .safetext import printable

T = TypeVar("T")

# click's own texts ("Usage:", "Missing option") in the person's language too
use_for_click()

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# click >= 8.2 raises this for a group called without a subcommand; older versions print help.
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_Never", (click.UsageError,), {}))


# --- errors: one line, never a traceback ------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def report_error(code: str, message: str, exit_code: int, *, as_json: bool = False) -> NoReturn:
    """Print ONE line (JSON under ``--json``) to stderr and exit."""
    if as_json:
        line = json.dumps({"error": {"code": code, "message": _one_line(message)}},
                          ensure_ascii=False)
    else:
        line = t("cli.error", message=printable(_one_line(message)))
    click.echo(line, err=True)
    sys.exit(exit_code)


class KokGroup(FullHelpGroup):
    """The root group; ``main`` turns every failure into one line and an exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        argv = kwargs.get("args") or (args[0] if args else None) or sys.argv[1:]
        as_json = "--json" in list(argv)

        def fail(code: str, message: str, exit_code: int) -> NoReturn:
            report_error(code, message, exit_code, as_json=as_json)

        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.Abort:
            fail("aborted", t("cli.aborted"), EXIT_FAILED)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except _NO_ARGS_IS_HELP as exc:
            # "kok" or "kok org" alone: show the help, as people expect, rather than an error.
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            sys.exit(0)
        except click.UsageError as exc:
            fail("usage", exc.format_message(), EXIT_USAGE)
        except click.ClickException as exc:
            fail("usage", exc.format_message(), exc.exit_code or EXIT_FAILED)
        except UsageError as exc:
            fail(exc.code, exc.message, EXIT_USAGE)
        except KokError as exc:
            fail(exc.code, exc.message, EXIT_FAILED)
        except ProtocolError as exc:
            err = VerificationError.from_protocol(exc)
            fail(err.code, err.message, EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted", t("cli.interrupted"), EXIT_INTERRUPTED)
        except (aiohttp.ClientError, OSError) as exc:
            fail("io_error", t("error.io_error", detail=_one_line(str(exc))), EXIT_FAILED)
        except Exception as exc:
            if os.environ.get("KOK_DEBUG"):
                raise
            fail("internal_error", t("error.internal_error", kind=type(exc).__name__),
                         EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else 0)


# --- the root group ---------------------------------------------------------------------


@click.group(cls=KokGroup, help=t("help.kok"))
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=t("help.opt_home"))
@click.option("--profile", default=None, help=t("help.opt_profile"))
@click.option("--json", "as_json", is_flag=True, help=t("help.opt_json"))
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help=t("help.opt_passphrase_file"))
@click.option("--ca-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="KOK_CA_FILE", help=t("help.opt_ca_file"))
@click.option("--quiet", "-q", is_flag=True, help=t("help.opt_quiet"))
@click.version_option(package_name="kok-relay", prog_name="kok")
@click.pass_context
def main(ctx: click.Context, home: Path | None, profile: str | None, as_json: bool,
         passphrase_file: Path | None, ca_file: Path | None, quiet: bool) -> None:
    ctx.obj = Settings(home=home, profile=profile, json=as_json, passphrase_file=passphrase_file,
                       ca_file=ca_file, quiet=quiet)


@main.command("sync", help=t("help.sync"))
@click.pass_context
def sync_cmd(ctx: click.Context) -> None:
    report = with_client(ctx, lambda c: c.sync())
    settings(ctx).out(sync_lines(report), report.to_json())


@main.command("send", help=t("help.send"))
@click.option("--to", "to", required=True, help=t("help.opt_to"))
@click.option("--subject", required=True, help=t("help.opt_subject"))
@click.option("--body", default=None, help=t("help.opt_body"))
@click.option("--body-file", default=None, help=t("help.opt_body_file"))
@click.option("--ttl", default="7d", show_default=True, help=t("help.opt_ttl"))
@click.option("--reply-to", default=None, help=t("help.opt_reply_to"))
@click.option("--attach", "attach", multiple=True, metavar="FILE", help=t("help.opt_attach"))
@click.pass_context
def send_cmd(ctx: click.Context, to: str, subject: str, body: str | None, body_file: str | None,
             ttl: str, reply_to: str | None, attach: tuple[str, ...] = ()) -> None:
    if body is not None and body_file is not None:
        raise UsageError("body_twice")
    seconds = parse_duration(ttl, "--ttl")
    if body_file is not None:
        try:
            text = read_file(body_file).decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("body_not_utf8", path=body_file) from None
    elif body is not None:
        text = body
    else:
        if sys.stdin.isatty():
            click.echo(t("prompt.body"), err=True)
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("body_not_utf8", path="stdin") from None
    recipients = [o for o in to.split(",") if o.strip()]
    progress = progress_for(settings(ctx).json, quiet=settings(ctx).quiet)
    async def action(client: Client) -> tuple[str, bool]:
        sent = await client.send(to=recipients, subject=subject, body=text, ttl=seconds,
                                 reply_to=reply_to, attachments=attach, progress=progress)
        return sent, sent in await client.queued()

    message_id, queued = with_client(ctx, action)
    data: dict[str, Any] = {"id": message_id, "to": recipients, "queued": queued}
    if attach:
        data["attachments"] = [Path(a).name for a in attach]
    done = "send.queued" if queued else "send.done"
    settings(ctx).out(t(done, id=message_id, to=", ".join(recipients)), data)


@main.command("save", help=t("help.save"))
@click.argument("message_id")
@click.option("--dir", "directory", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help=t("help.opt_save_dir"))
@click.option("--force", is_flag=True, help=t("help.opt_force"))
@click.option("--mkdir", is_flag=True, help=t("help.opt_mkdir"))
@click.pass_context
def save_cmd(ctx: click.Context, message_id: str, directory: Path, force: bool,
             mkdir: bool) -> None:
    s = settings(ctx)
    progress = progress_for(s.json, quiet=s.quiet)
    made = mkdir and not directory.exists()
    try:
        saved = with_client(ctx, lambda c: c.save(message_id, directory, force=force,
                                                  progress=progress, mkdir=mkdir))
    except RelayUnreachable:
        if not s.json:  # what was saved so far is kept to go on from (client.save_checkpoints)
            click.echo(t("save.resume_hint"), err=True)
        raise
    if made and not s.json:
        click.echo(t("save.made_dir", path=str(directory)), err=True)
    s.out([t("save.done", name=f.name, path=str(f.path), size=file_size(f.size)) for f in saved],
          {"saved": [f.to_json() for f in saved]})


@main.command("inbox", help=t("help.inbox"))
@click.pass_context
def inbox_cmd(ctx: click.Context) -> None:
    async def action(client: Client) -> tuple[list[Any], list[Any]]:
        return await client.inbox(), await client.quarantined()

    messages, quarantined = with_client(ctx, action)
    lines = inbox_lines(messages)
    if quarantined:
        lines.append(tn("inbox.quarantined", len(quarantined)))
    settings(ctx).out(lines, [m.to_json(body=False) for m in messages])


@main.command("read", help=t("help.read"))
@click.argument("message_id")
@click.pass_context
def read_cmd(ctx: click.Context, message_id: str) -> None:
    message = with_client(ctx, lambda c: c.read(message_id))
    settings(ctx).out(message_lines(message), message.to_json())


@main.command("status", help=t("help.status"))
@click.argument("message_id", required=False)
@click.pass_context
def status_cmd(ctx: click.Context, message_id: str | None) -> None:
    from .cli_everyday import latest_or

    async def action(client: Client) -> Any:
        return await client.status(await latest_or(client, message_id))

    status = with_client(ctx, action)
    settings(ctx).out(status_lines(status), status.to_json())


@main.command("retract", help=t("help.retract"))
@click.argument("message_id")
@click.pass_context
def retract_cmd(ctx: click.Context, message_id: str) -> None:
    status = with_client(ctx, lambda c: c.retract(message_id))
    settings(ctx).out(status_lines(status), status.to_json())


@main.command("whois", help=t("help.whois"))
@click.argument("org_id")
@click.option("--compare-head", "compare_head", default=None, metavar="SIZE:CODE",
              help=t("help.opt_compare_head"))
@click.pass_context
def whois_cmd(ctx: click.Context, org_id: str, compare_head: str | None) -> None:
    info = with_client(ctx, lambda c: c.whois(org_id, compare_head=compare_head))
    lines = org_lines(info)
    if compare_head is not None:
        lines.append(t("whois.head_matches"))
    settings(ctx).out(lines, info.to_json())


@main.command("listen", help=t("help.listen"))
@click.option("--count", type=click.IntRange(min=1), default=None, help=t("help.opt_count"))
@click.pass_context
def listen_cmd(ctx: click.Context, count: int | None) -> None:
    s = settings(ctx)

    async def action(client: Client) -> None:
        if not s.json:
            click.echo(t("listen.started"), err=True)
        seen = 0
        async for message in client.listen():
            s.out([*message_lines(message), ""], message.to_json())
            sys.stdout.flush()
            seen += 1
            if count is not None and seen >= count:
                return

    try:
        with_client(ctx, action)
    except KeyboardInterrupt:
        return  # Ctrl-C is how one stops listening: not an error


@main.command("passwd", help=t("help.passwd"))
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help=t("help.opt_new_passphrase_file"))
@click.pass_context
def passwd_cmd(ctx: click.Context, new_passphrase_file: Path | None) -> None:
    s = settings(ctx)
    prof = load_profile(s.home, s.profile)
    keystore = s.open_keystore(prof, use_agent=False)  # changing it needs the current one
    if new_passphrase_file is not None:
        new = read_secret_file(new_passphrase_file)
    elif os.environ.get("KOK_NEW_PASSPHRASE"):
        new = os.environ["KOK_NEW_PASSPHRASE"]
    elif sys.stdin.isatty():
        new = str(click.prompt(t("prompt.new_passphrase"), hide_input=True,
                               confirmation_prompt=t("prompt.passphrase_again"), err=True))
    else:
        raise ProfileError("no_new_passphrase")
    if not new:
        raise ProfileError("empty_passphrase")
    require_strong(new, [prof.name])
    save_keystore(keystore, new)
    agent_client.lock(prof)  # it holds the old passphrase, which no longer opens the keystore
    s.out(t("passwd.done", profile=prof.name), {"ok": True, "profile": prof.name})


def _mount_subcommands() -> None:
    from .cli_admin import network_group, org_group, staff_group
    from .demo import demo_cmd

    main.add_command(network_group, "network")
    main.add_command(org_group, "org")
    main.add_command(staff_group, "staff")
    from .cli_devices import device_group

    main.add_command(device_group, "device")
    main.add_command(demo_cmd, "demo")
    from .cli_everyday import EVERYDAY_COMMANDS

    for command in EVERYDAY_COMMANDS:
        main.add_command(command)
    from .cli_agent import AGENT_COMMANDS

    for command in AGENT_COMMANDS:
        main.add_command(command)
    try:
        from relay.cli import relay_group  # the relay engineer's commands, when installed
    except ImportError:
        return
    localise_relay(relay_group)
    main.add_command(relay_group, "relay")


def localise_relay(group: click.Group) -> None:
    """``kok relay`` stands in kok's command list, so its description and its commands' are
    in the person's language like the rest; their options and what the relay prints stay
    in English, the language of the operator's documentation (deploy/OPERATOR.md).
    ``python -m relay`` is not affected (this runs only when ``kok`` mounts the group)."""
    helps = {(): t("help.relay"), ("init",): t("help.relay_init"),
             ("serve",): t("help.relay_serve"), ("purge",): t("help.relay_purge"),
             ("stats",): t("help.relay_stats"), ("privacy",): t("help.relay_privacy"),
             ("privacy", "report"): t("help.relay_privacy_report"),
             ("backup",): t("help.relay_backup"), ("restore",): t("help.relay_restore"),
             ("migrate",): t("help.relay_migrate")}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if path in helps:
            command.help, command.short_help = helps[path], None
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))

    walk(group, ())


_mount_subcommands()
localise_usage(main)


def run() -> None:
    """The ``kok`` command: everything it writes (profiles, mail, saved files) private."""
    use_private_umask()
    main(prog_name="kok")
