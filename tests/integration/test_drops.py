"""File drops end to end: the client library and a real relay process, attacks included.

Every test sends through ``Client.send(attachments=...)`` and saves through ``Client.save``
against a relay started as a separate process on a free loopback port. Tampering is done
the way an attacker with the relay's disk would: by editing the blob file in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client import Client, KokError
from client.errors import AccessError, RelayRefused, VerificationError
from client.transfer import download_attachment
from protocol import Attachment
from tests.integration.kokcli import kok_env
from tests.integration.people import close_all, new_org, new_staff, open_office, unique
from tests.support.relayproc import RelayProcess

MIB = 1024 * 1024
CASE_TEXT = ("Frau K., geboren 1994, Aufenthaltstitel nach § 25 Abs. 4a AufenthG beantragt; "
             "ärztlicher Befund vom 3. März liegt bei. ").encode()


@dataclass
class World:
    """Org nord (admin + anna) sends to org sued (admin + ben)."""

    relay: RelayProcess
    home: Path
    clients: dict[str, Client]

    def __getitem__(self, name: str) -> Client:
        return self.clients[name]


async def make_world(relay: RelayProcess, home: Path) -> World:
    office = await open_office(relay)
    nord = await new_org(relay, home, office, unique("nord"))
    sued = await new_org(relay, home, office, unique("sued"))
    anna = await new_staff(relay, home, nord, "anna")
    ben = await new_staff(relay, home, sued, "ben")
    return World(relay, home, {"office": office, "nord": nord, "sued": sued, "anna": anna,
                               "ben": ben})


@pytest.fixture
async def world(shared_relay: RelayProcess, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(shared_relay, tmp_path / "home")
    yield w
    await close_all(*w.clients.values())


def write_file(path: Path, size: int, *, text: bool = False) -> Path:
    """A test file written in 1 MiB pieces (case-like text, or random bytes)."""
    with path.open("wb") as fh:
        left = size
        while left:
            if text:
                piece = (CASE_TEXT * (MIB // len(CASE_TEXT) + 1))[:min(MIB, left)]
            else:
                piece = os.urandom(min(MIB, left))
            fh.write(piece)
            left -= len(piece)
    return path


def digest(path: Path) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    with path.open("rb") as fh:
        while data := fh.read(MIB):
            h.update(data)
    return h.digest()


def blob_dir(relay: RelayProcess) -> Path:
    return relay.dir / "blobs"


def blob_of(relay: RelayProcess, attachment: dict[str, Any]) -> Path:
    drop = Attachment.from_json(attachment).drop
    return blob_dir(relay) / f"{drop.hex()}.blob"


def vm_hwm_kib(pid: int | str) -> int:
    """Peak resident memory (VmHWM) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


async def receive(client: Client, message_id: str) -> Any:
    await client.sync()
    return await client.read(message_id)


async def test_round_trip_with_hostile_names_no_overwrite_and_deletion(
        world: World, tmp_path: Path) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    report = write_file(tmp_path / "Befund.pdf", 300_000, text=True)
    empty = write_file(tmp_path / "leer.txt", 0)
    hostile = write_file(tmp_path / "innocent.bin", 70_000)
    names = ["../../escape.sh", "..", ".bashrc", "a\\b\\..\\c.txt", "line\nbreak\x00.txt",
             "Befund.pdf"]
    sources: list[Any] = [report, empty, (hostile, names[0])]
    sources += [(hostile, n) for n in names[1:]]
    message_id = await anna.send(to=[sued.org_id], subject="Befund", body="anbei",
                                 attachments=sources)
    message = await receive(ben, message_id)
    assert [a["name"] for a in message.attachments] == ["Befund.pdf", "leer.txt", *names]

    # what the relay holds is ciphertext only: no 32-byte run of the text survives
    blobs = [blob_of(world.relay, a) for a in message.attachments]
    plain = report.read_bytes()
    for blob in blobs:
        data = blob.read_bytes()
        windows = {data[i:i + 16] for i in range(len(data) - 15)}
        assert not any(plain[k:k + 16] in windows for k in range(0, len(plain) - 15, 16))
    assert b"Befund" not in world.relay.raw_database()

    parent = tmp_path / "inbox"
    target = parent / "saved"
    target.mkdir(parents=True)
    saved = await ben.save(message_id, target)
    assert [f.path.parent for f in saved] == [target] * len(saved)
    assert [f.name for f in saved] == ["Befund.pdf", "leer.txt", "escape.sh", "attachment",
                                       "bashrc", "c.txt", "linebreak.txt", "Befund (2).pdf"]
    assert (target / "Befund.pdf").read_bytes() == report.read_bytes()
    assert (target / "leer.txt").read_bytes() == b""
    assert (target / "escape.sh").read_bytes() == hostile.read_bytes()
    assert sorted(p.name for p in parent.iterdir()) == ["saved"]  # nothing escaped
    assert hidden_leftovers(target) == []

    # no overwrite without force; the file on disk is untouched
    (target / "Befund.pdf").write_bytes(b"my own notes")
    with pytest.raises(KokError) as refused:
        await ben.save(message_id, target)
    assert refused.value.code == "file_exists"
    assert (target / "Befund.pdf").read_bytes() == b"my own notes"
    await ben.save(message_id, target, force=True)
    assert (target / "Befund.pdf").read_bytes() == report.read_bytes()

    # ben acknowledged; the drops stay until sued's admin (enrolled at completion) has them
    assert all(b.exists() for b in blobs)
    other = tmp_path / "admin"
    other.mkdir()
    await receive(sued, message_id)
    await sued.save(message_id, other)
    assert not any(b.exists() for b in blobs)
    with pytest.raises(RelayRefused) as gone:
        await ben.save(message_id, tmp_path / "admin", force=True)
    assert gone.value.code == "not_found"
    assert hidden_leftovers(other) == []


