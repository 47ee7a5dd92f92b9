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
        return str(self.args[0])


# --- encoding -------------------------------------------------------------------------


class EncodingError(ProtocolError):
    """Bytes that are not a well-formed protocol structure."""

    code = "malformed"
    default_message = "The data is not well-formed."


class MalformedJSON(EncodingError):
    code = "malformed_json"
    default_message = "The data is not valid UTF-8 JSON."


class NonCanonical(EncodingError):
    code = "non_canonical"
    default_message = "Signed JSON is not in canonical form (sorted keys, no spaces, NFC)."


class UnknownField(EncodingError):
    code = "unknown_field"
    default_message = "The structure carries a field this version does not know."


class MissingField(EncodingError):
    code = "missing_field"
    default_message = "A required field is missing."


class BadField(EncodingError):
    code = "bad_field"
    default_message = "A field has the wrong type, size or format."


class UnknownVersion(EncodingError):
    code = "unknown_version"
    default_message = "The structure has a version this software does not understand."


# --- signatures -----------------------------------------------------------------------


class SignatureError(ProtocolError):
    code = "bad_signature"
    default_message = "A signature does not verify: the data was altered or signed by someone else."


class WrongSigner(SignatureError):
    code = "wrong_signer"
    default_message = "The data was signed by a key that is not allowed to sign it."


# --- key log --------------------------------------------------------------------------


class LogError(ProtocolError):
    code = "log_invalid"
    default_message = "A key-log record breaks the log's rules."


class LogOrgExists(LogError):
    code = "log_org_exists"
    default_message = "This organisation is already admitted."


class LogOrgUnknown(LogError):
    code = "log_org_unknown"
    default_message = "This organisation is not part of the network."


class LogOrgRevoked(LogError):
    code = "log_org_revoked"
    default_message = "This organisation has been revoked from the network."


class LogStaffExists(LogError):
    code = "log_staff_exists"
    default_message = "This staff identifier is already in use."


class LogStaffUnknown(LogError):
    code = "log_staff_unknown"
    default_message = "This staff member is not enrolled."


class LogStaffRemoved(LogError):
    code = "log_staff_removed"
    default_message = "This staff member has been removed from their organisation."


class LogEpochOrder(LogError):
    code = "log_epoch_order"
    default_message = "Epoch numbers of an organisation must strictly increase."


class LogTimestamp(LogError):
    code = "log_timestamp"
    default_message = "The record's time is too far in the future or before the log's last entry."


class LogRewritten(LogError):
    code = "log_rewritten"
    default_message = (
        "The relay's key log does not extend the one this client saw before. "
        "The relay may be lying; stop and tell your network office."
    )


class LogHeadInvalid(LogError):
    code = "log_head_invalid"
    default_message = "The relay's signed key-log head does not verify."


# --- messages and grants --------------------------------------------------------------


class EnvelopeError(ProtocolError):
    code = "envelope_invalid"
    default_message = "A message could not be verified and was not accepted."


class DecryptFailed(EnvelopeError):
    code = "decrypt_failed"
    default_message = "A message could not be decrypted: it was altered or not sealed to our key."


class BadPadding(EnvelopeError):
    code = "bad_padding"
    default_message = "A message's padding is wrong: it was altered."


class WrongRecipient(EnvelopeError):
    code = "wrong_recipient"
    default_message = "A message was signed for another organisation or epoch than it arrived for."


class SenderInvalid(EnvelopeError):
    code = "sender_invalid"
    default_message = "A message's sender was not a valid staff member when it was sent."


class BadTimestamp(EnvelopeError):
    code = "bad_timestamp"
    default_message = "A message's time is impossible (in the future, or before its key existed)."


class GrantError(ProtocolError):
    code = "grant_invalid"
    default_message = "An epoch grant is invalid."


class GrantKeyMismatch(GrantError):
    code = "grant_key_mismatch"
    default_message = (
        "An epoch key handed out by the relay does not match the organisation's published key."
    )


class RequestInvalid(ProtocolError):
    code = "request_invalid"
    default_message = "The request file is damaged or was altered after it was signed."


# --- file streams ---------------------------------------------------------------------


class StreamError(ProtocolError):
    code = "stream_invalid"
    default_message = "A file could not be decrypted."


class StreamCorrupt(StreamError):
    code = "stream_corrupt"
    default_message = "A file was altered, reordered or encrypted with another key."


class StreamTruncated(StreamError):
    code = "stream_truncated"
    default_message = "A file is incomplete: it ends before its last part."


class StreamTrailingData(StreamError):
    code = "stream_trailing_data"
    default_message = "A file has extra data after its last part."


class StreamSizeMismatch(StreamError):
    code = "stream_size_mismatch"
    default_message = "A file's size differs from the size its sender signed."


class StreamHashMismatch(StreamError):
    code = "stream_hash_mismatch"
    default_message = "A file's encrypted bytes differ from what its sender signed."


# --- auth -----------------------------------------------------------------------------


class AuthSignatureInvalid(SignatureError):
    code = "auth_bad_signature"
    default_message = "The login signature does not verify."


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
