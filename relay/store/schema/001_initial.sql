-- kok relay schema, version 1: key log, logins, grants, mailboxes.
--
-- What is NOT here, on purpose (SPEC section 18, docs/privacy.md): no sender of any message, no IP
-- address, no plaintext, no session token, status token or idempotency key in the clear
-- (only their BLAKE2b-256 hashes). Every row that is not part of the public key log has an
-- expiry and is deleted by the expiry task; PRAGMA secure_delete overwrites its bytes.

-- The schema version this database is at; exactly one row, upgraded by NNN_*.sql files.
CREATE TABLE schema_version (
    version INTEGER NOT NULL  -- number of the last schema file applied
);

-- The append-only key log (public: every client mirrors it).
CREATE TABLE log_entries (
    idx    INTEGER PRIMARY KEY,  -- 0-based position in the log
    record BLOB    NOT NULL,     -- exact canonical bytes of the signed record
    hash   BLOB    NOT NULL      -- chain hash h_{idx+1} after this record (32 bytes)
);

-- Login challenges: single use, 60 seconds.
CREATE TABLE challenges (
    nonce_hash BLOB    PRIMARY KEY,  -- BLAKE2b-256 of the 32-byte nonce handed out
    staff_id   TEXT    NOT NULL,     -- who asked for it (the answer must be theirs)
    expires    INTEGER NOT NULL      -- seconds UTC after which it is refused and deleted
) WITHOUT ROWID;

-- Sessions; the token itself is never stored.
CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,  -- BLAKE2b-256 of the 32-byte session token
    staff_id   TEXT    NOT NULL,     -- whose session it is
    expires    INTEGER NOT NULL      -- seconds UTC when the session ends
) WITHOUT ROWID;
CREATE INDEX sessions_by_staff ON sessions (staff_id);

-- Epoch grants: an epoch secret sealed to one staff member's box key (opaque to the relay).
CREATE TABLE grants (
    org_id   TEXT    NOT NULL,  -- organisation whose epoch this is
    epoch    INTEGER NOT NULL,  -- epoch number
    staff_id TEXT    NOT NULL,  -- the staff member it is sealed to
    sealed   BLOB    NOT NULL,  -- the sealed grant bytes
    expires  INTEGER,           -- NULL while the epoch is current; set when a newer epoch exists
    PRIMARY KEY (org_id, epoch, staff_id)
) WITHOUT ROWID;
CREATE INDEX grants_by_staff ON grants (staff_id);

-- Envelopes waiting in an organisation's mailbox. No sender column, by design.
CREATE TABLE messages (
    cursor       INTEGER PRIMARY KEY AUTOINCREMENT, -- delivery order; never reused, so cursors stay valid
    id           BLOB    NOT NULL UNIQUE,           -- 16-byte message id shown to clients
    to_org       TEXT    NOT NULL,                  -- recipient organisation
    epoch        INTEGER NOT NULL,                  -- recipient epoch the envelope is sealed to
    sealed       BLOB    NOT NULL,                  -- the sealed, padded envelope (ciphertext)
    size         INTEGER NOT NULL,                  -- length of sealed, for the storage quota
    received     INTEGER NOT NULL,                  -- seconds UTC of arrival
    expires      INTEGER NOT NULL,                  -- seconds UTC of deletion at the latest
    status_hash  BLOB    NOT NULL UNIQUE,           -- BLAKE2b-256 of the sender's status token
    recipients   INTEGER NOT NULL,                  -- n: staff of to_org enrolled at arrival (minus removed)
    acknowledged INTEGER NOT NULL DEFAULT 0         -- k: how many of them have acknowledged
);
CREATE INDEX messages_by_org ON messages (to_org, cursor);
CREATE INDEX messages_by_expiry ON messages (expires);

-- Who still has to acknowledge a message; a row is deleted when its staff member acks.
CREATE TABLE deliveries (
    message  INTEGER NOT NULL REFERENCES messages (cursor) ON DELETE CASCADE, -- the message
    staff_id TEXT    NOT NULL,  -- a recipient staff member who has not acknowledged yet
    PRIMARY KEY (message, staff_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_by_staff ON deliveries (staff_id);

-- What a status token may still learn after its message was deleted.
CREATE TABLE status_tombstones (
    status_hash  BLOB    PRIMARY KEY,  -- BLAKE2b-256 of the status token
    state        TEXT    NOT NULL CHECK (state IN ('delivered', 'retracted', 'expired')), -- final state
    acknowledged INTEGER NOT NULL,     -- k at deletion
    recipients   INTEGER NOT NULL,     -- n at deletion
    expires      INTEGER NOT NULL      -- original expiry plus the status grace period
) WITHOUT ROWID;

-- Idempotency of sends: a retried send gets the same answer and stores nothing new.
CREATE TABLE idempotency (
    key_hash     BLOB    PRIMARY KEY,  -- BLAKE2b-256 of the client's 16-byte idempotency key
    request_hash BLOB    NOT NULL,     -- BLAKE2b-256 over the send's envelopes and ttl
    received     INTEGER NOT NULL,     -- seconds UTC of the first send
    expires      INTEGER NOT NULL      -- the messages' expiry; the row goes with them
) WITHOUT ROWID;

-- Bytes and envelopes held per recipient organisation, kept right by the triggers below.
CREATE TABLE mailbox_usage (
    org_id   TEXT    PRIMARY KEY,  -- recipient organisation
    bytes    INTEGER NOT NULL,     -- sum of messages.size for that organisation
    messages INTEGER NOT NULL      -- number of messages for that organisation
) WITHOUT ROWID;

CREATE TRIGGER usage_after_insert AFTER INSERT ON messages BEGIN
    INSERT INTO mailbox_usage (org_id, bytes, messages) VALUES (NEW.to_org, NEW.size, 1)
    ON CONFLICT (org_id) DO UPDATE SET bytes = bytes + NEW.size, messages = messages + 1;
END;

CREATE TRIGGER usage_after_delete AFTER DELETE ON messages BEGIN
    UPDATE mailbox_usage SET bytes = bytes - OLD.size, messages = messages - 1
    WHERE org_id = OLD.to_org;
END;
