-- kok relay PostgreSQL schema, version 5: when each device last logged in, to the day.
-- As relay/store/schema/006_device_seen.sql for SQLite: a device silent for longer than
-- limits.max_ttl no longer holds new envelopes and drops on the relay.

CREATE TABLE device_seen (
    -- the row with staff_id = '' and device = '' holds the day the relay began to record
    -- logins: a device with no row of its own counts as seen that day
    staff_id TEXT   NOT NULL,  -- a staff member
    device   TEXT   NOT NULL,  -- one of their devices (fingerprint of its signing key)
    day      BIGINT NOT NULL,  -- start (UTC) of the last day the device logged in
    PRIMARY KEY (staff_id, device)
);
