"""``kok network ...``, ``kok org ...`` and ``kok staff ...``: onboarding and admin commands.

Key lifecycle (``docs/key-lifecycle.md``): ``org rekey`` / ``network rekey-org``
(identity key change by request file), ``org config`` (rotation period), ``org verify``
(safety code), ``staff revoke-self`` (lost device).

Request files carry their own signature; the commands that read them (``network admit``,
``org enrol``) refuse a tampered file and print the fingerprint for the admin to compare
with the requester, asking for confirmation when run on a terminal (``--yes`` skips it).
"""

from __future__ import annotations

import contextlib
import json
import sys
import termios
from pathlib import Path

import click

from protocol.keys import fingerprint, format_fingerprint

from ._client import Client
from .admin import read_org_request, read_staff_request
from .cli_common import (
    FullHelpGroup,
    ask_yes,
    parse_duration,
    read_file,
    run,
    settings,
    with_client,
    write_public_file,
)
from .errors import UsageError
from .i18n import t
from .identity import read_rekey_request
from .onboarding import init_network
from .org_settings import check_retention_days
from .profile import NetworkAnchor
from .render import fit, org_lines, org_settings_lines


def _compact(fp: str) -> str:
    return "".join(fp.split()).upper()


def confirm_fingerprint(yes: bool, expected: str | None, actual: str, what: str) -> None:
    """Make sure the person compared ``actual`` with the requester, before any passphrase.

    ``--fingerprint FP`` asserts the expected fingerprint (for scripts); ``--yes`` says it
    was compared; otherwise the question is asked on a terminal, and without one the
    command refuses instead of skipping the comparison silently.
    """
    if expected is not None:
        if _compact(expected) != _compact(actual):
            raise UsageError("fingerprint_mismatch", what=what, expected=expected, actual=actual)
        return
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("confirm_needs_terminal", what=what)
    with contextlib.suppress(termios.error, OSError):
        # Whatever was typed ahead (a passphrase, expecting its prompt) is not the answer:
        # it would be echoed on the screen.
        termios.tcflush(sys.stdin.fileno(), termios.TCIFLUSH)
    if not ask_yes(t("prompt.fingerprint_checked_of", what=what, fingerprint=actual)):
        raise UsageError("not_confirmed")


# --- network office ---------------------------------------------------------------------


@click.group(cls=FullHelpGroup, help=t("help.network"))
def network_group() -> None:
    pass


@network_group.command("init", help=t("help.network_init"))
@click.option("--name", required=True, help=t("help.opt_network_name"))
@click.option("--out", required=True, help=t("help.opt_network_out"))
@click.option("--relay", default=None, help=t("help.opt_relay_remembered"))
@click.pass_context
def network_init_cmd(ctx: click.Context, name: str, out: str, relay: str | None) -> None:
    s = settings(ctx)
    prof, anchor = init_network(s.home, s.profile, s.passphrase(confirm=True), name,
                                relay=relay)
    text = json.dumps(anchor.to_json(), indent=2, sort_keys=True) + "\n"
    write_public_file(out, text.encode("utf-8"))
    s.out([t("network.created", name=anchor.name, profile=prof.name, out=out),
           t("network.fingerprint", fingerprint=format_fingerprint(anchor.fingerprint))],
          {"profile": prof.name, "network": anchor.to_json(), "out": out})


@network_group.command("admit", help=t("help.network_admit"))
@click.argument("request_file")
@click.option("--relay", default=None, help=t("help.opt_relay_remembered"))
@click.option("--yes", is_flag=True, help=t("help.opt_yes"))
@click.option("--fingerprint", "expected", default=None, metavar="FP",
              help=t("help.opt_fingerprint"))
