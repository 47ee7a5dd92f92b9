"""``kok demo``: placeholder until the relay CLI lands."""

from __future__ import annotations

import click

from .i18n import t


@click.command(help=t("help.demo"))
@click.option("--dir", "directory", default=None, help=t("help.opt_demo_dir"))
def demo_cmd(directory: str | None) -> None:
    raise click.ClickException("not yet")
