-- kok client mailbox, schema version 3: the offline outbox.
-- A message sealed while the relay could not be reached waits here, encrypted like the
-- rest, and goes with the next sync (same idempotency key: never stored twice).

CREATE TABLE outbox (
    id       TEXT PRIMARY KEY,  -- payload id (hex) of the queued message
    queued   INTEGER NOT NULL,  -- local time it was queued
    expires  INTEGER NOT NULL,  -- the message's signed expiry: after it, it is not sent
    box      BLOB NOT NULL      -- sealed: payload, envelopes, idempotency key, TTL
);