@click.pass_context
def network_admit_cmd(ctx: click.Context, request_file: str, relay: str | None,
                      yes: bool, expected: str | None) -> None:
    s = settings(ctx)
    data = read_file(request_file)
    req = read_org_request(data)  # refuse a tampered file before asking anything
    fp = format_fingerprint(fingerprint(req.identity_key))
    if not s.json:
        click.echo(t("admit.check", org=req.org_id, name=req.name, fingerprint=fp), err=True)
    confirm_fingerprint(yes, expected, fp, f"{req.org_id} ({req.name})")
    admission = with_client(ctx, lambda c: c.network.admit(data), relay=relay)
    s.out(t("admit.done", org=admission.org_id, name=admission.name),
          {"org_id": admission.org_id, "name": admission.name,
           "fingerprint": admission.fingerprint})


@network_group.command("revoke-org", help=t("help.network_revoke"))
@click.argument("org_id")
@click.option("--reason", required=True, help=t("help.opt_reason"))
@click.option("--relay", default=None, help=t("help.opt_relay_remembered"))
@click.pass_context
def network_revoke_cmd(ctx: click.Context, org_id: str, reason: str,
                       relay: str | None) -> None:
    with_client(ctx, lambda c: c.network.revoke_org(org_id, reason), relay=relay)
    settings(ctx).out(t("revoke.done", org=org_id), {"org_id": org_id, "revoked": True})


# --- org admin --------------------------------------------------------------------------


@click.group(cls=FullHelpGroup, help=t("help.org"))
def org_group() -> None:
    pass


@org_group.command("new", help=t("help.org_new"))
@click.argument("org_id")
@click.option("--name", required=True, help=t("help.opt_org_name"))
@click.option("--relay", required=True, help=t("help.opt_relay"))
@click.option("--network", "network_file", required=True, help=t("help.opt_network_file"))
@click.option("--out", required=True, help=t("help.opt_request_out"))
@click.option("--admin", "admin_name", default="admin", show_default=True,
              help=t("help.opt_admin_name"))
@click.pass_context
def org_new_cmd(ctx: click.Context, org_id: str, name: str, relay: str, network_file: str,
                out: str, admin_name: str) -> None:
    s = settings(ctx)
    anchor = NetworkAnchor.load(Path(network_file))
    passphrase = s.passphrase(confirm=True)
    prof, request = run(Client.new_org(s.home, s.profile, passphrase, org_id=org_id, name=name,
                                relay=relay, network=anchor, admin=admin_name,
                                ca_file=s.ca_file))
    write_public_file(out, request)
    fp = format_fingerprint(fingerprint(read_org_request(request).identity_key))
    s.out([t("org.request_written", org=org_id, out=out),
           t("org.read_fingerprint", fingerprint=fp)],
          {"profile": prof.name, "org_id": org_id, "staff_id": prof.info.staff_id,
           "fingerprint": fp, "out": out})


@org_group.command("activate", help=t("help.org_activate"))
@click.pass_context
def org_activate_cmd(ctx: click.Context) -> None:
    epoch = with_client(ctx, lambda c: c.org.activate())
    settings(ctx).out(t("org.activated", epoch=epoch), {"epoch": epoch})


@org_group.command("enrol", help=t("help.org_enrol"))
@click.argument("request_file")
@click.option("--yes", is_flag=True, help=t("help.opt_yes"))
@click.option("--fingerprint", "expected", default=None, metavar="FP",
              help=t("help.opt_fingerprint"))
@click.option("--admin", "as_admin", is_flag=True, help=t("help.opt_enrol_admin"))
@click.pass_context
def org_enrol_cmd(ctx: click.Context, request_file: str, yes: bool, expected: str | None,
                  as_admin: bool) -> None:
    s = settings(ctx)
    data = read_file(request_file)
    req = read_staff_request(data)
    fp = format_fingerprint(fingerprint(req.signing_key))
    if not s.json:
        click.echo(t("enrol.check", staff=req.staff_id, name=req.name, fingerprint=fp), err=True)
    confirm_fingerprint(yes, expected, fp, f"{req.staff_id} ({req.name})")
    with_client(ctx, lambda c: c.org.enrol(data, admin=as_admin))
    s.out(t("enrol.done", staff=req.staff_id),
          {"staff_id": req.staff_id, "role": "admin" if as_admin else "staff",
           "fingerprint": fp})


