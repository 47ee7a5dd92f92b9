-- kok client mailbox, schema version 2: a replay is a message with the same sender and id
-- (SPEC.md section 9.3), no longer any message with the same id, so another org that learns
-- an id cannot get the genuine message refused by sending its own under that id first.
-- SQLite cannot drop a primary key, so the table is rebuilt, keeping every row and its order.

CREATE TABLE messages_v2 (
    id          TEXT NOT NULL,         -- payload id (hex), which two senders may share
    replay_key  BLOB NOT NULL UNIQUE,  -- keyed BLAKE2b-256 of (from_staff, id) under a key
                                       -- derived from the storage key: duplicates are dropped
                                       -- by it, and the sender is not stored in clear
    relay_id    TEXT NOT NULL,         -- the relay's id of the envelope it came in
    received    INTEGER NOT NULL,      -- local time the envelope was opened
    read_at     INTEGER,               -- local time it was first shown in full, NULL if unread
    box         BLOB NOT NULL          -- sealed: the whole verified payload and envelope facts
);

-- rows from version 1 have no sender outside their box: they keep a key made of their id
-- alone, which no version-2 key (32 bytes) can equal
INSERT INTO messages_v2 (id, replay_key, relay_id, received, read_at, box)
    SELECT id, CAST('v1:' || id AS BLOB), relay_id, received, read_at, box
    FROM messages ORDER BY rowid;

DROP TABLE messages;

ALTER TABLE messages_v2 RENAME TO messages;

CREATE INDEX messages_id ON messages (id);

CREATE INDEX messages_relay_id ON messages (relay_id);
