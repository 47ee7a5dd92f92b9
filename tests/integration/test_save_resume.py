"""A ``kok save`` killed half-way goes on from its checkpoint, decrypting nothing twice.

The save runs in a process of its own that kills itself (SIGKILL: no cleanup runs) once
part of the file is written; the test then saves again in-process against the same real
relay, counting the secretstream chunks the decryptor opens. Attacks: a temporary file
changed meanwhile, and a relay that serves other bytes for the rest of the file.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import protocol.stream
from client import Client
from client.api import RetryPolicy
from client.errors import KokError, RelayUnreachable, VerificationError
from client.save_checkpoints import RESUME_WINDOW, SaveCheckpoints
from protocol import b64decode
from protocol.stream import CHUNK_SIZE, chunk_count
from tests.integration.kokcli import TEST_PASSPHRASE, kok_env
from tests.integration.test_drops import (
    MIB,
    World,
    blob_of,
    close_all,
    digest,
    hidden_leftovers,
    make_world,
    receive,
    write_file,
)
from tests.support.relayproc import RelayProcess

SIZE = 4 * MIB
KILLED_SAVE = """
import asyncio, os, signal, sys
import client.transfer
from client import Client

client.transfer.CHECKPOINT_EVERY = 1024 * 1024  # four checkpoints in a 4 MiB file

async def main(home, profile, passphrase, message_id, target, at, only=""):
    async with await Client.open(home, profile, passphrase) as ben:
        def progress(name, done, total):
            if done >= int(at) and only in ("", name):
                os.kill(os.getpid(), signal.SIGKILL)
        await ben.save(message_id, target, progress=progress)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.fixture
