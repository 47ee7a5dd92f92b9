-- kok relay schema for PostgreSQL, version 1: the same rows as the SQLite schema
-- (relay/store/schema/001_initial.sql and 002_drops.sql), plus what several relay
-- processes sharing one database need to agree on.
--
-- What is NOT here, on purpose: no sender of any message, no IP address, no plaintext, no
-- session token, status token, upload token or idempotency key in the clear (only their
-- BLAKE2b-256 hashes). Every row that is not part of the public key log has an expiry and
-- is deleted by the expiry task. PostgreSQL keeps a deleted row's bytes in its page until
-- VACUUM prunes it: the autovacuum settings at the end keep that short (see OPERATOR.md,
-- "Scaling out").

-- The schema version this database is at; exactly one row, upgraded by NNN_*.sql files.
CREATE TABLE schema_version (
    version INTEGER NOT NULL  -- number of the last schema file applied
);

-- The append-only key log (public: every client mirrors it).
CREATE TABLE log_entries (
    idx    BIGINT PRIMARY KEY,  -- 0-based position in the log (a second writer of one index fails)
    record BYTEA  NOT NULL,     -- exact canonical bytes of the signed record
    hash   BYTEA  NOT NULL      -- chain hash h_{idx+1} after this record (32 bytes)
);

-- Staff removed and organisations revoked (and not re-admitted): a send or drop written
-- after such a record committed, by any process, reads these under the directory lock.
CREATE TABLE removed_staff (
    staff_id TEXT PRIMARY KEY  -- a removed staff member
);
CREATE TABLE revoked_orgs (
    org_id TEXT PRIMARY KEY  -- a revoked organisation
);

-- Login challenges: single use, 60 seconds.
CREATE TABLE challenges (
    nonce_hash BYTEA  PRIMARY KEY,  -- BLAKE2b-256 of the 32-byte nonce handed out
    staff_id   TEXT   NOT NULL,     -- who asked for it (the answer must be theirs)
    expires    BIGINT NOT NULL      -- seconds UTC after which it is refused and deleted
);
CREATE INDEX challenges_by_staff ON challenges (staff_id);

-- Sessions; the token itself is never stored.
CREATE TABLE sessions (
    token_hash BYTEA  PRIMARY KEY,  -- BLAKE2b-256 of the 32-byte session token
    staff_id   TEXT   NOT NULL,     -- whose session it is
    expires    BIGINT NOT NULL      -- seconds UTC when the session ends
);
CREATE INDEX sessions_by_staff ON sessions (staff_id);

-- Epoch grants: an epoch secret sealed to one staff member's box key (opaque to the relay).
CREATE TABLE grants (
    org_id   TEXT    NOT NULL,  -- organisation whose epoch this is
    epoch    BIGINT  NOT NULL,  -- epoch number
    staff_id TEXT    NOT NULL,  -- the staff member it is sealed to
    sealed   BYTEA   NOT NULL,  -- the sealed grant bytes
    expires  BIGINT,            -- NULL while the epoch is current; set when a newer epoch exists
    PRIMARY KEY (org_id, epoch, staff_id)
);
CREATE INDEX grants_by_staff ON grants (staff_id);

-- Delivery order. A cursor is taken while the recipient org's mailbox_usage row is locked
-- (see postgres.py), so within one mailbox cursors become visible in increasing order and
-- a client catching up by cursor never skips a message another process is still writing.
CREATE SEQUENCE message_cursor;

-- Envelopes waiting in an organisation's mailbox. No sender column, by design.
CREATE TABLE messages (
    cursor       BIGINT  PRIMARY KEY,       -- delivery order; never reused, so cursors stay valid
    id           BYTEA   NOT NULL UNIQUE,   -- 16-byte message id shown to clients
    to_org       TEXT    NOT NULL,          -- recipient organisation
    epoch        BIGINT  NOT NULL,          -- recipient epoch the envelope is sealed to
    sealed       BYTEA   NOT NULL,          -- the sealed, padded envelope (ciphertext)
    size         BIGINT  NOT NULL,          -- length of sealed, for the storage quota
    received     BIGINT  NOT NULL,          -- seconds UTC of arrival
    expires      BIGINT  NOT NULL,          -- seconds UTC of deletion at the latest
    status_hash  BYTEA   NOT NULL UNIQUE,   -- BLAKE2b-256 of the sender's status token
    recipients   INTEGER NOT NULL,          -- n: staff of to_org enrolled at arrival (minus removed)
    acknowledged INTEGER NOT NULL DEFAULT 0 -- k: how many of them have acknowledged
);
CREATE INDEX messages_by_org ON messages (to_org, cursor);
CREATE INDEX messages_by_expiry ON messages (expires);

-- Who still has to acknowledge a message; a row is deleted when its staff member acks.
CREATE TABLE deliveries (
    message  BIGINT NOT NULL REFERENCES messages (cursor) ON DELETE CASCADE, -- the message
    staff_id TEXT   NOT NULL,  -- a recipient staff member who has not acknowledged yet
    PRIMARY KEY (message, staff_id)
);
CREATE INDEX deliveries_by_staff ON deliveries (staff_id);