@org_group.command("remove", help=t("help.org_remove"))
@click.argument("staff_id")
@click.pass_context
def org_remove_cmd(ctx: click.Context, staff_id: str) -> None:
    async def action(client: Client) -> tuple[str, int]:
        full = client.org.staff_id_of(staff_id)
        return full, await client.org.remove(full)

    staff_id, epoch = with_client(ctx, action)
    settings(ctx).out(t("org.removed", staff=staff_id, epoch=epoch),
                      {"staff_id": staff_id, "removed": True, "epoch": epoch})


@org_group.command("rotate", help=t("help.org_rotate"))
@click.pass_context
def org_rotate_cmd(ctx: click.Context) -> None:
    epoch = with_client(ctx, lambda c: c.org.rotate())
    settings(ctx).out(t("org.rotated", epoch=epoch), {"epoch": epoch})


@org_group.command("show", help=t("help.org_show"))
@click.pass_context
def org_show_cmd(ctx: click.Context) -> None:
    info = with_client(ctx, lambda c: c.org.show())
    settings(ctx).out(org_lines(info), info.to_json())


# --- staff ------------------------------------------------------------------------------


@click.group(cls=FullHelpGroup, help=t("help.staff"))
def staff_group() -> None:
    pass


@staff_group.command("new", help=t("help.staff_new"))
@click.option("--org", "org_id", required=True, help=t("help.opt_org"))
@click.option("--name", required=True, help=t("help.opt_staff_name"))
@click.option("--relay", required=True, help=t("help.opt_relay"))
@click.option("--network", "network_file", required=True, help=t("help.opt_network_file"))
@click.option("--out", required=True, help=t("help.opt_request_out"))
@click.pass_context
def staff_new_cmd(ctx: click.Context, org_id: str, name: str, relay: str, network_file: str,
                  out: str) -> None:
    s = settings(ctx)
    anchor = NetworkAnchor.load(Path(network_file))
    passphrase = s.passphrase(confirm=True)
    prof, request = run(Client.new_staff(s.home, s.profile, passphrase, org_id=org_id, name=name,
                                  relay=relay, network=anchor, ca_file=s.ca_file))
    write_public_file(out, request)
    fp = format_fingerprint(fingerprint(read_staff_request(request).signing_key))
    s.out([t("staff.request_written", staff=prof.info.staff_id, out=out),
           t("staff.read_fingerprint", fingerprint=fp)],
          {"profile": prof.name, "staff_id": prof.info.staff_id, "fingerprint": fp, "out": out})


def confirm_action(yes: bool, prompt_key: str) -> None:
    """On a terminal, ask before a step that cannot be undone; refuse if not confirmed."""
    if yes or not sys.stdin.isatty():
        return
    if not ask_yes(t(prompt_key)):
        raise UsageError("not_confirmed")


# --- key lifecycle ------------------------------------------------------------------------


@network_group.command("rekey-org", help=t("help.network_rekey"))
@click.argument("request_file")
@click.option("--relay", default=None, help=t("help.opt_relay_remembered"))
@click.option("--yes", is_flag=True, help=t("help.opt_yes"))
@click.option("--fingerprint", "expected", default=None, metavar="FP",
              help=t("help.opt_fingerprint"))
@click.pass_context
def network_rekey_cmd(ctx: click.Context, request_file: str, relay: str | None,
                      yes: bool, expected: str | None) -> None:
    s = settings(ctx)
    data = read_file(request_file)
    _, record = read_rekey_request(data)  # refuse a damaged file before asking anything
    fp = format_fingerprint(fingerprint(record.identity_key))
    if not s.json:
        click.echo(t("rekey.check", org=record.org_id, fingerprint=fp), err=True)
    confirm_fingerprint(yes, expected, fp, record.org_id)
    done = with_client(ctx, lambda c: c.network.rekey_org(data), relay=relay)
    s.out(t("rekey.countersigned", org=done.org_id,
            fingerprint=format_fingerprint(done.new_fingerprint)),
          {"org_id": done.org_id, "old_fingerprint": done.old_fingerprint,
           "fingerprint": done.new_fingerprint})


