-- kok relay schema, version 5: device-linking mailboxes (protocol/SPEC.md section 6.9).
--
-- While a person links a new device with a one-time code, the two devices exchange four
-- short messages through a mailbox found by the code's nameplate. The relay cannot read
-- them (two are SPAKE2 messages, two are encrypted under the key SPAKE2 gave both sides)
-- and deletes the mailbox when the link completes, fails, or after a few minutes.

CREATE TABLE link_mailboxes (
    nameplate TEXT    NOT NULL PRIMARY KEY,  -- the first group of the code, chosen by the relay
    staff_id  TEXT    NOT NULL,  -- the person whose existing device opened it
    device    TEXT    NOT NULL,  -- that device (only it may read what the new device posts)
    expires   INTEGER NOT NULL   -- deleted at this time whatever happened
) WITHOUT ROWID;
CREATE INDEX link_mailboxes_by_staff ON link_mailboxes (staff_id);

CREATE TABLE link_messages (
    nameplate TEXT    NOT NULL REFERENCES link_mailboxes (nameplate) ON DELETE CASCADE, -- the mailbox
    side      TEXT    NOT NULL,  -- 'a': the existing device, 'b': the new device
    idx       INTEGER NOT NULL,  -- 0, 1, ...: the order in which that side posted
    body      BLOB    NOT NULL,  -- opaque bytes (a SPAKE2 message or an encrypted message)
    PRIMARY KEY (nameplate, side, idx)
) WITHOUT ROWID;
