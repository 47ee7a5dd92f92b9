"""One full exchange against a real relay, leaving every store as real use leaves it.

Two organisations with staff; a message with a file attachment sent, fetched, read, saved
and acknowledged; a message retracted; one left waiting; a scheduled rotation; a staff
member removed (which rotates again). What the relay directory, its log and each profile
hold afterwards is what the inventory in docs/privacy.md must describe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from client import Client
from tests.support.lifecycle import Network
from tests.support.relayproc import RelayProcess

ATTACHMENT = b"Befund vom 3. M\xc3\xa4rz, Seite 1\n" * 2000


@dataclass
class Exchange:
    """Where the stores of a finished exchange are."""

    relay: RelayProcess
    home: Path
    profiles: dict[str, Path]
    removed: str
    relay_files_running: set[str]


async def _run(relay: RelayProcess, home: Path) -> Exchange:
    net = Network(relay, home)
    try:
        nord = await net.org("nord")
        sued = await net.org("sued")
        anna = await net.staff(nord, "anna")
        ben = await net.staff(sued, "ben")
        carl = await net.staff(sued, "carl")
        assert nord.org_id and sued.org_id and carl.staff_id
        report = home / "bericht.txt"
        report.write_bytes(ATTACHMENT)
        first = await anna.send([sued.org_id], "Rückfrage Fall 17", "Wer kennt sich aus?",
                                attachments=[report])
        await ben.sync()
        await ben.read(first)
        (home / "saved").mkdir()
        await ben.save(first, home / "saved")
        await sued.sync()
        await anna.status(first)
        second = await anna.send([sued.org_id], "Versehen", "bitte ignorieren", ttl=3600)
        await anna.retract(second)
        await anna.send([sued.org_id, nord.org_id], "Termin", "Dienstag 10 Uhr?")
        await sued.org.rotate()
        await sued.org.remove(carl.staff_id)
        await ben.sync()
        await anna.sync()
        people: list[Client] = [nord, sued, anna, ben, carl]
        profiles = {str(c.profile.name): c.profile.dir for c in people}
        assert relay.home is not None
        profiles["network"] = relay.home / "network"
        return Exchange(relay=relay, home=home, profiles=profiles, removed=carl.staff_id,
                        relay_files_running=relay_files(relay.dir))
    finally:
        await net.close()


def relay_files(directory: Path) -> set[str]:
    """Every file under the relay directory, as a path relative to it."""
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def run_exchange(base: Path, *, store_url: str = "") -> Exchange:
    """Start a relay under ``base``, run the exchange, stop the relay (its log complete).

    The relay directory is listed once while the relay runs (the WAL exists then) and can
    be listed again afterwards. ``store_url``: a PostgreSQL database instead of SQLite.
    """
    relay = RelayProcess.start(base / "relay-base", network_profile=True, store_url=store_url)
    try:
        exchange = asyncio.run(_run(relay, base / "home"))
    finally:
        relay.stop()
    return exchange
