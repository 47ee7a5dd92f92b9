"""Closing a client closes its mailbox even when ending the relay session fails."""

from __future__ import annotations

from typing import Any

import pytest

from .people import open_office


async def test_a_failing_relay_link_close_still_closes_the_mailbox(relay: Any) -> None:
    office = await open_office(relay)
    await office.sync()

    async def broken() -> None:
        raise RuntimeError("ending the relay session failed")

    office._link.close = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="ending the relay session failed"):
        await office.close()
    # the mailbox is closed: its database thread has ended, so the process can exit
    with pytest.raises(ValueError, match="no active connection"):
        await office.store.get_state("cursor", "0")
