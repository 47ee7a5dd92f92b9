"""What every ``kok`` command shares: the global settings, opening the profile, file helpers.

Kept apart from ``client.cli`` (the root group) so the command modules (``cli_admin``,
``cli_everyday``) and the root that mounts them do not import each other.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from . import agent_client
from ._client import Client
from .errors import ProfileError, UsageError
from .i18n import t
from .keystore import Keystore
from .passphrase_strength import weakness
from .profile import Profile, load_profile
from .safetext import printable

T = TypeVar("T")
WIDTH = 80
"""No line of kok's own is longer (braille displays and screen readers follow lines)."""

PASSPHRASE_TRIES = 3
_DURATION_RE = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$", re.ASCII)
_DURATION_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class Settings:
    """The global options."""

    home: Path | None
    profile: str | None
    json: bool
    passphrase_file: Path | None
    ca_file: Path | None = None
    quiet: bool = False

    def asks(self) -> bool:
        """True if the passphrase is typed at a prompt (no file, no environment variable)."""
        return (self.passphrase_file is None and not os.environ.get("KOK_PASSPHRASE")
                and sys.stdin.isatty())

    def passphrase(self, *, confirm: bool = False, profile: str | None = None,
                   hints: Iterable[str] = ()) -> str:
        """From ``--passphrase-file``, ``$KOK_PASSPHRASE``, or a hidden prompt on a terminal
        that names the profile it is for.

        ``confirm`` marks a new passphrase: typed twice, and refused if it is easy to guess
        (``client.passphrase_strength``; ``hints`` are names it must not lean on); on a
        terminal another one may be chosen.
        """
        name = profile or self.profile or os.environ.get("KOK_PROFILE") or "default"
        attempt = 1
        while True:
            value = self._passphrase_once(confirm=confirm, profile=name)
            if not confirm:
                return value
            reason = weakness(value, [name, *hints])
            if reason is None:
                return value
            if not self.asks() or attempt >= PASSPHRASE_TRIES:
                raise ProfileError("weak_passphrase", reason=reason)
            click.echo(t("prompt.weak_passphrase", reason=reason), err=True)
            attempt += 1

    def _passphrase_once(self, *, confirm: bool, profile: str) -> str:
        if self.passphrase_file is not None:
            return read_secret_file(self.passphrase_file)
        env = os.environ.get("KOK_PASSPHRASE")
        if env:
            return env
        if not sys.stdin.isatty():
            raise ProfileError("no_passphrase")
        value = click.prompt(t("prompt.passphrase_for", profile=profile), hide_input=True,
                             confirmation_prompt=t("prompt.passphrase_again") if confirm else False,
                             err=True)
        return str(value)

    def open_keystore(self, prof: Profile, *, use_agent: bool = True) -> Keystore:
        """The profile's keystore: from its unlock agent (``kok unlock``) if one runs, else
        with the passphrase; a mistyped one may be typed again on a terminal."""
        if use_agent:
            keystore = agent_client.open_keystore(prof)
            if keystore is not None:
                return keystore
        return self.open_with_passphrase(prof)[0]

    def open_with_passphrase(self, prof: Profile) -> tuple[Keystore, str]:
        """The keystore and the passphrase that opened it (retried on a terminal)."""
        tries = PASSPHRASE_TRIES if self.asks() else 1
        attempt = 1
        while True:
            passphrase = self.passphrase(profile=prof.name)
            try:
                return prof.open_keystore(passphrase), passphrase
            except ProfileError as exc:
                if exc.code != "wrong_passphrase" or attempt >= tries:
                    raise
            attempt += 1
            click.echo(t("prompt.wrong_passphrase"), err=True)

    def out(self, text_lines: list[str] | str, data: Any) -> None:
        """Print ``data`` as JSON under ``--json``, else the lines for people."""
        if self.json:
            click.echo(json.dumps(data, ensure_ascii=False, sort_keys=True))
        else:
            for line in [text_lines] if isinstance(text_lines, str) else text_lines:
                click.echo(printable(line))


def read_secret_file(path: Path) -> str:
    """The first line of a passphrase file (a trailing newline is not part of it)."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ProfileError("passphrase_file", path=str(path), detail=exc.strerror or "") from None
    line = text.split("\n", 1)[0].rstrip("\r")
    if not line:
        raise ProfileError("empty_passphrase")
    return line


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_object(Settings)
    if obj is None:
        raise click.UsageError("internal: no settings")
    return obj


def run(coro: Awaitable[T]) -> T:
    """Run one library call on a fresh event loop."""
    async def wrapper() -> T:
        return await coro
    return asyncio.run(wrapper())


def with_client(ctx: click.Context, action: Callable[[Client], Awaitable[T]], *,
                relay: str | None = None) -> T:
    """Open the profile (passphrase as configured), run ``action``, close."""
    s = settings(ctx)
    prof = load_profile(s.home, s.profile)  # a missing profile is named before any prompt
    keystore = s.open_keystore(prof)

    async def go() -> T:
        client = await Client.open_keystore(prof, keystore, relay=relay, ca_file=s.ca_file)
        async with client:
            return await action(client)

    return run(go())


def read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError("file_missing", path=path) from None
    except OSError as exc:
        raise UsageError("file_unreadable", path=path, detail=exc.strerror or "") from None


def write_public_file(path: str, data: bytes) -> None:
    """Write a public file (request, network anchor) atomically."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError("file_unwritable", path=path, detail=exc.strerror or "") from None


def parse_duration(text: str, setting: str) -> int:
    """``45s``, ``30m``, ``12h``, ``2d`` or ``1w`` as seconds; ``setting`` (``--ttl``) names
    it in errors.

    The one parser for every duration ``kok`` asks for, so each option takes the same units.
    """
    match = _DURATION_RE.match(text)
    if not match:
        raise UsageError("bad_duration", value=text, setting=setting)
    return int(match.group(1)) * _DURATION_UNIT[match.group(2)]


class FullHelpGroup(click.Group):
    """A group whose command list shows each command's whole summary, wrapped, never cut
    off with "..." (click's default) and within ``WIDTH`` columns."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            summary = command.short_help or (command.help or "").split("\n\n")[0]
            rows.append((name, " ".join(summary.split())))
        if rows:
            with formatter.section(t("cli.commands")):
                formatter.write_dl(rows)


def ask_yes(question: str) -> bool:
    """A yes/no question on the terminal in the person's language (``[j/N]`` takes ``j`` in
    German); anything but a yes is no."""
    answer = click.prompt(f"{question} {t('prompt.yes_no')}", default="", show_default=False,
                          err=True)
    yes_words = {w.strip() for w in t("prompt.yes_words").split(",")}
    return str(answer).strip().lower() in yes_words
