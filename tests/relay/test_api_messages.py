"""Messages: send, list, fetch, acknowledge, report read, status and retract, and their
refusals."""

from __future__ import annotations

from protocol import b64decode, b64encode
from tests.support.actors import Api, envelope, rand, revoke
from tests.support.relayproc import RelayProcess

from .conftest import db_columns, db_rows, unique


async def _pair(api: Api, relay: RelayProcess, names: tuple[str, ...] = ("admin", "alice")):
    a = await api.setup_org(relay.network_key, unique("ma"), names)
    b = await api.setup_org(relay.network_key, unique("mb"), names)
    return a, b


async def test_delivered_when_every_enrolled_recipient_acknowledged(api: Api,
                                                                    shared_relay: RelayProcess
                                                                    ) -> None:
    a, b = await _pair(api, shared_relay)
    sender = a.staff[f"{a.org_id}/alice"]
    sent = (await api.send(await api.login(sender), [envelope(sender, b)]))["messages"][0]
    assert sent["to_org"] == b.org_id
    status_token = {"token": sent["status_token"]}
    assert await api.ok("POST", "/v1/status", status_token) == {
        "state": "pending", "acknowledged": 0, "of": 2, "read": 0}
    admin = await api.login(b.staff[f"{b.org_id}/admin"])
    alice = await api.login(b.staff[f"{b.org_id}/alice"])
    fetched = await api.ok("GET", f"/v1/messages/{sent['id']}", token=alice)
    assert fetched["to_org"] == b.org_id and fetched["epoch"] == 1
    assert (await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=alice)) == {
        "deleted": False}
    # a second ack by the same person changes nothing
    assert (await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=alice)) == {
        "deleted": False}
    assert await api.ok("POST", "/v1/status", status_token) == {
        "state": "pending", "acknowledged": 1, "of": 2, "read": 0}
    assert (await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=admin)) == {
        "deleted": True}
    assert await api.ok("POST", "/v1/status", status_token) == {
        "state": "delivered", "acknowledged": 2, "of": 2, "read": 0}
    status, body = await api.call("GET", f"/v1/messages/{sent['id']}", token=alice)
    assert (status, body["code"]) == (404, "not_found")
    status, body = await api.call("POST", "/v1/retract", status_token)
    assert (status, body["code"]) == (409, "not_retractable")


async def test_read_reports_count_people_who_fetched_and_refuse_everything_else(
        api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    sender = a.staff[f"{a.org_id}/alice"]
    sender_token = await api.login(sender)
    sent = (await api.send(sender_token, [envelope(sender, b)]))["messages"][0]
    other = (await api.send(sender_token, [envelope(sender, b, "m2")]))["messages"][0]
    status_token = {"token": sent["status_token"]}
    admin = await api.login(b.staff[f"{b.org_id}/admin"])
    alice = await api.login(b.staff[f"{b.org_id}/alice"])

    async def refused(body: object, token: str | None, code: str, expect: int = 422) -> None:
        status, answer = await api.call("POST", "/v1/messages/read", body, token=token)
        assert (status, answer["code"]) == (expect, code), answer

    # not fetched yet, by nobody: refused, and nothing is counted
    await refused({"ids": [sent["id"]]}, alice, "not_received", 404)
    await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=alice)
    # one unfetched id spoils the whole report; the sender's org cannot report at all
    await refused({"ids": [sent["id"], other["id"]]}, alice, "not_received", 404)
    await refused({"ids": [sent["id"]]}, sender_token, "not_received", 404)
    await refused({"ids": [sent["id"]]}, admin, "not_received", 404)
    await refused({"ids": [sent["id"]]}, None, "auth_required", 401)
    await refused({"ids": []}, alice, "bad_field")
    await refused({"ids": [sent["id"]] * 2}, alice, "bad_field")
    await refused({"ids": [b64encode(rand(16)) for _ in range(101)]}, alice, "bad_field")
    await refused({"ids": ["AAAA"]}, alice, "bad_field")
    await refused({"ids": [sent["id"]], "when": 1}, alice, "unknown_field")
    assert (await api.ok("POST", "/v1/status", status_token))["read"] == 0
    assert await api.ok("POST", "/v1/messages/read", {"ids": [sent["id"]]}, token=alice) == {
        "counted": 1}
    assert await api.ok("POST", "/v1/messages/read", {"ids": [sent["id"]]}, token=alice) == {
        "counted": 0}
    assert await api.ok("POST", "/v1/status", status_token) == {
        "state": "pending", "acknowledged": 1, "of": 2, "read": 1}
    # after the envelope is deleted the last recipient can still report it
    await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=admin)
    await api.ok("POST", "/v1/messages/read", {"ids": [sent["id"]]}, token=admin)
    assert await api.ok("POST", "/v1/status", status_token) == {
        "state": "delivered", "acknowledged": 2, "of": 2, "read": 2}