async def test_nothing_is_uploaded_for_a_message_that_cannot_go(world: World,
                                                               tmp_path: Path) -> None:
    anna = world["anna"]
    source = write_file(tmp_path / "brief.pdf", 10_000)
    before = sorted(blob_dir(world.relay).iterdir())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"to": ["no-such-org"], "attachments": [source]}, "unknown_org"),
        ({"to": [world["sued"].org_id], "attachments": [tmp_path / "missing.pdf"]},
         "file_missing"),
        ({"to": [world["sued"].org_id], "attachments": [tmp_path]}, "attachment_not_file"),
        ({"to": [world["sued"].org_id], "attachments": [source], "subject": "x" * 100_000},
         "bad_message"),
    ]
    for kwargs, code in cases:
        kwargs.setdefault("subject", "s")
        with pytest.raises(KokError) as refused:
            await anna.send(body="b", **kwargs)
        assert refused.value.code == code
    assert sorted(blob_dir(world.relay).iterdir()) == before


async def test_a_file_that_changes_while_it_is_sent_is_refused(world: World,
                                                               tmp_path: Path) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    source = write_file(tmp_path / "notes.txt", 8 * MIB)

    def edit_halfway(name: str, done: int, total: int) -> None:
        if done > total // 2 and source.stat().st_size == 8 * MIB:
            with source.open("ab") as fh:  # someone saves the file again meanwhile
                fh.write(b"one more line")

    with pytest.raises(KokError) as refused:
        await anna.send(to=[sued.org_id], subject="s", body="b", attachments=[source],
                        progress=edit_halfway)
    assert refused.value.code == "file_changed"
    assert (await ben.sync()).messages == ()  # no message refers to a half-changed file


@pytest.mark.parametrize(("damage", "code"), [
    ("truncate", "stream_truncated"),
    ("extend", "stream_trailing_data"),
    ("flip", "stream_corrupt"),
    ("flip_last", "stream_corrupt"),
])
async def test_a_tampered_blob_is_rejected_and_leaves_no_file(
        world: World, tmp_path: Path, damage: str, code: str) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    source = write_file(tmp_path / "scan.tif", 700_000)
    message_id = await anna.send(to=[sued.org_id], subject="Scan", body="",
                                 attachments=[source])
    message = await receive(ben, message_id)
    blob = blob_of(world.relay, message.attachments[0])
    data = bytearray(blob.read_bytes())
    if damage == "truncate":
        del data[-1000:]
    elif damage == "extend":
        data += b"\0" * 100
    elif damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data[-5] ^= 0x80
    blob.write_bytes(bytes(data))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(VerificationError) as rejected:
        await ben.save(message_id, target)
    assert rejected.value.code == code
    assert list(target.iterdir()) == []  # neither the final name nor a hidden part


