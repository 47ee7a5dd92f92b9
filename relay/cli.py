"""``kok relay ...`` / ``python -m relay ...``: init, serve, purge, stats, backup, restore."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import click

from kokshared.private_files import use_private_umask

from .config import ConfigError, RelayConfig, load_config

DIR_OPTION = click.option(
    "--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="The relay directory (holds relay.toml, relay.key, network.json, the database).")


def _load(directory: Path) -> RelayConfig:
    try:
        return load_config(directory)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("relay")
def relay_group() -> None:
    """Run and look after a kok relay."""


@relay_group.command("init")
@DIR_OPTION
@click.option("--network", "network_json", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The network's public anchor file (NETWORK_JSON).")
@click.option("--public-url", default=None, help="The URL clients use to reach this relay.")
@click.option("--port", default=8787, show_default=True, type=int, help="Port to listen on.")
def init_command(directory: Path, network_json: Path, public_url: str | None, port: int) -> None:
    """Create a relay directory: config, relay secrets (mode 0600) and the network anchor."""
    from .initdir import init_relay

    try:
        init_relay(directory, network_json, public_url=public_url, port=port)
        config = load_config(directory)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    from protocol import SigningKeyPair, format_fingerprint

    log_key = SigningKeyPair.from_seed(config.log_seed)
    click.echo(f"Relay directory created: {config.directory}")
    click.echo(f"Network: {config.network.name} ({format_fingerprint(config.network.fingerprint)})")
    click.echo(f"Relay log key: {format_fingerprint(log_key.fingerprint)}")
    click.echo(f"Clients reach it at: {config.server.public_url}")
    click.echo(f"Start it with: kok relay serve --dir {directory}")


@relay_group.command("serve")
@DIR_OPTION
@click.option("--new-store", is_flag=True,
              help="Start with a new, empty database although relay.key exists (the old "
                   "state is lost; normally restore a backup instead).")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Relay processes sharing the listening socket (more than 1 needs a "
                   "PostgreSQL store).")
@click.option("--listen-fd", default=None, type=int, hidden=True,
              help="Accept on this inherited socket (set by --workers for its children).")
def serve_command(directory: Path, new_store: bool, workers: int,
                  listen_fd: int | None) -> None:
    """Serve the relay until SIGTERM or Ctrl-C."""
    config = _load(directory)
    from .dirlock import DirectoryLock, RelayRunning
    from .privacylog import configure_logging
    from .server import run
    from .startup import StartupRefused, preflight
    from .workers import check_workers, supervise

    try:
        check_workers(config, workers)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    lock = None
    try:
        preflight(config, new_store=new_store)
        if listen_fd is None:  # a worker's supervisor already holds the lock
            lock = DirectoryLock(config.directory).acquire()  # held until the process ends
    except (StartupRefused, RelayRunning) as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(config.logging)
    try:
        if workers > 1:
            supervise(config, directory, workers)
        else:
            run(config, listen_fd=listen_fd)
    except StartupRefused as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on port {config.server.port}: "
                                   f"{exc.strerror or exc}") from exc
    finally:
        if lock is not None:
            lock.release()


async def _with_store(config: RelayConfig, action: str, full: bool = False) -> dict[str, int]:
    from .service import RelayService
    from .store import create_store

    store = create_store(config, readers=1)
    await store.open()
    try:
        now = int(time.time())
        if action == "purge":
            # The very purge the serving relay runs (it needs the key log: drops waiting
            # only for removed staff go too).
            relay = RelayService(config, store)
            await relay.start(now)
            counts = dict((await relay.purge(now)).__dict__)
            if full and config.store.is_postgresql:
                from .store.postgres import PostgresStore

                assert isinstance(store, PostgresStore)
                await store.vacuum(full=True)  # rewrite: no freed space with old bytes left
            return counts
        return dict((await store.stats(now)).__dict__)
    finally:
        await store.close()


@relay_group.command("purge")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.option("--full", is_flag=True,
              help="PostgreSQL: then VACUUM FULL, rewriting the tables so no freed space "
                   "with deleted bytes is left (locks each table while it is rewritten).")
def purge_command(directory: Path, as_json: bool, full: bool) -> None:
    """Delete everything that has expired now (the serving relay also does this itself)."""
    config = _load(directory)
    counts = asyncio.run(_with_store(config, "purge", full))
    if as_json:
        click.echo(json.dumps(counts))
        return
    click.echo("Deleted: " + ", ".join(f"{n} {name}" for name, n in counts.items()))


@relay_group.command("stats")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def stats_command(directory: Path, as_json: bool) -> None:
    """Aggregate counts only: nothing about any organisation or person."""
    config = _load(directory)
    counts = asyncio.run(_with_store(config, "stats"))
    if as_json:
        click.echo(json.dumps(counts))
        return
    width = max(len(name) for name in counts)
    for name, value in counts.items():
        click.echo(f"{name.replace('_', ' '):<{width}}  {value}")


@relay_group.group("privacy")
def privacy_group() -> None:
    """What the relay holds, in aggregate (docs/privacy.md)."""


@privacy_group.command("report")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def privacy_report_command(directory: Path, as_json: bool) -> None:
    """Rows per table and each kind's oldest age and overdue count: aggregates only."""
    from .privacy_report import privacy_report, render

    config = _load(directory)
    if config.store.is_postgresql:  # it reads the SQLite file, which is not the store then
        raise click.ClickException(
            "the privacy report reads an SQLite store; this relay's rows are in PostgreSQL "
            "(kok relay stats --dir DIR gives the row counts there)")
    report = privacy_report(config, int(time.time()))
    if as_json:
        click.echo(json.dumps(report.to_json()))
        return
    for line in render(report):
        click.echo(line)