-- What a status token may still learn after its message was deleted.
CREATE TABLE status_tombstones (
    status_hash  BYTEA   PRIMARY KEY,  -- BLAKE2b-256 of the status token
    state        TEXT    NOT NULL CHECK (state IN ('delivered', 'retracted', 'expired')), -- final state
    acknowledged INTEGER NOT NULL,     -- k at deletion
    recipients   INTEGER NOT NULL,     -- n at deletion
    expires      BIGINT  NOT NULL      -- original expiry plus the status grace period
);
CREATE INDEX status_tombstones_by_expiry ON status_tombstones (expires);

-- Idempotency of sends: a retried send gets the same answer and stores nothing new; two
-- processes storing the same key at once cannot both succeed (primary key).
CREATE TABLE idempotency (
    key_hash     BYTEA  PRIMARY KEY,  -- BLAKE2b-256 of the client's 16-byte idempotency key
    request_hash BYTEA  NOT NULL,     -- BLAKE2b-256 over the send's envelopes and ttl
    received     BIGINT NOT NULL,     -- seconds UTC of the first send
    expires      BIGINT NOT NULL      -- the messages' expiry; the row goes with them
);
CREATE INDEX idempotency_by_expiry ON idempotency (expires);

-- Bytes and envelopes held per recipient organisation, kept right by the triggers below.
-- A send locks its recipients' rows (in org order) for its quota check and cursors.
CREATE TABLE mailbox_usage (
    org_id   TEXT   PRIMARY KEY,  -- recipient organisation
    bytes    BIGINT NOT NULL,     -- sum of messages.size for that organisation
    messages BIGINT NOT NULL      -- number of messages for that organisation
);

CREATE FUNCTION usage_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mailbox_usage (org_id, bytes, messages)
    SELECT to_org, sum(size), count(*) FROM added GROUP BY to_org ORDER BY to_org
    ON CONFLICT (org_id) DO UPDATE
    SET bytes = mailbox_usage.bytes + excluded.bytes,
        messages = mailbox_usage.messages + excluded.messages;
    RETURN NULL;
END $$;

CREATE FUNCTION usage_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mailbox_usage u SET bytes = u.bytes - g.bytes, messages = u.messages - g.messages
    FROM (SELECT to_org, sum(size) AS bytes, count(*) AS messages FROM gone GROUP BY to_org) g
    WHERE u.org_id = g.to_org;
    RETURN NULL;
END $$;

CREATE TRIGGER usage_after_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION usage_after_insert();
CREATE TRIGGER usage_after_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION usage_after_delete();

-- File drops: the ciphertext of one file lives in the shared blob folder; these rows only
-- route and expire it. No uploader, no file name, no plaintext size, no IP address.
CREATE TABLE drops (
    id           BYTEA   PRIMARY KEY,           -- 16 random bytes, shown to clients as b64
    size         BIGINT  NOT NULL,              -- declared ciphertext length (reserved against the quota)
    token_hash   BYTEA   NOT NULL,              -- BLAKE2b-256 of the 32-byte upload token
    expires      BIGINT  NOT NULL,              -- seconds UTC of deletion at the latest (the TTL)
    idle_expires BIGINT,                        -- while uploading: deletion if no bytes arrive until then; NULL once complete
    complete     BOOLEAN NOT NULL DEFAULT FALSE, -- true once every byte is there: only then served
    recipients   INTEGER NOT NULL DEFAULT 0,    -- n: recipient staff enrolled at completion (minus those removed since)
    acknowledged INTEGER NOT NULL DEFAULT 0     -- k: how many of them have acknowledged
);
CREATE INDEX drops_by_expiry ON drops (expires);

-- The organisations whose current staff may download a drop.
CREATE TABLE drop_orgs (
    drop_id BYTEA NOT NULL REFERENCES drops (id) ON DELETE CASCADE, -- the drop
    org_id  TEXT  NOT NULL,                                         -- a recipient organisation
    PRIMARY KEY (drop_id, org_id)
);
CREATE INDEX drop_orgs_by_org ON drop_orgs (org_id);

-- Who still has to acknowledge a complete drop; a row is deleted when its staff member acks.
CREATE TABLE drop_deliveries (
    drop_id  BYTEA NOT NULL REFERENCES drops (id) ON DELETE CASCADE, -- the drop
    staff_id TEXT  NOT NULL,  -- a recipient staff member who has not acknowledged yet
    PRIMARY KEY (drop_id, staff_id)
);
CREATE INDEX drop_deliveries_by_staff ON drop_deliveries (staff_id);

-- Deleted rows stay in their pages (and ciphertext in TOAST) until VACUUM prunes them.
-- Vacuum these tables after a handful of deletions rather than after 20 % of the table,
-- and without cost-based sleeping, so deleted ciphertext is pruned within about a minute
-- even on a busy relay (the relay also vacuums them itself after each purge that deleted
-- something).
ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 50,
    autovacuum_vacuum_cost_delay = 0, toast.autovacuum_vacuum_scale_factor = 0,
    toast.autovacuum_vacuum_threshold = 50, toast.autovacuum_vacuum_cost_delay = 0);
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE grants SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20,
    autovacuum_vacuum_cost_delay = 0, toast.autovacuum_vacuum_scale_factor = 0,
    toast.autovacuum_vacuum_threshold = 20, toast.autovacuum_vacuum_cost_delay = 0);
ALTER TABLE sessions SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 50,
    autovacuum_vacuum_cost_delay = 0);
ALTER TABLE challenges SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 50, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE idempotency SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 50, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE drops SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20,
    autovacuum_vacuum_cost_delay = 0);
