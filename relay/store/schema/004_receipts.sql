-- kok relay schema, version 4: read reports (protocol/SPEC.md section 21).
--
-- The sender's status counts, per recipient organisation, the people who fetched a message
-- (messages.acknowledged) and the people who opened it. A person can open a message after
-- its envelope was deleted (every device fetched it), so whom it reached is kept apart from
-- the envelope, until the message's expiry: then the count of readers moves onto the status
-- tombstone and the rows naming people go.

-- One row per recipient who fetched a message from at least one device (written by that
-- first acknowledgement); a read report may name only a message with a row of its sender.
CREATE TABLE receipts (
    message_id  BLOB    NOT NULL,  -- the message's 16-byte id (outlives its envelope)
    staff_id    TEXT    NOT NULL,  -- a recipient who fetched it
    status_hash BLOB    NOT NULL,  -- the message's status hash, so a status query counts readers
    has_read    INTEGER NOT NULL DEFAULT 0 CHECK (has_read IN (0, 1)), -- 1 once they reported it read
    expires     INTEGER NOT NULL,  -- the message's expiry: the row goes then
    PRIMARY KEY (message_id, staff_id)
) WITHOUT ROWID;
CREATE INDEX receipts_by_status ON receipts (status_hash);
CREATE INDEX receipts_by_expiry ON receipts (expires);

-- Readers counted when the receipts of the message went (at its expiry or revocation).
ALTER TABLE status_tombstones ADD COLUMN read_by INTEGER NOT NULL DEFAULT 0;
