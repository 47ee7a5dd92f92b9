-- kok client mailbox, schema version 6: local retention (SPEC.md section 6.8).
-- A received message is deleted from this device a number of days (the org's setting) after
-- it was first opened here, or after a longer bound if it was never opened, unless the
-- person marked it keep. What stays is a tombstone without content, for replay checks only.

ALTER TABLE messages ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;  -- 1: the person marked it
                                                                 -- keep: never purged

CREATE TABLE purged (
    replay_key  BLOB PRIMARY KEY,  -- the deleted message's keyed (sender, id) hash: a relay
                                   -- that sends it again gets it refused as a replay
    relay_id    TEXT NOT NULL,     -- the relay's id of its envelope (a re-delivery is acked)
    until       INTEGER NOT NULL   -- the message's signed expiry plus the clock margin: after
                                   -- it any copy is refused as expired, the tombstone goes
);
CREATE INDEX purged_relay_id ON purged (relay_id);
