-- kok relay schema, version 2: file drops (SPEC section 13, docs/architecture.md 3.3).
--
-- A drop is the ciphertext of one file; its bytes live in the blob directory
-- (<hex id>.part while uploading, <hex id>.blob once complete), these rows only route and
-- expire it. What is NOT here, on purpose: who uploaded a drop (no sender org, no staff,
-- no session: only the hash of the upload token the uploader holds), no file name, no
-- plaintext size (the client signs that inside the message), no IP address.

-- One row per drop, open or complete.
CREATE TABLE drops (
    id           BLOB    PRIMARY KEY,           -- 16 random bytes, shown to clients as b64
    size         INTEGER NOT NULL,              -- declared ciphertext length in bytes (reserved against the quota)
    token_hash   BLOB    NOT NULL,              -- BLAKE2b-256 of the 32-byte upload token
    expires      INTEGER NOT NULL,              -- seconds UTC of deletion at the latest (the TTL)
    idle_expires INTEGER,                       -- while uploading: deletion if no bytes arrive until then; NULL once complete
    complete     INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)), -- 1 once every byte is there: only then served
    recipients   INTEGER NOT NULL DEFAULT 0,    -- n: recipient staff enrolled at completion (minus those removed since)
    acknowledged INTEGER NOT NULL DEFAULT 0     -- k: how many of them have acknowledged
) WITHOUT ROWID;
CREATE INDEX drops_by_expiry ON drops (expires);

-- The organisations whose current staff may download a drop.
CREATE TABLE drop_orgs (
    drop_id BLOB NOT NULL REFERENCES drops (id) ON DELETE CASCADE, -- the drop
    org_id  TEXT NOT NULL,                                         -- a recipient organisation
    PRIMARY KEY (drop_id, org_id)
) WITHOUT ROWID;
CREATE INDEX drop_orgs_by_org ON drop_orgs (org_id);

-- Who still has to acknowledge a complete drop; a row is deleted when its staff member acks.
CREATE TABLE drop_deliveries (
    drop_id  BLOB NOT NULL REFERENCES drops (id) ON DELETE CASCADE, -- the drop
    staff_id TEXT NOT NULL,  -- a recipient staff member who has not acknowledged yet
    PRIMARY KEY (drop_id, staff_id)
) WITHOUT ROWID;
CREATE INDEX drop_deliveries_by_staff ON drop_deliveries (staff_id);
