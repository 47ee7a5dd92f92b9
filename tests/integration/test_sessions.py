"""Sessions and the event stream: re-login after a 401, reconnect by cursor, removal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from client import Client
from client.errors import AccessError, UsageError, VerificationError
from client.pinning import pin_log_key
from tests.integration.people import (
    PASSPHRASE,
    anchor_of,
    close_all,
    new_org,
    new_staff,
    open_office,
)


@pytest.fixture
async def pair(relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    office = await open_office(relay)
    nord = await new_org(relay, tmp_path, office, "nord")
    sued = await new_org(relay, tmp_path, office, "sued")
    anna = await new_staff(relay, tmp_path, nord, "anna")
    ben = await new_staff(relay, tmp_path, sued, "ben")
    yield {"relay": relay, "anna": anna, "ben": ben, "sued": sued}
    await close_all(office, nord, sued, anna, ben)


async def test_an_ended_session_is_renewed_by_logging_in_again(pair: dict[str, Any]) -> None:
    anna, relay = pair["anna"], pair["relay"]
    await anna.sync()
    api = await anna.api()
    old = api.token
    async with aiohttp.ClientSession() as http:  # end the session behind the client's back
        async with http.delete(relay.url + "/v1/auth/session",
                               headers={"Authorization": f"Bearer {old}"}) as answer:
            assert answer.status == 204
    await anna.send(to=["sued"], subject="nach Abmeldung", body="geht trotzdem")
    assert api.token is not None and api.token != old


async def test_listen_reconnects_after_a_relay_restart(pair: dict[str, Any]) -> None:
    anna, ben, relay = pair["anna"], pair["ben"], pair["relay"]
    stream = ben.listen()
    first_id = await anna.send(to=["sued"], subject="eins", body="vor dem Neustart")
    assert (await asyncio.wait_for(stream.__anext__(), 10)).id == first_id

    relay.restart()  # the socket drops; the client must reconnect and catch up by cursor
    second_id = await anna.send(to=["sued"], subject="zwei", body="nach dem Neustart")
    assert (await asyncio.wait_for(stream.__anext__(), 20)).id == second_id
    await stream.aclose()
    assert [m.id for m in await ben.inbox()] == [second_id, first_id]


async def test_listen_stops_with_a_clear_error_when_the_listener_is_removed(
        pair: dict[str, Any]) -> None:
    ben, sued = pair["ben"], pair["sued"]
    stream = ben.listen()
    waiting = asyncio.create_task(stream.__anext__())
    await asyncio.sleep(0.5)
    await sued.org.remove(ben.staff_id)
    with pytest.raises(AccessError) as removed:
        await asyncio.wait_for(waiting, 10)
    assert removed.value.code == "staff_removed"


async def test_an_admin_who_has_not_activated_is_told_so(relay: Any, tmp_path: Path) -> None:
    office = await open_office(relay)
    _, request = await Client.new_org(tmp_path, "west", PASSPHRASE, org_id="west", name="West",
                                      relay=relay.url, network=anchor_of(relay))
    async with await Client.open(tmp_path, "west", PASSPHRASE) as west:
        with pytest.raises(AccessError) as waiting:
            await west.org.show()
        assert waiting.value.code == "org_not_admitted"
        await office.network.admit(request)
        assert (await west.org.show()).epoch is None
        with pytest.raises(UsageError) as inactive:
            await west.org.rotate()
        assert inactive.value.code == "org_not_activated"
        assert await west.org.activate() == 1
        with pytest.raises(UsageError) as again:
            await west.org.activate()
        assert again.value.code == "already_active"
    await office.close()


async def test_a_relay_of_another_network_or_with_another_log_key_is_refused(
        pair: dict[str, Any], shared_relay: Any) -> None:
    anna = pair["anna"]
    home, name = anna.profile.home, anna.profile.name
    async with await Client.open(home, name, PASSPHRASE, relay=shared_relay.url) as elsewhere:
        with pytest.raises(AccessError) as other:
            await elsewhere.sync()
        assert other.value.code == "wrong_network"
    # as if the relay's log key had been swapped (pinned with the passphrase: an edit of
    # profile.json alone is refused earlier, tests/integration/test_profile_tampering.py)
    pin_log_key(anna.profile, anna.keystore, bytes(32))
    async with await Client.open(home, name, PASSPHRASE) as pinned:
        with pytest.raises(VerificationError) as swapped:
            await pinned.sync()
        assert swapped.value.code == "log_key_changed"
