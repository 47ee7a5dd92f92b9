"""Close codes of the ``/v1/events`` WebSocket (SPEC section 19), for the relay and clients.

4000-4999 is the range RFC 6455 leaves to applications; the codes mirror the HTTP status a
request would get at that moment.
"""

from __future__ import annotations

CLOSE_SESSION_ENDED = 4401
"""The session ended (expiry, logout, staff removal, org revocation): log in again."""
CLOSE_TOO_SLOW = 4408
"""The client did not take its pushes fast enough: reconnect with the last cursor."""
