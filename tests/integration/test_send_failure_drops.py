"""A send that fails after its files were uploaded leaves no drop behind on the relay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from client.errors import RelayRefused
from client.sending import Sender
from client.transfer import TransferError
from tests.integration.people import close_all
from tests.integration.test_drops import blob_dir, make_world, write_file
from tests.support.relayproc import RelayProcess


def stored_drops(relay: RelayProcess) -> list[str]:
    return sorted(p.name for p in blob_dir(relay).glob("*") if p.is_file())


async def test_a_refused_send_withdraws_its_uploaded_drops(
        relay: RelayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = await make_world(relay, tmp_path / "home")
    try:
        anna, sued = world["anna"], world["sued"]
        files = [write_file(tmp_path / "a.pdf", 200_000), write_file(tmp_path / "b.pdf", 10)]
        seen: list[list[str]] = []
        real_seal = Sender._seal

        def garbled_seal(self: Sender, payload: Any) -> list[dict[str, Any]]:
            seen.append(stored_drops(relay))  # both files are on the relay, complete
            envelopes = real_seal(self, payload)
            return [{**e, "to_org": "keine-solche-org"} for e in envelopes]  # refused

        monkeypatch.setattr(Sender, "_seal", garbled_seal)
        with pytest.raises(RelayRefused):
            await anna.send(to=[sued.org_id], subject="s", body="b", attachments=files)
        assert len(seen[0]) == 2
        assert stored_drops(relay) == []  # withdrawn at once, not left for the TTL
    finally:
        await close_all(*world.clients.values())


async def test_a_failed_second_upload_withdraws_the_first(relay: RelayProcess,
                                                          tmp_path: Path) -> None:
    world = await make_world(relay, tmp_path / "home")
    try:
        anna, sued = world["anna"], world["sued"]
        first = write_file(tmp_path / "a.pdf", 200_000)
        second = write_file(tmp_path / "b.pdf", 200_000)
        seen: list[list[str]] = []

        def progress(name: str, done: int, total: int) -> None:
            if name == "b.pdf" and not seen:
                seen.append(stored_drops(relay))
                with second.open("ab") as fh:  # changed while it is being sent
                    fh.write(b"more")

        with pytest.raises(TransferError):
            await anna.send(to=[sued.org_id], subject="s", body="b", attachments=[first, second],
                            progress=progress)
        assert [n for n in seen[0] if n.endswith(".blob")] != []  # the first file was complete
        assert stored_drops(relay) == []
    finally:
        await close_all(*world.clients.values())


async def test_retracting_a_message_deletes_its_drops(relay: RelayProcess, tmp_path: Path) -> None:
    world = await make_world(relay, tmp_path / "home")
    try:
        anna, ben, sued = world["anna"], world["ben"], world["sued"]
        report = write_file(tmp_path / "Befund.pdf", 200_000)
        message_id = await anna.send(to=[sued.org_id], subject="s", body="b",
                                     attachments=[report])
        await ben.sync()  # ben already holds the message (not yet read or acknowledged)
        assert stored_drops(relay) != []
        status = await anna.retract(message_id)
        assert [r.state for r in status.recipients] == ["retracted"]
        assert stored_drops(relay) == []  # the file left the relay with the message
        target = tmp_path / "saved"
        target.mkdir()
        with pytest.raises(RelayRefused) as gone:
            await ben.save(message_id, target)
        assert gone.value.code == "not_found"  # the download answers 404
        assert list(target.iterdir()) == []
    finally:
        await close_all(*world.clients.values())