@relay_group.command("backup")
@DIR_OPTION
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new, empty folder for this backup.")
def backup_command(directory: Path, out: Path) -> None:
    """A consistent backup while the relay serves: database snapshot and completed drops."""
    from .backup import BackupError, backup_relay

    config = _load(directory)
    try:
        summary = backup_relay(config, out)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Backup written to {summary.path}: {summary.messages} messages, "
               f"{summary.drops} file drops, {summary.log_size} key-log entries, "
               f"{summary.total_bytes} bytes in {summary.seconds:.1f} s.")
    click.echo("It holds no relay.key: keep the relay's key apart (deploy/OPERATOR.md).")


@relay_group.command("restore")
@DIR_OPTION
@click.argument("backup", type=click.Path(file_okay=False, exists=True, path_type=Path))
def restore_command(directory: Path, backup: Path) -> None:
    """Put BACKUP in place in a stopped relay's directory (the current state is moved aside)."""
    from .backup import BackupError, restore_relay
    from .config import ConfigError

    try:
        summary = restore_relay(directory, backup)
    except (BackupError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    taken = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(summary.taken))
    click.echo(f"Restored the backup of {taken}: {summary.messages} messages, "
               f"{summary.drops} file drops.")
    if summary.replaced is not None:
        click.echo(f"The state it replaced was moved to {summary.replaced}.")
    click.echo("Messages stored after the backup was taken are gone; senders see them as "
               "unknown and may send again.")


@relay_group.command("migrate")
@DIR_OPTION
@click.option("--to", "url", required=True, metavar="postgresql://...",
              help="An empty PostgreSQL database (put its password in ~/.pgpass).")
def migrate_command(directory: Path, url: str) -> None:
    """Copy a stopped relay's SQLite data into an empty PostgreSQL database."""
    config = _load(directory)
    if not url.startswith(("postgresql://", "postgres://")):
        raise click.ClickException("--to must be a postgresql:// URL")
    from .store.migrate import MigrationError, migrate_sqlite_to_postgres
    from .store.postgres import PostgresUnavailable

    try:
        done = migrate_sqlite_to_postgres(config, url, int(time.time()))
    except (MigrationError, PostgresUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("Copied: " + ", ".join(f"{n} {table}" for table, n in done.rows.items()))
    click.echo("Both databases hold the same rows. Now set in relay.toml:\n\n"
               "[store]\nurl = \"<the same URL>\"\n\n"
               f"and start the relay again (the SQLite file {config.database_path.name} is "
               "left as it was; delete it once the relay runs on PostgreSQL).")


def main() -> None:
    """``python -m relay``."""
    use_private_umask()
    relay_group(prog_name="relay")


if __name__ == "__main__":
    main()
