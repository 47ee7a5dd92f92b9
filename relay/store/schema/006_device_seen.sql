-- kok relay schema, version 6: when each device last logged in, to the day.
--
-- A device that has not logged in for longer than the longest a message may be kept
-- (limits.max_ttl) no longer has to fetch new envelopes and drops before they are deleted:
-- an abandoned laptop would otherwise keep every message on the relay until its TTL.
-- Only the day is kept (not the time), and a row goes max_ttl after that day.

CREATE TABLE device_seen (
    -- the row with staff_id = '' and device = '' holds the day the relay began to record
    -- logins: a device with no row of its own counts as seen that day
    staff_id TEXT    NOT NULL,  -- a staff member
    device   TEXT    NOT NULL,  -- one of their devices (fingerprint of its signing key)
    day      INTEGER NOT NULL,  -- start (UTC) of the last day the device logged in
    PRIMARY KEY (staff_id, device)
) WITHOUT ROWID;
