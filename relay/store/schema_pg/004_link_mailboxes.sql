-- kok relay PostgreSQL schema, version 4: device-linking mailboxes (protocol/SPEC.md
-- section 6.9). As relay/store/schema/005_link_mailboxes.sql for SQLite: four short
-- messages the relay cannot read, deleted when the link completes, fails or expires.

CREATE TABLE link_mailboxes (
    nameplate TEXT   NOT NULL PRIMARY KEY,  -- the first group of the code, chosen by the relay
    staff_id  TEXT   NOT NULL,  -- the person whose existing device opened it
    device    TEXT   NOT NULL,  -- that device (only it may read what the new device posts)
    expires   BIGINT NOT NULL   -- deleted at this time whatever happened
);
CREATE INDEX link_mailboxes_by_staff ON link_mailboxes (staff_id);

CREATE TABLE link_messages (
    nameplate TEXT    NOT NULL REFERENCES link_mailboxes (nameplate) ON DELETE CASCADE, -- the mailbox
    side      TEXT    NOT NULL,  -- 'a': the existing device, 'b': the new device
    idx       INTEGER NOT NULL,  -- 0, 1, ...: the order in which that side posted
    body      BYTEA   NOT NULL,  -- opaque bytes (a SPAKE2 message or an encrypted message)
    PRIMARY KEY (nameplate, side, idx)
);
