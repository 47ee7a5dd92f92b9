"""``kok demo`` (``make demo``): the whole flow against a throw-away relay, in plain words.

Theory of operation
-------------------
The demo starts a real relay as a child process (``python -m relay init`` then ``serve``)
on a free loopback port, in a temporary folder (or ``--dir DIR``, which is kept). It then
plays every role through the library, exactly as the ``kok`` commands would: the network
office creates the network; two counselling centres each create their org and admin,
are admitted and activate; each enrols one staff member; Anna (Nord) sends a case
consultation to Süd, Ben (Süd) reads it and replies. Last it opens the relay's database
file read-only and shows what the relay holds for the exchange: ciphertext and routing
fields, and it checks the relay's files for the text and the sender (not there).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from kokshared.ports import free_port
from kokshared.private_files import make_private_dir
from protocol.keys import fingerprint, format_fingerprint

from ._client import Client
from .admin import read_org_request
from .errors import KokError, UsageError
from .i18n import local_time, t, tn
from .onboarding import init_network
from .profile import NetworkAnchor
from .render import fit

PASSPHRASE = "demo passphrase, not for real use"  # noqa: S105 (a throw-away demo network)
START_TIMEOUT = 20.0
NORD, SUED = "beratung-nord", "beratung-sued"


def say(text: str = "") -> None:
    for line in fit(text.split("\n")):
        click.echo(line)


def step(number: int, text: str) -> None:
    say()
    say(t("demo.step", n=number, text=text))


@contextmanager
def running_relay(base: Path, anchor_file: Path) -> Iterator[tuple[str, Path]]:
    """A relay child process on a free loopback port; yields (url, relay directory)."""
    port = free_port()
    relay_dir = base / "relay"
    python = [sys.executable, "-m", "relay"]
    env = {**os.environ, "KOK_RELAY_LOGGING_FORMAT": "json"}
    with (base / "relay.log").open("ab") as log:
        subprocess.run([*python, "init", "--dir", str(relay_dir), "--network", str(anchor_file),
                        "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, check=True,
                       env=env)
        proc = subprocess.Popen([*python, "serve", "--dir", str(relay_dir)], stdout=log,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url, relay_dir
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KokError("demo_relay_failed")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise KokError("demo_relay_failed")


async def play(base: Path, url: str, relay_dir: Path, anchor: NetworkAnchor) -> None:
    """Every role, step by step, through the library."""
    home = base / "home"
    office = await Client.open(home, "office", PASSPHRASE, relay=url)
    clients: list[Client] = [office]
    try:
        admins = {}
        for number, (org_id, name) in enumerate(
                ((NORD, "Beratungsstelle Nord"), (SUED, "Beratungsstelle Süd")), start=2):
            _, request = await Client.new_org(home, org_id, PASSPHRASE, org_id=org_id, name=name,
                                              relay=url, network=anchor, admin="leitung")
            fp = format_fingerprint(fingerprint(read_org_request(request).identity_key))
            step(number, t("demo.org", org=org_id, name=name))
            say(t("demo.org_request", fingerprint=fp))
            await office.network.admit(request)
            say(t("demo.org_admitted"))
            admin = await Client.open(home, org_id, PASSPHRASE)
            clients.append(admin)
            epoch = await admin.org.activate()
            say(t("demo.org_active", staff=admin.staff_id, epoch=epoch))
            admins[org_id] = admin

        staff = {}
        for number, (org_id, name) in enumerate(((NORD, "Anna"), (SUED, "Ben")), start=4):
            profile = name.lower()
            prof, request = await Client.new_staff(home, profile, PASSPHRASE, org_id=org_id,
                                                   name=name, relay=url, network=anchor)
            step(number, t("demo.staff", name=name, org=org_id, staff=prof.info.staff_id))
            enrolled = await admins[org_id].org.enrol(request)
            say(t("demo.staff_enrolled", admin=admins[org_id].staff_id,
                  fingerprint=format_fingerprint(fingerprint(enrolled.signing_key))))
            person = await Client.open(home, profile, PASSPHRASE)
            clients.append(person)
            report = await person.sync()
            say(tn("demo.staff_synced", report.epoch_keys, log=report.log_size))
            staff[profile] = person

        anna, ben = staff["anna"], staff["ben"]
        subject = t("demo.subject")
        body = t("demo.body")
        step(6, t("demo.send", sender=anna.staff_id, org=SUED))
        say(t("demo.send_detail", subject=subject))
        message_id = await anna.send(to=[SUED], subject=subject, body=body, ttl=86400)
        say(t("demo.sent", id=message_id))

        step(7, t("demo.receive", person=ben.staff_id))
        report = await ben.sync()
        message = report.messages[0]
        say(t("demo.received", sender=message.from_staff, sent=local_time(message.sent),
              subject=message.subject))
        say(t("demo.body_line", body=message.body))
        say(t("demo.verified"))

        step(8, t("demo.reply", person=ben.staff_id))
        reply_id = await ben.send(to=[NORD], subject="Re: " + subject, body=t("demo.reply_body"),
                                  ttl=86400, reply_to=message_id)
        reply = next(m for m in (await anna.sync()).messages if m.id == reply_id)
        say(t("demo.reply_received", person=anna.staff_id, sender=reply.from_staff,
              body=reply.body))
        status = await anna.status(message_id)
        say(t("demo.status", state=t(f"state.{status.state}"), acknowledged=status.acknowledged,
              of=status.of))

        step(9, t("demo.relay_view"))
        everyone = [c.staff_id for c in clients if c.staff_id]
        show_relay_store(relay_dir, [subject, body, t("demo.reply_body")], everyone)
    finally:
        for client in clients:
            await client.close()


def relay_view(relay_dir: Path, org_ids: list[str]) -> dict[str, Any]:
    """What the relay's store holds for ``org_ids``, asked from the relay side (a child process)."""
    done = subprocess.run([sys.executable, "-m", "relay.inspect", "--dir", str(relay_dir),
                           *(arg for org in org_ids for arg in ("--org", org))],
                          capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise KokError("demo_relay_failed")
    return dict(json.loads(done.stdout))


def show_relay_store(relay_dir: Path, texts: list[str], staff_ids: list[str]) -> None:
    """Print the relay's stored envelopes and check its files for the texts and senders."""
    view = relay_view(relay_dir, [NORD, SUED])
    say(t("demo.columns", columns=", ".join(view["fields"])))
    envelopes = view["envelopes"]
    for n, row in enumerate(envelopes, start=1):
        say(t("demo.row", n=n, org=row["to_org"], epoch=row["epoch"], size=row["size"],
              start=row["start"], received=local_time(row["received"]),
              expires=local_time(row["expires"])))
    in_rows = sum(1 for row in envelopes for s in staff_ids
                  if any(s in str(value) for value in row.values()))
    raw = b"".join(p.read_bytes() for p in sorted(relay_dir.rglob("*"))
                   if p.is_file() and (p.name.startswith("relay.db") or "blobs" in p.parts))
    found = [text for text in texts if text.encode("utf-8") in raw]
    say(t("demo.no_sender_column") if in_rows == 0 else t("demo.sender_found"))
    say(t("demo.text_absent", size=len(raw)) if not found else t("demo.text_found"))
    say(t("demo.log_public", n=view["log_entries"]))
    if found or in_rows:
        raise KokError("demo_privacy_failed")


def run_demo(base: Path) -> None:
    """Create the network, start the relay, play the roles."""
    home = base / "home"
    _, anchor = init_network(home, "office", PASSPHRASE, t("demo.network_name"))
    anchor_file = base / "network.json"
    anchor_file.write_text(json.dumps(anchor.to_json(), indent=2) + "\n", "utf-8")
    say(t("demo.intro"))
    step(1, t("demo.network", name=anchor.name,
              fingerprint=format_fingerprint(anchor.fingerprint)))
    with running_relay(base, anchor_file) as (url, relay_dir):
        say(t("demo.relay_started", url=url, folder=str(base)))
        asyncio.run(play(base, url, relay_dir, anchor))
    say()
    say(t("demo.done"))


@click.command(help=t("help.demo"))
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False, path_type=Path),
              help=t("help.opt_demo_dir"))
def demo_cmd(directory: Path | None) -> None:
    if directory is not None:
        if directory.exists() and any(directory.iterdir()):
            raise UsageError("demo_dir_not_empty", path=str(directory))
        make_private_dir(directory)
        run_demo(directory)
        say(t("demo.kept", folder=str(directory)))
        return
    with tempfile.TemporaryDirectory(prefix="kok-demo-") as tmp:
        run_demo(Path(tmp))
