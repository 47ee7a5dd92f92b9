"""One exception tree for the protocol, with stable error codes.

Every rejection a reader makes maps to exactly one class, and every class carries a
``code`` that never changes once published (SPEC.md section "Error codes" lists them).
Messages are written for the person who sees them, not for the programmer.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every protocol rejection; ``code`` is stable and listed in SPEC.md."""

    code = "protocol_error"
    default_message = "The data did not follow the kok protocol."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        """The sentence for the person who sees the error."""
        return str(self.args[0])


# --- encoding -------------------------------------------------------------------------


class EncodingError(ProtocolError):
    """Bytes that are not a well-formed protocol structure."""

    code = "malformed"
    default_message = "The data is not well-formed."


class MalformedJSON(EncodingError):
    """Bytes that are not UTF-8 JSON, or JSON with duplicate keys or bad constants."""

    code = "malformed_json"
    default_message = "The data is not valid UTF-8 JSON."


class NonCanonical(EncodingError):
    """Signed JSON whose bytes differ from its canonical encoding."""

    code = "non_canonical"
    default_message = "Signed JSON is not in canonical form (sorted keys, no spaces, NFC)."


class UnknownField(EncodingError):
    """A field this protocol version does not define."""

    code = "unknown_field"
    default_message = "The structure carries a field this version does not know."


class MissingField(EncodingError):
    """A required field is absent."""

    code = "missing_field"
    default_message = "A required field is missing."


class BadField(EncodingError):
    """A field of the wrong type, size, range or format."""

    code = "bad_field"
    default_message = "A field has the wrong type, size or format."


class UnknownVersion(EncodingError):
    """A ``v`` this software does not speak."""

    code = "unknown_version"
    default_message = "The structure has a version this software does not understand."


# --- signatures -----------------------------------------------------------------------


class SignatureError(ProtocolError):
    """A signature that does not verify over the bytes it claims to cover."""

    code = "bad_signature"
    default_message = "A signature does not verify: the data was altered or signed by someone else."


class WrongSigner(SignatureError):
    """Signed by a key that may not sign this, or not signed by the key that must."""

    code = "wrong_signer"
    default_message = "The data was signed by a key that is not allowed to sign it."


# --- key log --------------------------------------------------------------------------


class LogError(ProtocolError):
    """A key-log record that breaks a rule of the log (SPEC.md, key-log rules)."""

    code = "log_invalid"
    default_message = "A key-log record breaks the log's rules."


class LogOrgExists(LogError):
    """``org_admit`` for an organisation that is admitted and not revoked."""

    code = "log_org_exists"
    default_message = "This organisation is already admitted."


class LogOrgUnknown(LogError):
    """A record or question about an organisation the log never admitted."""

    code = "log_org_unknown"
    default_message = "This organisation is not part of the network."


class LogOrgRevoked(LogError):
    """A record for an organisation that has been revoked."""

    code = "log_org_revoked"
    default_message = "This organisation has been revoked from the network."


class LogNoEpoch(LogOrgUnknown):
    """An organisation that has no epoch key yet, so nothing can be sealed to it."""

    code = "log_no_epoch"
    default_message = "This organisation has not published an epoch key yet."


class LogStaffExists(LogError):
    """``staff_add`` reusing a staff id or a signing key already enrolled."""

    code = "log_staff_exists"
    default_message = "This staff identifier is already in use."


class LogStaffUnknown(LogError):
    """A record or question about a staff id that was never enrolled."""

    code = "log_staff_unknown"
    default_message = "This staff member is not enrolled."


class LogStaffRemoved(LogError):
    """A staff member who has already been removed."""

    code = "log_staff_removed"
    default_message = "This staff member has been removed from their organisation."


class LogDeviceUnknown(LogError):
    """A record naming a device the staff member never had."""

    code = "log_device_unknown"
    default_message = "This device was never added for this staff member."


class LogDeviceRemoved(LogError):
    """A record about a device that has already been removed."""

    code = "log_device_removed"
    default_message = "This device has been removed; it can no longer act for its owner."