async def test_other_orgs_and_removed_staff_get_nothing(world: World, tmp_path: Path) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    source = write_file(tmp_path / "brief.pdf", 50_000)
    message_id = await anna.send(to=[sued.org_id], subject="Brief", body="",
                                 attachments=[source])
    message = await receive(ben, message_id)
    attachment = Attachment.from_json(message.attachments[0])
    target = tmp_path / "out"
    target.mkdir()

    async def fetch_as(client: Client) -> None:
        await download_attachment(await client.api(), attachment, target)

    # the sender (a non-recipient org) and a third org know the drop id and key: no bytes
    office = world["office"]
    third = await new_org(world.relay, world.home, office, unique("west"))
    try:
        for outsider in (anna, third):
            with pytest.raises(RelayRefused) as refused:
                await fetch_as(outsider)
            assert refused.value.code == "not_found"
        assert list(target.iterdir()) == []
    finally:
        await third.close()

    # ben is removed: his client refuses, and so does the relay for his last session
    await sued.org.remove(ben.staff_id)
    with pytest.raises(AccessError) as removed:
        await ben.save(message_id, target)
    assert removed.value.code == "staff_removed"
    with pytest.raises(RelayRefused) as refused:
        await fetch_as(ben)
    assert refused.value.code in ("session_invalid", "not_enrolled", "unauthorized")
    assert list(target.iterdir()) == []
    # the drop is deleted once the remaining recipient (the admin) has it
    blob = blob_of(world.relay, message.attachments[0])
    await receive(sued, message_id)
    await sued.save(message_id, target)
    assert (target / "brief.pdf").read_bytes() == source.read_bytes()
    assert not blob.exists()


class Crash:
    """Kill the relay (SIGKILL) once a transfer passes ``at`` bytes, and restart it.

    ``upload``: the transfer is an upload, and the kill waits until the relay has written
    what the client sent (all but the last MiB, which may still sit in the client's buffer):
    the kernel's socket buffers on loopback grow to tens of MiB, so on a busy machine the
    client can be that far ahead of a relay that has had little CPU, and the relay's
    durable offset would then be far below ``at``.
    """

    def __init__(self, relay: RelayProcess, at: float, *, upload: bool = False) -> None:
        self.relay = relay
        self.at = at
        self.upload = upload
        self.positions_after: list[int] = []
        self.restarter: threading.Thread | None = None

    def relay_holds(self) -> int:
        """Bytes of the open upload in the relay's blob folder (its .part file)."""
        return sum(part.stat().st_size for part in blob_dir(self.relay).glob("*.part"))

    def wait_for_relay(self, done: int) -> None:
        want = done - MIB
        deadline = time.monotonic() + 60
        while (held := self.relay_holds()) < want:
            if time.monotonic() > deadline:
                raise AssertionError(f"the relay holds {held} of the {done} bytes sent")
            time.sleep(0.01)

    def __call__(self, name: str, done: int, total: int) -> None:
        if self.restarter is None and done >= self.at * total:
            if self.upload:
                self.wait_for_relay(done)
            self.relay.kill()
            # restart in a thread: the client's event loop must go on retrying meanwhile
            self.restarter = threading.Thread(target=self.relay.restart)
            self.restarter.start()
        elif self.restarter is not None:
            self.positions_after.append(done)


async def test_an_upload_killed_halfway_resumes_byte_identical(
        own_world: World, tmp_path: Path) -> None:
    anna, ben, sued = own_world["anna"], own_world["ben"], own_world["sued"]
    source = write_file(tmp_path / "video.mp4", 40 * MIB)
    crash = Crash(own_world.relay, 0.5, upload=True)
    message_id = await anna.send(to=[sued.org_id], subject="Video", body="",
                                 attachments=[source], progress=crash)
    assert crash.restarter is not None
    crash.restarter.join()
    # it went on from the relay's durable offset, not from the start
    assert crash.positions_after and min(crash.positions_after) > 0.3 * 40 * MIB
    message = await receive(ben, message_id)
    target = tmp_path / "out"
    target.mkdir()
    [saved] = await ben.save(message_id, target)
    assert digest(saved.path) == digest(source)
    assert hidden_leftovers(target) == []
    assert message.attachments[0]["size"] == 40 * MIB


