"""Verifying another organisation out of band: safety codes, key changes, log heads.

Theory of operation
-------------------
The key log makes every identity key public and the network office vouches for it; two org
admins who want to rely on more than that read a **safety code** to each other over the
phone (``protocol.safety_code`` of the two identity keys, the same on both sides). ``kok org
verify ORG CODE`` then records, in this profile's mailbox, *which* identity key of ``ORG``
was verified. If the log later names another key for it (a rekey, or a re-admission), that
organisation shows as ``changed`` everywhere: ``whois``, the inbox and each message from it;
sending to it is refused until someone compares the new code. Nothing is silently accepted.

Log heads: ``whois`` shows the head (size and a code of its hash in fingerprint form) so two
organisations can compare it. ``compare_head`` takes the other side's head: if our verified
log holds a different hash at that size, or after a fresh sync still holds fewer entries
than they saw, the relay has shown us different histories (``log_forked``).
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Literal

from protocol.encoding import SignedItem, b64decode, b64encode
from protocol.errors import EncodingError
from protocol.keys import format_fingerprint, safety_code
from protocol.records import OrgVerify, sign_record

from . import identity
from .errors import UsageError, VerificationError
from .i18n import t

if TYPE_CHECKING:
    from .context import ClientContext

HEAD_CODE_BYTES = 20
HEAD_RE = re.compile(r"^\s*(\d{1,18})\s*:\s*([A-Za-z2-7 ]{32,64})\s*$")

Standing = Literal["own", "verified", "org_verified", "changed", "unverified"]


def head_code(head_hash: bytes) -> str:
    """The first 160 bits of a log head hash, in base32 groups of four (read aloud)."""
    return format_fingerprint(base64.b32encode(head_hash[:HEAD_CODE_BYTES]).decode("ascii"))


def pair_code(ctx: ClientContext, org_id: str) -> str | None:
    """The safety code of (our org, ``org_id``); None for a network profile or our own org."""
    log = ctx.directory.log
    ours = log.orgs.get(str(ctx.org_id)) if ctx.org_id else None
    theirs = log.orgs.get(org_id)
    if ours is None or theirs is None or ours.org_id == org_id:
        return None
    return safety_code(ours.identity_key, theirs.identity_key)


async def _verified(ctx: ClientContext) -> dict[str, str]:
    # sealed under the storage key: an edit of state.db cannot add a "verified" org
    return await ctx.store.verified_orgs()


def org_verified(ctx: ClientContext, org_id: str) -> bool:
    """Our organisation verified ``org_id``'s current identity key (an ``org_verify`` record
    in the verified log, so signed by our org's identity key; a rekey since voids it)."""
    log = ctx.directory.log
    ours = log.orgs.get(str(ctx.org_id)) if ctx.org_id else None
    theirs = log.orgs.get(org_id)
    if ours is None or theirs is None or ours.revoked:
        return False
    return ours.verified.get(org_id) == theirs.identity_key


async def standing(ctx: ClientContext, org_id: str) -> Standing:
    """``own``, ``verified`` (by this profile), ``org_verified`` (by our organisation),
    ``changed`` (verified here, then a new key) or ``unverified``."""
    if org_id == ctx.org_id:
        return "own"
    org = ctx.directory.log.orgs.get(org_id)
    recorded = (await _verified(ctx)).get(org_id)
    if org is None:
        return "unverified"
    if recorded is None:
        return "org_verified" if org_verified(ctx, org_id) else "unverified"
    try:
        key = b64decode(recorded, size=32)
    except EncodingError:
        return "changed"  # a damaged record must not read as "verified"
    return "verified" if key == org.identity_key else "changed"


async def changed_orgs(ctx: ClientContext) -> set[str]:
    """Every verified organisation whose identity key has changed since."""
    return {org_id for org_id in await _verified(ctx)
            if await standing(ctx, org_id) == "changed"}


async def require_unchanged(ctx: ClientContext, org_ids: list[str]) -> None:
    """Refuse to seal anything to a verified organisation whose key changed since."""
    for org_id in org_ids:
        if await standing(ctx, org_id) == "changed":
            raise VerificationError("identity_changed", org=org_id)


async def append_record(ctx: ClientContext, item: SignedItem) -> None:
    """Append a signed record at the relay, then mirror it."""
    api = await ctx.api()
    await api.append(item)
    await ctx.sync_log()


async def verify(ctx: ClientContext, org_id: str, code: str) -> str:
    """Record ``org_id``'s current identity key as verified if ``code`` is our pair's code."""
    await ctx.sync_log()
    org = ctx.directory.log.orgs.get(org_id)
    if org is None:
        raise UsageError("unknown_org", org=org_id)
    expected = pair_code(ctx, org_id)
    if expected is None:
        raise UsageError("cannot_verify", org=org_id)
    if re.sub(r"\D", "", code) != expected.replace(" ", ""):
        raise VerificationError("safety_code_mismatch", org=org_id)
    verified = await _verified(ctx)
    verified[org_id] = b64encode(org.identity_key)
    await ctx.store.set_verified_orgs(verified)
    signer = identity.current_identity(ctx)
    if signer is not None:
        # an admin holds the org identity key: the verification then counts for every
        # colleague, in the log where the relay cannot forge it (SPEC.md section 6.7)
        record = OrgVerify(org_id=str(ctx.org_id), subject=org_id,
                           identity_key=org.identity_key, created=ctx.now())
        await append_record(ctx, sign_record(record, signer))
    return expected


async def unverify(ctx: ClientContext, org_id: str) -> Standing:
    """Take back this profile's ``verify`` of ``org_id``; its standing afterwards.

    Only this profile's own record goes: an admin's ``org_verify`` in the key log is a signed
    statement of the organisation and stays (the standing is then ``org_verified``).
    """
    verified = await _verified(ctx)
    if org_id not in verified:
        raise UsageError("not_verified_here", org=org_id)
    del verified[org_id]
    await ctx.store.set_verified_orgs(verified)
    return await standing(ctx, org_id)


def parse_head(text: str) -> tuple[int, str]:
    """``SIZE:CODE`` as ``whois`` prints it (spaces and case in the code do not matter)."""
    match = HEAD_RE.match(text)
    code = match.group(2).replace(" ", "").upper() if match else ""
    if match is None or len(code) != 32:
        raise UsageError("bad_head", head=text)
    return int(match.group(1)), code


async def compare_head(ctx: ClientContext, text: str) -> None:
    """Raise ``log_forked`` unless our verified log agrees with another side's head."""
    size, code = parse_head(text)
    await ctx.sync_log()
    log = ctx.directory.log
    if size > log.size:
        # after a fresh sync: the relay withholds entries from us that it showed them
        raise VerificationError("log_forked", t("error.log_forked_shorter", size=size,
                                                ours=log.size))
    if head_code(log.hash_at(size)).replace(" ", "") != code:
        raise VerificationError("log_forked", size=size)
