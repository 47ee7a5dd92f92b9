"""Key log over HTTP: read, signed head, append, and every kind of refusal."""

from __future__ import annotations

import json

import pytest

from protocol import Head, SignedItem, b64decode, b64encode, sign_record, verify_head
from protocol.encoding import Signature
from protocol.errors import LogHeadInvalid
from protocol.records import OrgAdmit
from tests.support.actors import Api, admit, now, rand, revoke
from tests.support.relayproc import RelayProcess

from .conftest import unique


def _head(obj: dict) -> Head:
    return Head(size=obj["size"], hash=b64decode(obj["hash"]), time=obj["time"],
                signature=b64decode(obj["signature"]))


async def test_info_names_network_log_key_and_limits(api: Api, shared_relay: RelayProcess) -> None:
    info = await api.ok("GET", "/v1/info")
    assert info["network_key"] == shared_relay.network_anchor["network_key"]
    assert info["network_fingerprint"] == shared_relay.network_anchor["fingerprint"]
    assert info["origin"] == shared_relay.url
    assert info["protocol"] == 1
    assert info["limits"]["max_envelope_bytes"] == 1024 * 1024
    assert info["limits"]["max_ttl"] == 30 * 86400
    assert abs(info["time"] - now()) < 5


async def test_append_then_read_back_with_a_head_signed_by_the_log_key(api: Api,
                                                                       shared_relay: RelayProcess
                                                                       ) -> None:
    info = await api.ok("GET", "/v1/info")
    _, item = admit(shared_relay.network_key, unique("log"))
    answer = await api.append(item)
    head = await api.ok("GET", "/v1/log/head")
    verify_head(b64decode(info["log_key"]), _head(head))
    verify_head(b64decode(info["log_key"]), _head(answer["head"]))
    assert head["size"] == answer["index"] + 1
    page = await api.ok("GET", f"/v1/log?after={answer['index']}")
    assert [e["index"] for e in page["entries"]] == [answer["index"]]
    assert SignedItem.from_json(page["entries"][0]["record"]) == item
    assert page["entries"][0]["hash"] == answer["hash"] == head["hash"]
    limited = await api.ok("GET", "/v1/log?after=0&limit=1")
    assert len(limited["entries"]) == 1


async def test_a_tampered_head_does_not_verify(api: Api) -> None:
    """The test of the test: verify_head really checks the relay's signature."""
    info = await api.ok("GET", "/v1/info")
    head = _head(await api.ok("GET", "/v1/log/head"))
    forged = Head(size=head.size + 1, hash=head.hash, time=head.time, signature=head.signature)
    with pytest.raises(LogHeadInvalid):
        verify_head(b64decode(info["log_key"]), forged)


async def _refused(api: Api, record: object, status: int, code: str) -> None:
    before = (await api.ok("GET", "/v1/log/head"))["size"]
    got, body = await api.call("POST", "/v1/log", {"record": record})
    assert (got, body["code"]) == (status, code), body
    assert body["type"].endswith("/" + code)
    assert (await api.ok("GET", "/v1/log/head"))["size"] == before  # nothing changed


