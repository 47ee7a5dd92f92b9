"""``kok device``: a person's devices (a thin skin over ``Client.link_device`` and friends).

The usual way: on a device the person already uses, ``kok device link`` shows a one-time
code and waits; on the new device, ``kok --profile NEW device join CODE --relay URL
--network FILE`` takes it, and the two devices finish the link through the relay without
anything to compare (SPEC.md section 6.9). Without a relay both can reach at once, the
file-based way still works: ``kok --profile NEW device new --staff ORG/NAME ...`` writes a
link request, and ``kok device add FILE`` on an existing device adds it after the person
compared fingerprints. ``kok device list`` and ``kok device remove DEVICE_ID`` (from any of
the person's devices, or by the org admin for anyone of the org) complete it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from protocol.keys import fingerprint, format_fingerprint
from protocol.link import LinkCode

from ._client import Client
from .admin import read_staff_request
from .cli_admin import confirm_action
from .cli_common import read_file, run, settings, with_client, write_public_file
from .i18n import t
from .profile import NetworkAnchor


@click.group(help=t("help.device"))
def device_group() -> None:
    pass


@device_group.command("link", help=t("help.device_link"))
@click.pass_context
def device_link_cmd(ctx: click.Context) -> None:
    s = settings(ctx)

    async def link_and_wait(client: Client) -> str:
        link = await client.link_device()
        if s.json:  # the first line, at once: a script hands the code to the new device
            click.echo(json.dumps({"code": link.code}))
        else:
            click.echo(t("device.link_code", code=link.code))
            click.echo(t("device.link_join", code=link.code))
            click.echo(t("device.link_waiting"))
        sys.stdout.flush()
        try:
            return await link.wait()
        except BaseException:
            # refused, interrupted (Ctrl-C) or failed: the code must stop working at once
            with contextlib.suppress(Exception):
                await link.cancel()
            raise

    device = with_client(ctx, link_and_wait)
    fp = format_fingerprint(device)
    s.out(t("device.linked", device=fp), {"device": device, "fingerprint": fp})


@device_group.command("join", help=t("help.device_join"))
@click.argument("code")
@click.option("--relay", required=True, help=t("help.opt_relay"))
@click.option("--network", "network_file", required=True, help=t("help.opt_network_file"))
@click.pass_context
def device_join_cmd(ctx: click.Context, code: str, relay: str, network_file: str) -> None:
    s = settings(ctx)
    anchor = NetworkAnchor.load(Path(network_file))
    LinkCode.parse(code)  # a typo is named before the passphrase is asked for
    passphrase = s.passphrase(confirm=True)
    prof = run(Client.join_device(s.home, s.profile, passphrase, code, relay=relay,
                                  network=anchor, ca_file=s.ca_file))
    staff_id = prof.info.staff_id
    s.out(t("device.joined", staff=staff_id, profile=prof.name),
          {"profile": prof.name, "staff_id": staff_id})


@device_group.command("new", help=t("help.device_new"))
@click.option("--staff", "staff_id", required=True, help=t("help.opt_device_staff"))
@click.option("--relay", required=True, help=t("help.opt_relay"))
@click.option("--network", "network_file", required=True, help=t("help.opt_network_file"))
@click.option("--out", required=True, help=t("help.opt_device_out"))
@click.pass_context
def device_new_cmd(ctx: click.Context, staff_id: str, relay: str, network_file: str,
                   out: str) -> None:
    s = settings(ctx)
    anchor = NetworkAnchor.load(Path(network_file))
    passphrase = s.passphrase(confirm=True)
    prof, request = run(Client.new_device(s.home, s.profile, passphrase, staff_id=staff_id,
                                          relay=relay, network=anchor, ca_file=s.ca_file))
    write_public_file(out, request)
    fp = format_fingerprint(fingerprint(read_staff_request(request).signing_key))
    s.out([t("device.request_written", staff=staff_id, out=out),
           t("device.compare_fingerprint", fingerprint=fp)],
          {"profile": prof.name, "staff_id": staff_id, "fingerprint": fp, "out": out})


@device_group.command("add", help=t("help.device_add"))
@click.argument("request_file")
@click.option("--yes", is_flag=True, help=t("help.opt_yes"))
@click.pass_context
def device_add_cmd(ctx: click.Context, request_file: str, yes: bool) -> None:
    s = settings(ctx)
    request = read_file(request_file)
    fp = format_fingerprint(fingerprint(read_staff_request(request).signing_key))
    if not yes and sys.stdin.isatty():  # the person compares before confirming
        click.echo(t("device.check_fingerprint", fingerprint=fp), err=True)
    confirm_action(yes, "prompt.device_add")
    device = with_client(ctx, lambda c: c.add_device(request))
    s.out(t("device.added", device=fp), {"device": device, "fingerprint": fp})


@device_group.command("list", help=t("help.device_list"))
@click.pass_context
def device_list_cmd(ctx: click.Context) -> None:
    devices = with_client(ctx, lambda c: c.devices())
    lines = [t("device.line_removed" if d.removed is not None else
               "device.line_this" if d.this_device else "device.line",
               device=format_fingerprint(d.device_id)) for d in devices]
    settings(ctx).out(lines, [{"device": d.device_id, "added": d.added, "removed": d.removed,
                               "this_device": d.this_device} for d in devices])


@device_group.command("remove", help=t("help.device_remove"))
@click.argument("device_id")
@click.option("--staff", "staff_id", default=None, help=t("help.opt_device_remove_staff"))
@click.option("--yes", is_flag=True, help=t("help.opt_yes"))
@click.pass_context
def device_remove_cmd(ctx: click.Context, device_id: str, staff_id: str | None,
                      yes: bool) -> None:
    confirm_action(yes, "prompt.device_remove")
    device = device_id.replace(" ", "").upper()
    rotated = with_client(ctx, lambda c: c.remove_device(device, staff_id))
    settings(ctx).out(t("device.removed", device=format_fingerprint(device)),
                      {"device": device, "removed": True, "rotated": rotated})