async def test_listing_by_cursor_and_other_orgs_see_nothing(api: Api, shared_relay: RelayProcess
                                                            ) -> None:
    a, b = await _pair(api, shared_relay)
    sender = a.staff[f"{a.org_id}/alice"]
    token = await api.login(sender)
    ids = [(await api.send(token, [envelope(sender, b, f"m{i}")]))["messages"][0]["id"]
           for i in range(3)]
    reader = await api.login(b.staff[f"{b.org_id}/alice"])
    page = await api.ok("GET", "/v1/messages?after=0&limit=2", token=reader)
    assert [m["id"] for m in page["messages"]] == ids[:2]
    rest = await api.ok("GET", f"/v1/messages?after={page['cursor']}", token=reader)
    assert [m["id"] for m in rest["messages"]] == ids[2:]
    empty = await api.ok("GET", f"/v1/messages?after={rest['cursor']}", token=reader)
    assert empty == {"messages": [], "cursor": rest["cursor"]}
    # the sender's org holds none of them, and cannot fetch or ack them
    assert (await api.ok("GET", "/v1/messages", token=token))["messages"] == []
    for method, path in (("GET", f"/v1/messages/{ids[0]}"), ("POST", f"/v1/messages/{ids[0]}/ack")):
        theirs = await api.call(method, path, token=token)
        missing = await api.call(method, path.replace(ids[0], b64encode(rand(16))), token=token)
        garbage = await api.call(method, path.replace(ids[0], "x"), token=token)
        assert theirs == missing == garbage
        assert theirs[0] == 404


