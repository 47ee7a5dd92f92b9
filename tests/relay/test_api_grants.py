"""Grants: admins upload for their own org's epochs; each staff member reads only their own."""

from __future__ import annotations

from protocol import KeyLog, SignedItem, SigningKeyPair, b64decode, b64encode, open_grant
from tests.support.actors import Api, now, rand
from tests.support.relayproc import RelayProcess

from .conftest import db_rows, unique


async def _keylog(api: Api, relay: RelayProcess) -> KeyLog:
    log = KeyLog(relay.network_key.public)
    for entry in (await api.ok("GET", "/v1/log?limit=5000"))["entries"]:
        log.apply_item(SignedItem.from_json(entry["record"]), 2**40)
    return log


async def test_staff_read_their_own_grant_and_it_opens(api: Api, shared_relay: RelayProcess
                                                       ) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("gr"))
    alice = org.staff[f"{org.org_id}/alice"]
    mine = (await api.ok("GET", "/v1/grants", token=await api.login(alice)))["grants"]
    assert [(g["org_id"], g["epoch"]) for g in mine] == [(org.org_id, 1)]
    grant = open_grant(b64decode(mine[0]["grant"]), alice.staff_id, alice.box,
                       await _keylog(api, shared_relay))
    assert grant.secret_key == org.epochs[1].secret


async def test_only_admins_of_the_org_may_upload(api: Api, shared_relay: RelayProcess) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("gu"))
    other = await api.setup_org(shared_relay.network_key, unique("go"))
    admin = await api.login(org.staff[f"{org.org_id}/admin"])
    staff = await api.login(org.staff[f"{org.org_id}/alice"])
    foreign_admin = await api.login(other.staff[f"{other.org_id}/admin"])
    body = {"grants": org.grants()}
    path = f"/v1/grants/{org.org_id}/1"
    status, answer = await api.call("PUT", path, body, token=staff)
    assert (status, answer["code"]) == (403, "not_admin")
    status, foreign = await api.call("PUT", path, body, token=foreign_admin)
    status_missing, missing = await api.call("PUT", f"/v1/grants/{unique('none')}/1", body,
                                             token=foreign_admin)
    # "not yours" and "no such thing" are one answer
    assert (status, foreign) == (status_missing, missing) == (404, missing)
    assert missing["code"] == "not_found"
    for bad_path in (f"/v1/grants/{org.org_id}/2", f"/v1/grants/{org.org_id}/x",
                     "/v1/grants/NOT_AN_ORG/1"):
        status, answer = await api.call("PUT", bad_path, body, token=admin)
        assert (status, answer["code"]) == (404, "not_found"), bad_path
    assert (await api.ok("PUT", path, body, token=admin, expect=201)) == {"stored": 2}


async def test_bad_grant_uploads_are_refused_whole(api: Api, shared_relay: RelayProcess) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("gb"))
    admin_staff = org.staff[f"{org.org_id}/admin"]
    admin = await api.login(admin_staff)
    path = f"/v1/grants/{org.org_id}/1"
    good = org.grants()
    other_device = SigningKeyPair.from_seed(rand()).fingerprint
    cases = [
        ({"grants": [*good, {**good[0], "staff_id": f"{org.org_id}/nobody"}]}, "not_enrolled"),
        # a device that is not (or no longer) one of the member's gets nothing
        ({"grants": [*good, {**good[0], "device": other_device}]}, "not_enrolled"),
        ({"grants": [good[0], good[0]]}, "bad_field"),
        ({"grants": [{**good[0], "grant": b64encode(rand(10))}]}, "bad_field"),
        ({"grants": [{**good[0], "grant": "***"}]}, "bad_field"),
        ({"grants": [{**good[0], "device": "not a fingerprint"}]}, "bad_field"),
        ({"grants": [{"staff_id": good[0]["staff_id"], "grant": good[0]["grant"]}]},
         "bad_field"),  # which device it is sealed to is required
        ({"grants": []}, "bad_field"),
        ({"grants": good, "extra": 1}, "unknown_field"),
    ]
    alice = org.staff[f"{org.org_id}/alice"]
    alice_token = await api.login(alice)
    before = (await api.ok("GET", "/v1/grants", token=alice_token))["grants"]
    for body, code in cases:
        status, answer = await api.call("PUT", path, body, token=admin)
        assert (status, answer["code"]) == (422, code), body
    assert (await api.ok("GET", "/v1/grants", token=alice_token))["grants"] == before


