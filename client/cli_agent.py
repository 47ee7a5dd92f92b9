"""``kok unlock`` and ``kok lock``: one passphrase per working session (``client.agent``)."""

from __future__ import annotations

import time

import click

from . import agent_client
from .cli_common import parse_duration, settings
from .i18n import local_time, t
from .profile import load_profile
from .render import fit

DEFAULT_FOR = "8h"


@click.command("unlock", help=t("help.unlock"))
@click.option("--for", "for_", default=DEFAULT_FOR, show_default=True, metavar="DURATION",
              help=t("help.opt_unlock_for"))
@click.pass_context
def unlock_cmd(ctx: click.Context, for_: str) -> None:
    s = settings(ctx)
    seconds = parse_duration(for_, "--for")
    prof = load_profile(s.home, s.profile)
    running = agent_client.status(prof)
    if running is not None:
        expires = int(running["expires"])
        s.out(fit([t("unlock.already", profile=prof.name, until=local_time(expires))]),
              {"ok": True, "profile": prof.name, "expires": expires, "already": True,
               "pid": running.get("pid")})
        return
    keystore, passphrase = s.open_with_passphrase(prof)
    keystore.secrets.clear()  # the agent opens its own copy; this one is not needed
    agent_client.start(prof, passphrase, seconds)
    started = agent_client.status(prof) or {}
    expires = int(started.get("expires", time.time() + seconds))
    s.out(fit([t("unlock.done", profile=prof.name, until=local_time(expires))]),
          {"ok": True, "profile": prof.name, "expires": expires, "already": False,
           "pid": started.get("pid")})


@click.command("lock", help=t("help.lock"))
@click.pass_context
def lock_cmd(ctx: click.Context) -> None:
    s = settings(ctx)
    prof = load_profile(s.home, s.profile)
    ended = agent_client.lock(prof)
    s.out(fit([t("lock.done" if ended else "lock.none", profile=prof.name)]),
          {"ok": True, "profile": prof.name, "was_unlocked": ended})


AGENT_COMMANDS = (unlock_cmd, lock_cmd)