async def test_a_download_interrupted_resumes_with_range(own_world: World, tmp_path: Path
                                                         ) -> None:
    anna, ben, sued = own_world["anna"], own_world["ben"], own_world["sued"]
    source = write_file(tmp_path / "akte.zip", 40 * MIB)
    message_id = await anna.send(to=[sued.org_id], subject="Akte", body="",
                                 attachments=[source])
    await receive(ben, message_id)
    target = tmp_path / "out"
    target.mkdir()
    crash = Crash(own_world.relay, 0.4)
    [saved] = await ben.save(message_id, target, progress=crash)
    assert crash.restarter is not None
    crash.restarter.join()
    assert crash.positions_after and min(crash.positions_after) > 0.3 * 40 * MIB
    assert digest(saved.path) == digest(source)
    assert hidden_leftovers(target) == []


CLIENT_RUN = """
import asyncio, json, re, sys
from pathlib import Path
from client import Client

async def main(home, sender, reader, to, source, target):
    async with await Client.open(home, sender, "test passphrase") as anna, \\
            await Client.open(home, reader, "test passphrase") as ben:
        message_id = await anna.send(to=[to], subject="Gross", body="", attachments=[source])
        await ben.sync()
        [saved] = await ben.save(message_id, target)
    status = Path("/proc/self/status").read_text()
    hwm = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
    print(json.dumps({"path": str(saved.path), "hwm_kib": hwm}))

asyncio.run(main(*sys.argv[1:]))
"""


def client_run(world: World, source: Path, target: Path) -> dict[str, Any]:
    """Send ``source`` from anna to sued and save it as ben, in a process of its own."""
    target.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_RUN, str(world.home), world["anna"].profile.name,
         world["ben"].profile.name, str(world["sued"].org_id), str(source), str(target)],
        capture_output=True, text=True, env=kok_env(), timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
async def test_256_mib_round_trip_keeps_memory_flat_on_both_sides(own_world: World,
                                                                  tmp_path: Path) -> None:
    relay = own_world.relay
    # 32 MiB already fills every buffer of the transfer pipeline: the baseline to compare to
    small = client_run(own_world, write_file(tmp_path / "small.bin", 32 * MIB), tmp_path / "s")
    source = write_file(tmp_path / "big.bin", 256 * MIB)
    before = vm_hwm_kib(relay.pid)
    big = client_run(own_world, source, tmp_path / "b")
    relay_growth = (vm_hwm_kib(relay.pid) - before) / 1024
    client_growth = (big["hwm_kib"] - small["hwm_kib"]) / 1024
    saved = Path(big["path"])
    assert digest(saved) == digest(source)
    assert relay_growth < 64, f"the relay's peak RSS grew by {relay_growth:.1f} MiB"
    # the client's peak for 256 MiB against its peak for 32 MiB: flat in file size
    assert client_growth < 16, f"the client's peak RSS grew by {client_growth:.1f} MiB"
    source.unlink()
    saved.unlink()


async def test_a_file_changed_in_place_during_a_resumed_upload_goes_as_a_new_drop(
        own_world: World, tmp_path: Path) -> None:
    """Bytes already sent change while size, time and inode stay (an in-place editor that
    restores the time): the resume must not encrypt the new bytes under the same key and
    header (two plaintexts under one key stream). It withdraws the drop and starts anew."""
    anna, ben, sued = own_world["anna"], own_world["ben"], own_world["sued"]
    source = write_file(tmp_path / "record.bin", 12 * MIB)
    crash = Crash(own_world.relay, 0.5, upload=True)

    def edit_then_crash(name: str, done: int, total: int) -> None:
        if crash.restarter is None and done >= crash.at * total:
            st = source.stat()
            with source.open("r+b") as fh:  # same inode, same size
                fh.seek(MIB)
                fh.write(os.urandom(4096))  # in the part the relay already holds
            os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
            assert (source.stat().st_ino, source.stat().st_mtime_ns) == (st.st_ino,
                                                                           st.st_mtime_ns)
        crash(name, done, total)

    message_id = await anna.send(to=[sued.org_id], subject="Record", body="",
                                 attachments=[source], progress=edit_then_crash)
    assert crash.restarter is not None
    crash.restarter.join()
    message = await receive(ben, message_id)
    [attachment] = message.attachments
    # only the new drop is left on the relay: the first one was withdrawn
    assert sorted(p.name for p in blob_dir(own_world.relay).iterdir()
                  if p.name.endswith(".blob")) == [blob_of(own_world.relay, attachment).name]
    target = tmp_path / "out"
    target.mkdir()
    [saved] = await ben.save(message_id, target)
    assert digest(saved.path) == digest(source)  # the file as it is now, intact
