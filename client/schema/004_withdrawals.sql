-- kok client mailbox, schema version 4: messages withdrawn by their sender (SPEC.md 9.4).
-- A retraction notice names a message by (sender, id). The message, if held, is marked
-- withdrawn inside its box and loses its body and attachment keys. The pair is also kept
-- here, so the message arriving after its notice is stored withdrawn at once.

CREATE TABLE withdrawals (
    replay_key  BLOB PRIMARY KEY,  -- keyed BLAKE2b-256 of (from_staff, id), as messages.replay_key
    expires     INTEGER NOT NULL,  -- the notice's expires plus MAX_SKEW: no later message
                                   -- with this key can be accepted, so the row goes then
    box         BLOB NOT NULL      -- sealed: when the sender withdrew it
);