async def test_each_broken_record_gets_its_own_code_and_changes_nothing(
        api: Api, shared_relay: RelayProcess) -> None:
    network = shared_relay.network_key
    org, admitted = admit(network, unique("rules"))
    await api.append(admitted)
    # the same org again
    _, again = admit(network, org.org_id)
    await _refused(api, again.to_json(), 422, "log_org_exists")
    # signed by someone who is not the network office
    impostor_org, _ = admit(network, unique("imp"))
    forged = sign_record(OrgAdmit(impostor_org.org_id, "X", impostor_org.identity.public, now()),
                         impostor_org.identity)
    await _refused(api, forged.to_json(), 422, "wrong_signer")
    # a flipped bit in the signature
    good = admit(network, unique("flip"))[1]
    sig = bytearray(good.sigs[0].sig)
    sig[0] ^= 1
    flipped = SignedItem(good.body, (Signature(good.sigs[0].key, bytes(sig)),))
    await _refused(api, flipped.to_json(), 422, "bad_signature")
    # staff of an org that does not exist
    ghost, _ = admit(network, unique("ghost"))
    await _refused(api, ghost.new_staff("xx")[1].to_json(), 422, "log_org_unknown")
    # a record from the far future
    future = sign_record(OrgAdmit(unique("fut"), "F", rand(), now() + 3600), network)
    await _refused(api, future.to_json(), 422, "log_timestamp")
    # unknown version, non-canonical body, unknown field
    body = json.loads(good.body)
    for change, code in (({"v": 2}, "unknown_version"), ({"extra": 1}, "unknown_field")):
        text = json.dumps({**body, **change}, sort_keys=True, separators=(",", ":"))
        item = network.sign_item(b"kok/v1/record", text.encode())
        await _refused(api, item.to_json(), 422, code)
    spaced = network.sign_item(b"kok/v1/record", json.dumps(body, sort_keys=True).encode())
    await _refused(api, spaced.to_json(), 422, "non_canonical")
    # not a signed item at all
    await _refused(api, {"body": good.body.decode()}, 422, "missing_field")
    await _refused(api, "just a string", 422, "bad_field")
    # epochs must increase
    await api.append(org.new_epoch())
    org.epochs[0] = org.epochs[1]
    del org.epochs[1]
    await _refused(api, org.new_epoch().to_json(), 422, "log_epoch_order")
    # a revoked org cannot add staff
    await api.append(revoke(network, org.org_id))
    await _refused(api, org.new_staff("late")[1].to_json(), 422, "log_org_revoked")


async def test_malformed_bodies_are_refused_before_anything_else(api: Api) -> None:
    for raw, code in ((b"{", "malformed_json"), (b'{"record": 1.5}', "malformed_json"),
                      (b'{"record": {}, "record": {}}', "malformed_json"),
                      (b"\xff\xfe", "malformed_json")):
        status, body = await api.call("POST", "/v1/log", raw=raw)
        assert (status, body["code"]) == (400, code), raw
    status, body = await api.call("POST", "/v1/log", {"record": {}, "more": 1})
    assert (status, body["code"]) == (422, "unknown_field")
    status, body = await api.call("POST", "/v1/log", raw=b"x" * (70 * 1024))
    assert (status, body["code"]) == (413, "body_too_large")


async def test_log_head_header_catches_a_log_that_does_not_extend_the_clients(api: Api) -> None:
    head = await api.ok("GET", "/v1/log/head")
    mine = f"{head['size']}:{head['hash']}"
    status, _ = await api.call("GET", "/v1/log", headers={"Kok-Log-Head": mine})
    assert status == 200
    forked = f"{head['size']}:{b64encode(rand(32))}"
    status, body = await api.call("GET", "/v1/log", headers={"Kok-Log-Head": forked})
    assert (status, body["code"]) == (409, "log_head_mismatch")
    longer = f"{head['size'] + 5}:{head['hash']}"
    status, body = await api.call("GET", "/v1/grants", headers={"Kok-Log-Head": longer})
    assert (status, body["code"]) == (409, "log_head_mismatch")
    status, body = await api.call("GET", "/v1/log", headers={"Kok-Log-Head": "nonsense"})
    assert (status, body["code"]) == (400, "bad_header")
    # info and health answer anyway: a client on the wrong relay must learn "wrong network"
    status, _ = await api.call("GET", "/v1/info", headers={"Kok-Log-Head": forked})
    assert status == 200


async def test_unknown_routes_and_methods_answer_problem_json(api: Api) -> None:
    status, body = await api.call("GET", "/v1/nothing-here")
    assert (status, body["code"]) == (404, "not_found")
    status, body = await api.call("DELETE", "/v1/log")
    assert (status, body["code"]) == (405, "method_not_allowed")
    status, text = await api.call("GET", "/v1/openapi.yaml")
    assert status == 200 and text.startswith("openapi: 3.1")
    status, body = await api.call("GET", "/v1/log?after=-1")
    assert (status, body["code"]) == (422, "bad_field")