class LogDeviceLast(LogError):
    """Removing a staff member's only current device (that is a staff removal)."""

    code = "log_device_last"
    default_message = (
        "This is the person's last device. Link another device first, or remove the person."
    )


class LogDeviceLimit(LogError):
    """A device added to a staff member who has the most devices allowed."""

    code = "log_device_limit"
    default_message = "This person has as many devices as allowed; remove one first."


class LogEpochOrder(LogError):
    """An ``epoch`` record whose number is not above every earlier one."""

    code = "log_epoch_order"
    default_message = "Epoch numbers of an organisation must strictly increase."


class LogKeyReused(LogError):
    """A key offered again: an org's identity or epoch key, or any box key, used before."""

    code = "log_key_reused"
    default_message = "The record reuses a key this organisation had before; keys must be fresh."


class LogTimestamp(LogError):
    """A record dated too far in the future or too far before the previous entry."""

    code = "log_timestamp"
    default_message = "The record's time is too far in the future or before the log's last entry."


class LogRewritten(LogError):
    """A log that does not extend the head the client saw before."""

    code = "log_rewritten"
    default_message = (
        "The relay's key log does not extend the one this client saw before. "
        "The relay may be lying; stop and tell your network office."
    )


class LogHeadInvalid(LogError):
    """A signed head whose signature or fields are invalid."""

    code = "log_head_invalid"
    default_message = "The relay's signed key-log head does not verify."


# --- messages and grants --------------------------------------------------------------


class EnvelopeError(ProtocolError):
    """A message envelope that fails one of the opening checks."""

    code = "envelope_invalid"
    default_message = "A message could not be verified and was not accepted."


class DecryptFailed(EnvelopeError):
    """A sealed box that does not open with our key."""

    code = "decrypt_failed"
    default_message = "A message could not be decrypted: it was altered or not sealed to our key."


class BadPadding(EnvelopeError):
    """Padding whose length frame or zero bytes are wrong."""

    code = "bad_padding"
    default_message = "A message's padding is wrong: it was altered."


class WrongRecipient(EnvelopeError):
    """A message signed for another organisation or epoch than it arrived for."""

    code = "wrong_recipient"
    default_message = "A message was signed for another organisation or epoch than it arrived for."


class SenderInvalid(EnvelopeError):
    """A sender who was not valid staff (per the key log) when the message was sent."""

    code = "sender_invalid"
    default_message = "A message's sender was not a valid staff member when it was sent."


class BadTimestamp(EnvelopeError):
    """A message dated in the future or before the epoch key it is sealed to."""

    code = "bad_timestamp"
    default_message = "A message's time is impossible (in the future, or before its key existed)."


class MessageExpired(EnvelopeError):
    """A message opened after its signed expiry: a late replay, never shown."""

    code = "message_expired"
    default_message = "A message arrived after it had expired; it may be a replay and was dropped."


class Replayed(EnvelopeError):
    """A message whose sender and id the reader accepted before (SPEC 9.3, last step)."""

    code = "replayed"
    default_message = (
        "This message was delivered before; the second copy is set aside, not shown again."
    )


class GrantError(ProtocolError):
    """An epoch grant that fails one of its checks."""

    code = "grant_invalid"
    default_message = "An epoch grant is invalid."


class GrantKeyMismatch(GrantError):
    """A granted epoch secret whose public key differs from the key log's."""

    code = "grant_key_mismatch"
    default_message = (
        "An epoch key handed out by the relay does not match the organisation's published key."
    )


class GrantWrongRecipient(GrantError):
    """A grant made out to another staff member or organisation."""

    code = "grant_wrong_recipient"
    default_message = "An epoch grant is addressed to someone else."


class GrantUnknownEpoch(GrantError):
    """A grant for an epoch the key log does not hold (yet)."""

    code = "grant_unknown_epoch"
    default_message = "An epoch grant is for a key the key log does not know; sync the log first."


