"""The client's one exception tree: every failure a person can hit, with a stable code.

Each ``KokError`` carries a ``code`` (stable, for scripts and tests) and a message in the
person's language (``client.i18n``) that says what happened and what to do. Protocol
rejections keep the protocol's code (``VerificationError``), relay refusals keep the
relay's code (``RelayRefused``).
"""

from __future__ import annotations

from typing import Any

from protocol.errors import ProtocolError, error_codes

from .i18n import has_key, language, t


class KokError(Exception):
    """Anything the client could not do; ``code`` is stable, the message is for people."""

    code = "kok_error"

    def __init__(self, code: str | None = None, message: str | None = None, **params: Any) -> None:
        if code is not None:
            self.code = code
        self.params = params
        super().__init__(message if message is not None else t(f"error.{self.code}", **params))

    @property
    def message(self) -> str:
        return str(self.args[0])


class ProfileError(KokError):
    """The profile or its keystore cannot be used as asked (missing, exists, wrong passphrase)."""

    code = "profile_error"


class UsageError(KokError):
    """The caller asked for something impossible (bad TTL, unknown message id, wrong role)."""

    code = "usage_error"


class AccessError(KokError):
    """The identity may not do this (not enrolled yet, removed, org unknown or revoked)."""

    code = "access_denied"


class RelayUnreachable(KokError):
    """No answer from the relay at all (down, wrong address, network)."""

    code = "relay_unreachable"

    def __init__(self, url: str) -> None:
        super().__init__(url=url)
        self.url = url


class ClockError(KokError):
    """This computer's clock is off from the relay's by more than the protocol allows."""

    code = "clock_wrong"


class RelayCertificateError(KokError):
    """The relay's TLS certificate is not trusted: not a network problem, a trust problem."""

    code = "relay_certificate"

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(url=url, detail=detail)
        self.url = url
        self.detail = detail


class RelayRefused(KokError):
    """The relay answered with a problem document; ``code`` is the relay's."""

    code = "relay_refused"
    retry_after: int | None = None
    """Seconds the relay asked us to wait (``429`` with ``Retry-After``), if it did."""

    def __init__(self, code: str, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        if has_key(f"relay_error.{code}"):
            message = t(f"relay_error.{code}")
        elif code in error_codes() and language() != "en":
            message = t(f"error.{code}")  # a protocol rule the relay applied for us
        else:
            message = t("error.relay_refused", detail=detail, code=code)
        super().__init__(code, message)


class VerificationError(KokError):
    """Data failed a protocol check (signature, key log, envelope); the protocol's code."""

    code = "verification_failed"

    @classmethod
    def from_protocol(cls, exc: ProtocolError) -> VerificationError:
        """Wrap ``exc`` keeping its code; English keeps the protocol's specific wording."""
        key = f"error.{exc.code}"
        if language() == "en" or not has_key(key):
            message = exc.message
        else:
            message = t(key)
        err = cls(exc.code, message)
        err.__cause__ = exc
        return err
