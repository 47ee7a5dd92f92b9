-- kok relay PostgreSQL schema, version 3: read reports (protocol/SPEC.md section 21).
--
-- As relay/store/schema/004_receipts.sql for SQLite: who fetched a message, and whether they
-- reported it read, kept apart from the envelope until the message's expiry; then the count
-- of readers moves onto the status tombstone and the rows naming people go.

-- One row per recipient who fetched a message from at least one device.
CREATE TABLE receipts (
    message_id  BYTEA   NOT NULL,  -- the message's 16-byte id (outlives its envelope)
    staff_id    TEXT    NOT NULL,  -- a recipient who fetched it
    status_hash BYTEA   NOT NULL,  -- the message's status hash, so a status query counts readers
    has_read    BOOLEAN NOT NULL DEFAULT FALSE, -- true once they reported it read
    expires     BIGINT  NOT NULL,  -- the message's expiry: the row goes then
    PRIMARY KEY (message_id, staff_id)
);
CREATE INDEX receipts_by_status ON receipts (status_hash);
CREATE INDEX receipts_by_expiry ON receipts (expires);
ALTER TABLE receipts SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 50, autovacuum_vacuum_cost_delay = 0);

-- Readers counted when the receipts of the message went (at its expiry or revocation).
ALTER TABLE status_tombstones ADD COLUMN read_by INTEGER NOT NULL DEFAULT 0;
