"""Attack: saving into a folder another local user can write to (a shared ``/tmp``).

The hidden ``.kokpart`` and ``.koktmp`` names beside the target are predictable (file name
and drop id). A symbolic link planted there must never make the client truncate, overwrite
or fill the file it points to (say the person's ``~/.bashrc``) with ciphertext or plaintext.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from client.errors import KokError
from protocol import b64decode
from tests.integration.test_drops import World, close_all, make_world, receive, write_file
from tests.support.relayproc import RelayProcess


@pytest.fixture
async def world(shared_relay: RelayProcess, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(shared_relay, tmp_path)
    yield w
    await close_all(*w.clients.values())


@pytest.mark.parametrize("suffix", ["koktmp", "kokpart"])
async def test_a_planted_link_beside_the_target_is_never_followed(
        world: World, tmp_path: Path, suffix: str) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    source = write_file(tmp_path / "Befund.pdf", 200_000, text=True)
    message_id = await anna.send(to=[sued.org_id], subject="Befund", body="anbei",
                                 attachments=[source])
    message = await receive(ben, message_id)
    tag = b64decode(message.attachments[0]["drop"]).hex()[:12]
    shared = tmp_path / "shared"
    shared.mkdir()
    victim = tmp_path / "bashrc"
    victim.write_text("export PATH=$HOME/bin:$PATH\n")
    (shared / f".Befund.pdf.{tag}.{suffix}").symlink_to(victim)

    try:
        saved = await ben.save(message_id, shared)
    except KokError as exc:  # refusing is fine too: never following the link is the point
        assert exc.code == "save_failed"
    else:
        assert saved[0].path.read_bytes() == source.read_bytes()
    assert victim.read_text() == "export PATH=$HOME/bin:$PATH\n"
