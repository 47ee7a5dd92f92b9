"""The relay's refusals: one class per answer, each with a stable ``code`` and HTTP status.

Every refusal becomes an ``application/problem+json`` answer (RFC 9457) whose ``code`` is
listed in ``protocol/openapi.yaml``. A refusal changes nothing: handlers raise before they
write, and the store raises inside the transaction it then rolls back. Messages speak to
the person who reads them in a client, not to the programmer.
"""

from __future__ import annotations

from typing import ClassVar

from protocol.encoding import b64encode


class RelayError(Exception):
    """Base of every refusal; ``status`` and ``code`` are stable."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "The request was not understood."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.headers: dict[str, str] = {}

    @property
    def detail(self) -> str:
        return str(self.args[0])


class MalformedBody(RelayError):
    code = "malformed_json"
    title = "The request body is not valid JSON."


class InvalidRequest(RelayError):
    """A field has the wrong type, size or format; ``code`` comes from the protocol error."""

    status = 422
    code = "bad_field"
    title = "A field of the request is invalid."

    def __init__(self, detail: str, code: str = "bad_field") -> None:
        super().__init__(detail)
        self.instance_code = code


class BadHeader(RelayError):
    code = "bad_header"
    title = "A request header is malformed."


class BodyTooLarge(RelayError):
    status = 413
    code = "body_too_large"
    title = "The request body is larger than this relay accepts."


class EnvelopeTooLarge(RelayError):
    status = 413
    code = "envelope_too_large"
    title = "A message is larger than this relay accepts."


class QuotaExceeded(RelayError):
    status = 413
    code = "quota_exceeded"
    title = "The recipient organisation's mailbox on this relay is full."


class AuthRequired(RelayError):
    status = 401
    code = "auth_required"
    title = "This needs a session: log in first."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.headers["WWW-Authenticate"] = 'Bearer realm="kok"'


class SessionInvalid(AuthRequired):
    code = "session_invalid"
    title = "The session has ended or never existed: log in again."


class ChallengeInvalid(RelayError):
    status = 401
    code = "challenge_invalid"
    title = "The login challenge is unknown or was already used: ask for a new one."


class ChallengeExpired(ChallengeInvalid):
    code = "challenge_expired"
    title = "The login challenge has expired: ask for a new one."


class AuthSignatureInvalid(RelayError):
    status = 401
    code = "auth_bad_signature"
    title = "The login signature does not verify for this staff member and relay."


class NotEnrolled(RelayError):
    status = 403
    code = "not_enrolled"
    title = "This staff member is not (or no longer) enrolled in an admitted organisation."


class NotAdmin(RelayError):
    status = 403
    code = "not_admin"
    title = "Only an administrator of the organisation may do this."


class NotFound(RelayError):
    """The same answer for "no such thing" and "not yours", so a probe learns nothing."""

    status = 404
    code = "not_found"
    title = "There is no such thing here (or it is not yours)."


class MethodNotAllowed(RelayError):
    status = 405
    code = "method_not_allowed"
    title = "This method is not allowed here."


class StaleEpoch(RelayError):
    status = 409
    code = "stale_epoch"
    title = "The message is sealed to an old key of the recipient: sync and send again."


class RecipientUnknown(RelayError):
    status = 422
    code = "recipient_unknown"
    title = "The recipient is not an admitted organisation with a key."


class TtlOutOfRange(RelayError):
    status = 422
    code = "ttl_out_of_range"
    title = "The lifetime asked for is outside what this relay allows."


class TooManyEnvelopes(RelayError):
    status = 422
    code = "too_many_envelopes"
    title = "A send carries more envelopes than this relay allows."


class DuplicateRecipient(RelayError):
    status = 422
    code = "duplicate_recipient"
    title = "A send names the same recipient twice."


class IdempotencyConflict(RelayError):
    status = 409
    code = "idempotency_conflict"
    title = "This idempotency key was already used for a different request."


class NotReceived(NotFound):
    """A read report names a message its sender never fetched (or that expired): like
    "not found", it does not tell a foreign message from an unknown one."""

    code = "not_received"
    title = ("A message can be reported read only by a recipient who fetched it, and only "
             "until it expires.")

    def __init__(self, message_id: bytes) -> None:
        super().__init__(f"Message {b64encode(message_id)} is not one you fetched, or it has "
                         "expired; nothing was reported.")


class ReadReportsOff(RelayError):
    status = 409
    code = "read_reports_off"
    title = "Your organisation has switched read reports off: nothing was reported."


class NotRetractable(RelayError):
    status = 409
    code = "not_retractable"
    title = "The message can no longer be retracted: it was delivered or has expired."


class LogHeadMismatch(RelayError):
    status = 409
    code = "log_head_mismatch"
    title = (
        "The relay's key log does not extend the head this client saw before. "
        "The relay may be lying: stop and tell your network office."
    )


class LogRejected(RelayError):
    """A key-log record broke a rule; ``code`` is the protocol's code for that rule."""

    status = 422
    code = "log_invalid"
    title = "The key-log record breaks the log's rules."

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.instance_code = code


