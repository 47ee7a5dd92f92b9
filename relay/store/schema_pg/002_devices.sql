-- kok relay PostgreSQL schema, version 2: devices (protocol/SPEC.md section 6.6).
--
-- As relay/store/schema/003_devices.sql for SQLite: sessions, grants and deliveries belong
-- to one device of a staff member (named by its device id, the fingerprint of its signing
-- key). Rows written before this version name no device (''), and count for every device
-- of their staff member.

-- The device that opened the session ('' for a session opened before version 2).
ALTER TABLE sessions ADD COLUMN device TEXT NOT NULL DEFAULT '';

-- Grants, one per device: the primary key gains the device.
ALTER TABLE grants ADD COLUMN device TEXT NOT NULL DEFAULT ''; -- the device whose box key it is sealed to
ALTER TABLE grants DROP CONSTRAINT grants_pkey;
ALTER TABLE grants ADD PRIMARY KEY (org_id, epoch, staff_id, device);
DROP INDEX grants_by_staff;
CREATE INDEX grants_by_staff ON grants (staff_id, device);

-- Which devices still have to fetch a message (see the SQLite schema for the rule).
CREATE TABLE device_deliveries (
    message  BIGINT NOT NULL REFERENCES messages (cursor) ON DELETE CASCADE, -- the message
    staff_id TEXT   NOT NULL,  -- a recipient staff member
    device   TEXT   NOT NULL,  -- one of their devices that has not acknowledged yet
    PRIMARY KEY (message, staff_id, device)
);
CREATE INDEX device_deliveries_by_device ON device_deliveries (staff_id, device);

-- Which devices still have to fetch a complete drop.
CREATE TABLE drop_device_deliveries (
    drop_id  BYTEA NOT NULL REFERENCES drops (id) ON DELETE CASCADE, -- the drop
    staff_id TEXT  NOT NULL,  -- a recipient staff member
    device   TEXT  NOT NULL,  -- one of their devices that has not acknowledged yet
    PRIMARY KEY (drop_id, staff_id, device)
);
CREATE INDEX drop_device_deliveries_by_device ON drop_device_deliveries (staff_id, device);
