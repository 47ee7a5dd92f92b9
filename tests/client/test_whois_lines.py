"""``kok whois`` / ``kok org show``: what they ask of the reader and what they count."""

from __future__ import annotations

import pytest

from client.models import OrgInfo, StaffInfo
from client.render import org_lines

ALICE = StaffInfo("sued.alice", "admin", "aa" * 32, 1_700_000_000, None)
BOB = StaffInfo("sued.bob", "staff", "bb" * 32, 1_700_000_100, None)
CARL = StaffInfo("sued.carl", "staff", "cc" * 32, 1_700_000_200, 1_700_050_000)


def sued(verification: str, staff: tuple[StaffInfo, ...] = (ALICE, BOB)) -> OrgInfo:
    return OrgInfo(org_id="sued", name="Beratung Süd", fingerprint="dd" * 32,
                   admitted=1_700_000_000, revoked=None, revoke_reason=None, staff=staff,
                   epoch=1, epoch_created=1_700_000_000, epoch_fingerprint="ee" * 32,
                   log_size=5, log_hash="ff" * 32, safety_code="1234 5678 9012",
                   verification=verification)


def test_a_verified_org_is_not_asked_to_be_compared_again() -> None:
    text = "\n".join(org_lines(sued("verified")))
    assert "1234 5678 9012" in text  # still shown, for a later check
    assert "kok org verify" not in text and "by phone" not in text
    assert "Verified" in text


@pytest.mark.parametrize("verification", ["unverified", "changed"])
def test_an_unverified_or_changed_org_is_asked_to_compare(verification: str) -> None:
    assert "kok org verify sued" in "\n".join(org_lines(sued(verification)))


def test_staff_count_leaves_out_removed_colleagues() -> None:
    lines = org_lines(sued("verified", (ALICE, BOB, CARL)))
    assert "Staff: 2 people" in lines
    assert "removed 2023" in " ".join(lines).split("sued.carl")[1]  # still listed, as removed
