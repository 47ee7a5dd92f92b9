"""Numbers in headers, paths and queries are ASCII digits only.

Attack: ``str.isdigit`` and ``int`` also accept other scripts' digits, so ``Upload-Offset:
١٥`` used to move an upload to offset 15 and ``Range: bytes=١-٢`` was served as a range. No
client sends these; each must be refused like any other malformed number, changing nothing.
"""

from __future__ import annotations

import os

from protocol import b64encode
from tests.support.actors import Api
from tests.support.relayproc import RelayProcess

from .conftest import unique
from .test_drops import create, get, staff

ARABIC_15 = "\u0661\u0665"


async def test_non_ascii_digits_are_refused_everywhere(api: Api,
                                                       shared_relay: RelayProcess) -> None:
    a = await api.setup_org(shared_relay.network_key, unique("na"), ("admin", "alice"))
    b = await api.setup_org(shared_relay.network_key, unique("nb"), ("admin", "bob"))
    alice = await api.login(staff(a, "alice"))
    data = os.urandom(3000)
    drop = await create(api, alice, len(data), [b.org_id])
    assert (await drop.patch(0, data[:15]))[0] == 204

    status, body, _ = await drop.request("PATCH", headers=drop.headers(**{
        "Upload-Offset": ARABIC_15, "Content-Type": "application/offset+octet-stream"}),
        data=data[15:])
    assert (status, body["code"]) == (400, "bad_header")
    assert await drop.offset() == 15  # nothing moved

    assert (await drop.patch(15, data[15:]))[0] == 204
    assert (await drop.complete())[0] == 200
    bob = await api.login(staff(b, "bob"))
    status, body, _ = await get(api, drop.id, bob, "bytes=\u0661-\u0662")
    assert (status, body["code"]) == (416, "bad_range")
    assert (await get(api, drop.id, bob, "bytes=1-2"))[:2] == (206, data[1:3])

    status, body = await api.call("GET", f"/v1/messages?after={ARABIC_15}", token=bob)
    assert (status, body["code"]) == (422, "bad_field")
    head = await api.ok("GET", "/v1/log/head")
    status, body = await api.call("GET", "/v1/grants", token=bob, headers={
        "Kok-Log-Head": f"\u0661:{head['hash']}"})
    assert (status, body["code"]) == (400, "bad_header")
    admin = await api.login(staff(a, "admin"))
    status, body = await api.call("PUT", f"/v1/grants/{a.org_id}/\u0661",
                                  {"grants": [{"staff_id": f"{a.org_id}/alice",
                                               "grant": b64encode(os.urandom(64))}]},
                                  token=admin)
    assert (status, body["code"]) == (404, "not_found")