async def test_grants_uploaded_for_a_retired_epoch_still_expire(api: Api,
                                                                shared_relay: RelayProcess
                                                                ) -> None:
    """Forward secrecy: a grant of an epoch that a newer one replaced must not stay forever.

    Grants of epoch n get an expiry when epoch n+1 is appended; one uploaded for epoch n
    *afterwards* used to be stored with none, so the sealed epoch secret outlived the
    client's deletion of it (a later seizure of the box key would open it).
    """
    org = await api.setup_org(shared_relay.network_key, unique("gx"))
    await api.append(org.new_epoch())
    _, bob = org.new_staff("bob")  # joins after the rotation; gets the old epoch too
    await api.append(bob)
    admin = await api.login(org.staff[f"{org.org_id}/admin"])
    await api.ok("PUT", f"/v1/grants/{org.org_id}/2", {"grants": org.grants(2)}, token=admin,
                 expect=201)
    await api.ok("PUT", f"/v1/grants/{org.org_id}/1", {"grants": org.grants(1)}, token=admin,
                 expect=201)
    rows = await db_rows(shared_relay, "SELECT epoch, expires FROM grants WHERE org_id = ? "
                                       "ORDER BY epoch", org.org_id)
    retired = [expires for epoch, expires in rows if epoch == 1]
    current = [expires for epoch, expires in rows if epoch == 2]
    assert len(retired) == len(current) == 3
    assert current == [None, None, None]
    limit = now() + 30 * 86400 + 60  # the default max_ttl, with a minute of slack
    assert all(expires is not None and expires <= limit for expires in retired), retired


async def test_an_admin_without_the_identity_key_cannot_overwrite_a_grant(
        api: Api, shared_relay: RelayProcess) -> None:
    """The relay stores a grant only with the org identity key's upload signature (SPEC 10):
    an admin by role, holding only their own staff key, cannot replace alice's grant with
    one that does not open."""
    from protocol import labels
    from protocol.grants import grant_upload_parts

    org = await api.setup_org(shared_relay.network_key, unique("gw"))
    admin_staff, alice = org.staff[f"{org.org_id}/admin"], org.staff[f"{org.org_id}/alice"]
    admin = await api.login(admin_staff)
    before = (await api.ok("GET", "/v1/grants", token=await api.login(alice)))["grants"]
    junk = rand(200)
    signature = admin_staff.signing.sign(labels.GRANT_UPLOAD, *grant_upload_parts(
        org.org_id, 1, alice.staff_id, alice.signing.fingerprint, alice.box.public, junk))
    body = {"grants": [{"staff_id": alice.staff_id, "device": alice.signing.fingerprint,
                        "grant": b64encode(junk + signature)}]}
    status, answer = await api.call("PUT", f"/v1/grants/{org.org_id}/1", body, token=admin)
    assert (status, answer["code"]) == (422, "wrong_signer")
    after = (await api.ok("GET", "/v1/grants", token=await api.login(alice)))["grants"]
    assert after == before
    grant = open_grant(b64decode(after[0]["grant"]), alice.staff_id, alice.box,
                       await _keylog(api, shared_relay))
    assert grant.secret_key == org.epochs[1].secret


async def test_a_grants_body_larger_than_any_real_upload_is_refused_unread(
        api: Api, shared_relay: RelayProcess) -> None:
    # 1000 grants of at most 4096 bytes fit in about 5.6 MB of JSON; the route used to take
    # anything up to max_send_bytes (8 MiB) and parse it.
    org = await api.setup_org(shared_relay.network_key, unique("gl"), ("admin",))
    token = await api.login(org.staff[f"{org.org_id}/admin"])
    status, body = await api.call("PUT", f"/v1/grants/{org.org_id}/1", raw=b" " * 6_000_000,
                                  token=token, headers={"Content-Type": "application/json"})
    assert (status, body["code"]) == (413, "body_too_large")