async def world(shared_relay: RelayProcess, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(shared_relay, tmp_path / "home")
    yield w
    await close_all(*w.clients.values())


async def send_file(world: World, source: Path) -> tuple[str, dict[str, Any]]:
    message_id = await world["anna"].send(to=[world["sued"].org_id], subject="Akte", body="",
                                          attachments=[source])
    message = await receive(world["ben"], message_id)
    return message_id, message.attachments[0]


def killed_save(world: World, message_id: str, target: Path, only: str = "") -> None:
    """Ben's save of ``message_id``, killed once more than half a file (or of the file
    named ``only``) is written."""
    target.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(world.home), world["ben"].profile.name,
         TEST_PASSPHRASE, message_id, str(target), str(SIZE * 5 // 8), only],
        capture_output=True, text=True, env=kok_env(), timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr


def hidden(target: Path, attachment: dict[str, Any], suffix: str) -> Path:
    tag = b64decode(attachment["drop"]).hex()[:12]
    return target / f".{attachment['name']}.{tag}.{suffix}"


class ChunkCounter:
    """Counts the chunks every decryptor opens (the secretstream pull per chunk)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = 0
        pull: Callable[..., Any] = protocol.stream._pull

        def counting(*args: Any) -> Any:
            self.opened += 1
            return pull(*args)

        monkeypatch.setattr(protocol.stream, "_pull", counting)


async def checkpoint_of(client: Client, tmp: Path) -> dict[str, Any] | None:
    return await SaveCheckpoints(client.store, lambda: int(time.time())).load(tmp)


async def test_a_killed_save_goes_on_without_decrypting_what_it_had(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ben = world["ben"]
    source = write_file(tmp_path / "akte.bin", SIZE)
    message_id, attachment = await send_file(world, source)
    target = tmp_path / "out"
    killed_save(world, message_id, target)
    tmp = hidden(target, attachment, "koktmp")
    facts = await checkpoint_of(ben, tmp)
    assert facts is not None and tmp.exists()
    had = facts["plaintext"] // CHUNK_SIZE  # chunks the checkpoint holds as plaintext
    assert had >= 1 * MIB // CHUNK_SIZE
    # another save into the folder meanwhile leaves the interrupted one to resume
    other_id, _ = await send_file(world, write_file(tmp_path / "brief.txt", 1000, text=True))
    await ben.save(other_id, target)
    assert tmp.exists()

    counter = ChunkCounter(monkeypatch)
    [saved] = await ben.save(message_id, target)
    assert digest(saved.path) == digest(source)
    # exactly the chunks after the checkpoint were opened: none of those it had
    assert counter.opened == chunk_count(SIZE) - had
    assert hidden_leftovers(target) == []
    assert await checkpoint_of(ben, tmp) is None


async def test_files_a_killed_save_completed_count_as_saved_when_it_goes_on(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ben = world["ben"]
    first = write_file(tmp_path / "brief.pdf", MIB)
    second = write_file(tmp_path / "akte.bin", SIZE)
    message_id = await world["anna"].send(to=[world["sued"].org_id], subject="Akte", body="",
                                          attachments=[first, second])
    message = await receive(ben, message_id)
    target = tmp_path / "out"
    killed_save(world, message_id, target, only="akte.bin")  # after brief.pdf was saved
    assert digest(target / "brief.pdf") == digest(first)
    facts = await checkpoint_of(ben, hidden(target, message.attachments[1], "koktmp"))
    assert facts is not None

    counter = ChunkCounter(monkeypatch)
    saved = await ben.save(message_id, target)  # no --force: brief.pdf is not "in the way"
    assert [s.name for s in saved] == ["brief.pdf", "akte.bin"]
    assert digest(target / "brief.pdf") == digest(first)
    assert digest(target / "akte.bin") == digest(second)
    # neither brief.pdf nor the saved part of akte.bin was decrypted again
    assert counter.opened == chunk_count(SIZE) - facts["plaintext"] // CHUNK_SIZE
    assert hidden_leftovers(target) == []
    # the message is saved: a new save is refused as before (the files exist)
    with pytest.raises(KokError) as exists:
        await ben.save(message_id, target)
    assert exists.value.code == "file_exists"


async def test_a_file_changed_after_a_killed_save_completed_it_is_not_counted(
        world: World, tmp_path: Path) -> None:
    ben = world["ben"]
    first = write_file(tmp_path / "brief.pdf", 1000, text=True)
    second = write_file(tmp_path / "akte.bin", SIZE)
    message_id = await world["anna"].send(to=[world["sued"].org_id], subject="Akte", body="",
                                          attachments=[first, second])
    await receive(ben, message_id)
    target = tmp_path / "out"
    killed_save(world, message_id, target, only="akte.bin")
    (target / "brief.pdf").write_bytes(b"my own notes")  # replaced meanwhile
    with pytest.raises(KokError) as exists:
        await ben.save(message_id, target)
    assert exists.value.code == "file_exists"
    assert (target / "brief.pdf").read_bytes() == b"my own notes"


async def test_a_temporary_file_changed_meanwhile_starts_the_save_over(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ben = world["ben"]
    source = write_file(tmp_path / "akte.bin", SIZE)
    message_id, attachment = await send_file(world, source)
    target = tmp_path / "out"
    killed_save(world, message_id, target)
    tmp = hidden(target, attachment, "koktmp")
    with tmp.open("r+b") as fh:  # one byte of the saved part, length and inode kept
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 1]))

    counter = ChunkCounter(monkeypatch)
    [saved] = await ben.save(message_id, target)
    assert digest(saved.path) == digest(source)
    assert counter.opened == chunk_count(SIZE)  # everything again: nothing was trusted
    assert hidden_leftovers(target) == []


async def test_a_relay_serving_other_bytes_on_resume_saves_nothing(
        world: World, tmp_path: Path) -> None:
    ben = world["ben"]
    source = write_file(tmp_path / "akte.bin", SIZE)
    message_id, attachment = await send_file(world, source)
    _, other = await send_file(world, source)  # the same file under another key
    target = tmp_path / "out"
    killed_save(world, message_id, target)
    assert await checkpoint_of(ben, hidden(target, attachment, "koktmp")) is not None
    # the relay answers the resumed request with the second half of another valid stream
    blob = blob_of(world.relay, attachment)
    data = blob.read_bytes()
    half = len(data) // 2
    blob.write_bytes(data[:half] + blob_of(world.relay, other).read_bytes()[half:])

    with pytest.raises(VerificationError) as refused:
        await ben.save(message_id, target)
    assert refused.value.code == "stream_corrupt"
    assert list(target.iterdir()) == []  # no file, no plaintext, no ciphertext
    assert await checkpoint_of(ben, hidden(target, attachment, "koktmp")) is None


async def test_a_save_not_resumed_in_time_is_removed_when_the_profile_opens(
        world: World, tmp_path: Path) -> None:
    source = write_file(tmp_path / "akte.bin", SIZE)
    message_id, attachment = await send_file(world, source)
    target = tmp_path / "out"
    killed_save(world, message_id, target)
    assert hidden(target, attachment, "koktmp").exists()
    ben = world["ben"]
    # the next opening of the profile within the window keeps it to resume from
    later = await Client.open(world.home, ben.profile.name, TEST_PASSPHRASE,
                              clock=lambda: time.time() + RESUME_WINDOW - 600)
    await later.close()
    assert hidden(target, attachment, "koktmp").exists()
    # once the window has passed, the first opening empties and deletes both files
    later = await Client.open(world.home, ben.profile.name, TEST_PASSPHRASE,
                              clock=lambda: time.time() + RESUME_WINDOW + 600)
    await later.close()
    assert hidden_leftovers(target) == []


async def test_a_save_cut_off_from_the_relay_checkpoints_where_it_stopped(
        own_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint taken as the relay went away, not only the periodic ones."""
    ben, relay = own_world["ben"], own_world.relay
    size = 16 * MIB  # more than the socket buffers hold once the relay is gone
    source = write_file(tmp_path / "akte.bin", size)
    message_id, attachment = await send_file(own_world, source)
    target = tmp_path / "out"
    (await ben.api()).policy = RetryPolicy(transfer_attempts=2, first_delay=0.05)

    def relay_goes(name: str, done: int, total: int) -> None:
        if done >= MIB and relay.proc is not None:
            relay.kill()

    with pytest.raises(RelayUnreachable):
        await ben.save(message_id, target, progress=relay_goes, mkdir=True)
    facts = await checkpoint_of(ben, hidden(target, attachment, "koktmp"))
    assert facts is not None
    # it stands exactly where the part file ends: everything written is covered
    assert facts["ciphertext"] == hidden(target, attachment, "kokpart").stat().st_size
    had = facts["plaintext"] // CHUNK_SIZE
    assert 0 < had < chunk_count(size)

    relay.restart()
    counter = ChunkCounter(monkeypatch)
    [saved] = await ben.save(message_id, target)
    assert digest(saved.path) == digest(source)
    assert counter.opened == chunk_count(size) - had
    assert hidden_leftovers(target) == []