async def test_retract_removes_a_pending_message(api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    sender = a.staff[f"{a.org_id}/alice"]
    sent = (await api.send(await api.login(sender), [envelope(sender, b)]))["messages"][0]
    token = {"token": sent["status_token"]}
    assert await api.ok("POST", "/v1/retract", token) == {"state": "retracted"}
    assert await api.ok("POST", "/v1/retract", token) == {"state": "retracted"}
    assert (await api.ok("POST", "/v1/status", token))["state"] == "retracted"
    reader = await api.login(b.staff[f"{b.org_id}/alice"])
    assert (await api.ok("GET", "/v1/messages", token=reader))["messages"] == []
    for body, status, code in (({"token": b64encode(rand(32))}, 404, "not_found"),
                               ({"token": "abc"}, 422, "bad_field"),
                               ({"token": sent["status_token"], "x": 1}, 422, "bad_field")):
        for path in ("/v1/status", "/v1/retract"):
            got, answer = await api.call("POST", path, body)
            assert (got, answer["code"]) == (status, code), (path, body)


async def test_idempotent_retry_gets_the_same_answer_and_stores_once(
        api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    c = await api.setup_org(shared_relay.network_key, unique("mc"))
    sender = a.staff[f"{a.org_id}/alice"]
    token = await api.login(sender)
    key = rand(16)
    envelopes = [envelope(sender, b), envelope(sender, c)]
    first = await api.send(token, envelopes, key=key)
    again = await api.send(token, envelopes, key=key)
    assert first == again
    assert [m["to_org"] for m in first["messages"]] == [b.org_id, c.org_id]
    assert len({m["status_token"] for m in first["messages"]}) == 2
    reader = await api.login(b.staff[f"{b.org_id}/alice"])
    assert len((await api.ok("GET", "/v1/messages", token=reader))["messages"]) == 1
    status, body = await api.call("POST", "/v1/messages", {
        "idempotency_key": b64encode(key), "ttl": 3600, "envelopes": envelopes[:1]}, token=token)
    assert (status, body["code"]) == (409, "idempotency_conflict")


async def test_every_bad_send_is_refused_and_stores_nothing(api: Api, shared_relay: RelayProcess
                                                            ) -> None:
    a, b = await _pair(api, shared_relay)
    sender = a.staff[f"{a.org_id}/alice"]
    token = await api.login(sender)
    good = envelope(sender, b)
    revoked_org = await api.setup_org(shared_relay.network_key, unique("mr"))
    revoked_env = envelope(sender, revoked_org)
    await api.append(revoke(shared_relay.network_key, revoked_org.org_id))
    key = b64encode(rand(16))
    big = b64encode(rand(300_000))
    cases = [
        ({"envelopes": [good], "ttl": 30 * 86400 + 1}, 422, "ttl_out_of_range"),
        ({"envelopes": [good], "ttl": 0}, 422, "ttl_out_of_range"),
        ({"envelopes": [good], "ttl": "1"}, 422, "bad_field"),
        ({"envelopes": [{**good, "epoch": 2}]}, 409, "stale_epoch"),
        ({"envelopes": [{**good, "to_org": unique("nobody")}]}, 422, "recipient_unknown"),
        ({"envelopes": [revoked_env]}, 422, "recipient_unknown"),
        ({"envelopes": [good, good]}, 422, "duplicate_recipient"),
        ({"envelopes": []}, 422, "bad_field"),
        ({"envelopes": [{**good, "sealed": b64encode(rand(47))}]}, 422, "bad_field"),
        ({"envelopes": [{**good, "sealed": b64encode(rand(1024 * 1024 + 1))}]}, 413,
         "envelope_too_large"),
        ({"envelopes": [{**good, "from": "me"}]}, 422, "unknown_field"),
        ({"envelopes": [{"to_org": b.org_id, "epoch": 1}]}, 422, "missing_field"),
        ({"envelopes": [good] * 65}, 422, "too_many_envelopes"),
        ({"envelopes": [good], "sender": "x"}, 422, "unknown_field"),
        # bodies over 256 KiB are parsed in another process: the same specific refusals
        ({"envelopes": [{**good, "sealed": big}, {**good, "from": "me"}]}, 422,
         "unknown_field"),
        ({"envelopes": [{**good, "sealed": big + "="}]}, 422, "bad_field"),
        ({"envelopes": [{**good, "sealed": big}], "ttl": "1"}, 422, "bad_field"),
    ]
    for extra, status, code in cases:
        got, body = await api.call("POST", "/v1/messages", {"idempotency_key": key, **extra},
                                   token=token)
        assert (got, body["code"]) == (status, code), (extra.keys(), body)
    got, body = await api.call("POST", "/v1/messages",
                               {"idempotency_key": "short", "envelopes": [good]}, token=token)
    assert (got, body["code"]) == (422, "bad_field")
    got, body = await api.call("POST", "/v1/messages", {"envelopes": [good]})
    assert (got, body["code"]) == (401, "auth_required")
    reader = await api.login(b.staff[f"{b.org_id}/alice"])
    assert (await api.ok("GET", "/v1/messages", token=reader))["messages"] == []
    # the key was never used, so a good send with it now succeeds
    assert (await api.send(token, [good], key=b64decode(key)))["messages"]


async def test_no_stored_row_names_the_sender(api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    sender = a.staff[f"{a.org_id}/alice"]
    sent = (await api.send(await api.login(sender), [envelope(sender, b)]))["messages"][0]
    for table, columns in (await db_columns(shared_relay)).items():
        assert not any(word in c for c in columns for word in ("sender", "from")), table
    rows = await db_rows(shared_relay, "SELECT * FROM messages WHERE id = ?",
                         b64decode(sent["id"]))
    assert rows
    row = rows[0]
    deliveries = await db_rows(shared_relay, "SELECT staff_id FROM deliveries "
                                             "WHERE message = ?", row[0])
    assert sorted(d[0] for d in deliveries) == sorted(b.staff)  # recipients only
    flat = repr(row).encode() + repr(deliveries).encode()
    assert sender.staff_id.encode() not in flat and a.org_id.encode() not in flat
