-- kok client mailbox, schema version 1.
-- Everything a person wrote or received is kept only inside `box` columns:
-- XSalsa20-Poly1305 (SecretBox) under a key derived from the keystore's `storage` key.

CREATE TABLE log_entries (
    idx     INTEGER PRIMARY KEY,  -- position in the relay's key log, from 0
    record  BLOB NOT NULL,        -- the exact signed record bytes (public key material)
    hash    BLOB NOT NULL         -- chain hash after this entry (re-computed on load)
);

CREATE TABLE log_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),  -- a single row: the last verified head
    size       INTEGER NOT NULL,                    -- entries covered by the head
    hash       BLOB NOT NULL,                       -- chain hash at that size
    time       INTEGER NOT NULL,                    -- relay time the head was signed
    signature  BLOB NOT NULL                        -- the relay log key's signature
);

CREATE TABLE client_state (
    key    TEXT PRIMARY KEY,  -- e.g. 'cursor': the relay mailbox position already fetched
    value  TEXT NOT NULL
);

CREATE TABLE messages (
    id        TEXT PRIMARY KEY,  -- payload id (hex): duplicates are dropped by it
    relay_id  TEXT NOT NULL,     -- the relay's id of the envelope it came in
    received  INTEGER NOT NULL,  -- local time the envelope was opened
    read_at   INTEGER,           -- local time it was first shown in full, NULL if unread
    box       BLOB NOT NULL      -- sealed: the whole verified payload and envelope facts
);
CREATE INDEX messages_relay_id ON messages (relay_id);

CREATE TABLE sent (
    id    TEXT PRIMARY KEY,  -- payload id (hex) of a message we sent
    sent  INTEGER NOT NULL,  -- when we sent it
    box   BLOB NOT NULL      -- sealed: recipients, subject, relay ids and status tokens
);

CREATE TABLE quarantine (
    relay_id  TEXT PRIMARY KEY,  -- the relay's id of an envelope that failed a check
    received  INTEGER NOT NULL,  -- local time of the failure
    code      TEXT NOT NULL,     -- the stable error code of the check that failed
    box       BLOB NOT NULL      -- sealed: to_org, epoch, sealed bytes and the error detail
);