class RateLimited(RelayError):
    status = 429
    code = "rate_limited"
    title = "Too many requests: wait a moment and try again."

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests: try again in {retry_after} s.")
        self.headers["Retry-After"] = str(retry_after)


class TooManyConnections(RelayError):
    status = 429
    code = "too_many_connections"
    title = "Too many open event streams for this staff member."


class WebSocketRequired(RelayError):
    status = 426
    code = "websocket_required"
    title = "This address speaks WebSocket only: connect with an Upgrade: websocket request."

    def __init__(self) -> None:
        super().__init__()
        self.headers["Upgrade"] = "websocket"


def code_of(error: RelayError) -> str:
    """The stable code of a refusal (per instance where the class carries several)."""
    return getattr(error, "instance_code", error.code)


def all_codes() -> dict[str, int]:
    """Every fixed code the relay can answer, with its status (used by the OpenAPI test)."""
    out: dict[str, int] = {}
    stack: list[type[RelayError]] = [RelayError]
    while stack:
        cls = stack.pop()
        out[cls.code] = cls.status
        stack.extend(cls.__subclasses__())
    return out


# --- file drops ---------------------------------------------------------------------------


class DropTooLarge(RelayError):
    status = 413
    code = "drop_too_large"
    title = "The file is larger than this relay accepts."


class DropQuotaExceeded(RelayError):
    status = 413
    code = "drop_quota_exceeded"
    title = "The recipient organisation's file storage on this relay is full."


class TooManyUploads(RelayError):
    status = 429
    code = "too_many_uploads"
    title = "Your organisation has too many unfinished uploads: finish or wait for them."


class StorageFull(RelayError):
    status = 507
    code = "storage_full"
    title = "The relay's disk has no room for this file now."


class UploadTokenRequired(RelayError):
    status = 401
    code = "upload_token_required"
    title = "This needs the drop's upload token (Kok-Upload-Token header)."


class OffsetMismatch(RelayError):
    """The upload does not continue where the relay's bytes end (``Upload-Offset`` says where)."""

    status = 409
    code = "offset_mismatch"
    title = "The upload does not continue where the relay's copy ends."

    def __init__(self, offset: int) -> None:
        super().__init__(f"The relay holds {offset} bytes of this file; continue from there.")
        self.headers["Upload-Offset"] = str(offset)


class DropSizeExceeded(RelayError):
    status = 413
    code = "drop_size_exceeded"
    title = "The upload goes past the size declared for the file."


class DropIncomplete(RelayError):
    status = 409
    code = "drop_incomplete"
    title = "The file is not complete on the relay yet."


class DropComplete(RelayError):
    status = 409
    code = "drop_complete"
    title = "The file is already complete; it takes no more bytes."


class UploadBusy(RelayError):
    status = 409
    code = "upload_busy"
    title = "Another request is uploading to this file right now."


class UnsupportedMediaType(RelayError):
    status = 415
    code = "unsupported_media_type"
    title = "The body must be sent as application/offset+octet-stream."


class BadRange(RelayError):
    """A Range header this relay does not serve; ``Content-Range`` gives the size."""

    status = 416
    code = "bad_range"
    title = "The requested byte range is malformed or outside the file."

    def __init__(self, detail: str, size: int) -> None:
        super().__init__(detail)
        self.headers["Content-Range"] = f"bytes */{size}"


class UploadInterrupted(RelayError):
    """The uploader's connection broke mid-body; what arrived is kept for resuming."""

    status = 400
    code = "upload_interrupted"
    title = "The upload was interrupted; ask for the offset and continue from there."


# --- device-linking mailboxes (SPEC.md section 6.8) -------------------------------------------


class LinkSideDone(RelayError):
    """A side already posted every message a link allows it."""

    status = 409
    code = "link_side_done"
    title = "This device-linking mailbox takes no more messages from this side."


class TooManyLinks(RelayError):
    status = 429
    code = "too_many_links"
    title = "You have too many device links open: finish one or wait a few minutes."