@org_group.command("rekey", help=t("help.org_rekey"))
@click.option("--out", required=True, help=t("help.opt_rekey_out"))
@click.pass_context
def org_rekey_cmd(ctx: click.Context, out: str) -> None:
    request, fp = with_client(ctx, lambda c: c.org.rekey())
    write_public_file(out, request)
    settings(ctx).out([t("rekey.written", out=out),
                       t("rekey.read_fingerprint", fingerprint=format_fingerprint(fp))],
                      {"out": out, "fingerprint": fp})


@org_group.command("config", help=t("help.org_config"))
@click.option("--rotate-every", default=None, metavar="DURATION",
              help=t("help.opt_rotate_every"))
@click.pass_context
def org_config_cmd(ctx: click.Context, rotate_every: str | None) -> None:
    seconds = parse_duration(rotate_every, "--rotate-every") if rotate_every is not None else None
    info = with_client(ctx, lambda c: c.org.configure(rotate_every=seconds))
    settings(ctx).out(org_lines(info), info.to_json())


@org_group.command("settings", help=t("help.org_settings"))
@click.option("--read-reports", type=click.Choice(["on", "off"]), default=None,
              help=t("help.opt_read_reports"))
@click.option("--retention", default=None, metavar="DURATION", help=t("help.opt_retention"))
@click.pass_context
def org_settings_cmd(ctx: click.Context, read_reports: str | None,
                     retention: str | None) -> None:
    days = None
    if retention is not None:
        seconds = parse_duration(retention, "--retention")
        if seconds % 86400:
            raise UsageError("retention_whole_days", value=retention)
        days = check_retention_days(seconds // 86400)
    reports = None if read_reports is None else read_reports == "on"
    if reports is None and days is None:
        shown = with_client(ctx, lambda c: c.org_settings())
    else:
        shown = with_client(ctx, lambda c: c.set_org_settings(read_reports=reports,
                                                              retention_days=days))
    settings(ctx).out(org_settings_lines(shown), shown.to_json())


@org_group.command("verify", help=t("help.org_verify"))
@click.argument("org_id")
@click.argument("code", nargs=-1, required=True)
@click.pass_context
def org_verify_cmd(ctx: click.Context, org_id: str, code: tuple[str, ...]) -> None:
    expected = with_client(ctx, lambda c: c.verify(org_id, " ".join(code)))
    settings(ctx).out(t("verify.done", org=org_id),
                      {"org_id": org_id, "verified": True, "safety_code": expected})


@org_group.command("unverify", help=t("help.org_unverify"))
@click.argument("org_id")
@click.option("--yes", is_flag=True, help=t("help.opt_yes"))
@click.pass_context
def org_unverify_cmd(ctx: click.Context, org_id: str, yes: bool) -> None:
    if not yes and sys.stdin.isatty() and not ask_yes(t("prompt.unverify", org=org_id)):
        raise UsageError("unverify_declined", org=org_id)
    now = with_client(ctx, lambda c: c.unverify(org_id))
    lines = [t("unverify.done", org=org_id)]
    if now == "org_verified":
        lines.append(t("unverify.org_still", org=org_id))
    settings(ctx).out(fit(lines), {"org_id": org_id, "verified": False, "verification": now})


@staff_group.command("revoke-self", help=t("help.staff_revoke_self"))
@click.option("--yes", is_flag=True, help=t("help.opt_yes"))
@click.pass_context
def staff_revoke_self_cmd(ctx: click.Context, yes: bool) -> None:
    confirm_action(yes, "prompt.revoke_self")
    staff_id = with_client(ctx, lambda c: c.revoke_self())
    settings(ctx).out(t("staff.revoked_self", staff=staff_id),
                      {"staff_id": staff_id, "removed": True})