class RequestInvalid(ProtocolError):
    """An onboarding request file that is damaged or not self-signed."""

    code = "request_invalid"
    default_message = "The request file is damaged or was altered after it was signed."


# --- device linking -------------------------------------------------------------------


class LinkError(ProtocolError):
    """Linking a device with a one-time code failed (SPEC.md section 6.9)."""

    code = "link_invalid"
    default_message = "The device could not be linked."


class LinkCodeInvalid(LinkError):
    """A code that is not of the form NNNN-DDDD-DDDD."""

    code = "link_bad_code"
    default_message = ("That is not a linking code: it has twelve digits, like "
                       "4711-2950-8163.")


class LinkWrongCode(LinkError):
    """The other side's confirmation does not match: the two sides used different codes."""

    code = "link_wrong_code"
    default_message = ("The two devices did not use the same code: it was mistyped, or "
                       "someone else answered. Nothing was added; start again with a new code.")


class LinkMessageInvalid(LinkError):
    """A mailbox message that is malformed, too large or altered."""

    code = "link_message_invalid"
    default_message = "A message of the linking exchange was damaged or altered."


# --- file streams ---------------------------------------------------------------------


class StreamError(ProtocolError):
    """A file stream that fails to decrypt completely and exactly."""

    code = "stream_invalid"
    default_message = "A file could not be decrypted."


class StreamCorrupt(StreamError):
    """A chunk that fails authentication, or a tag or padding in the wrong place."""

    code = "stream_corrupt"
    default_message = "A file was altered, reordered or encrypted with another key."


class StreamTruncated(StreamError):
    """A stream that ends before its FINAL chunk."""

    code = "stream_truncated"
    default_message = "A file is incomplete: it ends before its last part."


class StreamTrailingData(StreamError):
    """Bytes after the FINAL chunk."""

    code = "stream_trailing_data"
    default_message = "A file has extra data after its last part."


class StreamSizeMismatch(StreamError):
    """A stream whose size differs from the declared or signed size."""

    code = "stream_size_mismatch"
    default_message = "A file's size differs from the size its sender signed."


class StreamHashMismatch(StreamError):
    """Ciphertext whose SHA-256 differs from the signed hash."""

    code = "stream_hash_mismatch"
    default_message = "A file's encrypted bytes differ from what its sender signed."


# --- auth -----------------------------------------------------------------------------


class AuthSignatureInvalid(SignatureError):
    """A relay-login signature that does not answer the challenge."""

    code = "auth_bad_signature"
    default_message = "The login signature does not verify."


CLIENT_CODES: dict[str, str] = {
    "relay_origin_mismatch": "the relay's `/v1/info` `origins` lack the origin of the URL the "
                             "client was configured with (section 11)",
    "log_forked": "a head another side saw (size and hash, or the position signed into a "
                  "message or grant) disagrees with the client's verified log: the relay shows "
                  "different histories (sections 6.5, 9.3, 10)",
    "log_key_changed": "the relay signs its heads with another log key than the one the client "
                       "pinned (section 6.5)",
    "identity_changed": "an org the person verified has another identity key since "
                        "(sections 3.3, 20.5)",
    "safety_code_mismatch": "the safety code typed in does not match the two identity keys "
                            "(section 3.3)",
    "epoch_key_missing": "an envelope sealed to an epoch whose secret the client does not hold "
                         "(yet): it waits for a grant (sections 9.3, 10)",
}
"""Codes a client reports beyond this exception tree, for events of the protocol that only a
client can see (it checks state the protocol functions do not hold). SPEC.md section 16.2."""


def all_error_classes() -> list[type[ProtocolError]]:
    """Every error class, parents first; used by tests and SPEC.md to list the codes."""
    seen: list[type[ProtocolError]] = []

    def walk(cls: type[ProtocolError]) -> None:
        seen.append(cls)
        for sub in cls.__subclasses__():
            walk(sub)

    walk(ProtocolError)
    return seen


def error_codes() -> dict[str, type[ProtocolError]]:
    """Map each stable code to its class."""
    return {cls.code: cls for cls in all_error_classes()}
