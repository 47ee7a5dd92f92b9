-- kok relay schema, version 3: devices (protocol/SPEC.md section 6.6).
--
-- A staff member is a set of devices, each named by its device id (the fingerprint of its
-- signing key). Sessions, grants and deliveries belong to one device, so a second device
-- of a person receives every message and epoch key, and removing one device ends exactly
-- its sessions. Rows written before this version name no device (device = ''): such a
-- session or grant counts for every device of its staff member.

-- The device that opened the session ('' for a session opened before version 3).
ALTER TABLE sessions ADD COLUMN device TEXT NOT NULL DEFAULT '';

-- Grants, now one per device: rebuilt, because the primary key gains the device.
CREATE TABLE grants_v3 (
    org_id   TEXT    NOT NULL,  -- organisation whose epoch this is
    epoch    INTEGER NOT NULL,  -- epoch number
    staff_id TEXT    NOT NULL,  -- the staff member it is sealed to
    device   TEXT    NOT NULL,  -- the device whose box key it is sealed to ('' before version 3)
    sealed   BLOB    NOT NULL,  -- the sealed grant bytes
    expires  INTEGER,           -- NULL while the epoch is current; set when a newer epoch exists
    PRIMARY KEY (org_id, epoch, staff_id, device)
) WITHOUT ROWID;
INSERT INTO grants_v3 (org_id, epoch, staff_id, device, sealed, expires)
    SELECT org_id, epoch, staff_id, '', sealed, expires FROM grants;
DROP TABLE grants;
ALTER TABLE grants_v3 RENAME TO grants;
CREATE INDEX grants_by_staff ON grants (staff_id, device);

-- Which devices still have to fetch a message. A message is deleted once every person
-- counted in messages.recipients has acknowledged it from at least one device (the rows of
-- deliveries) and every device listed here has acknowledged it; a removed device's rows go.
CREATE TABLE device_deliveries (
    message  INTEGER NOT NULL REFERENCES messages (cursor) ON DELETE CASCADE, -- the message
    staff_id TEXT    NOT NULL,  -- a recipient staff member
    device   TEXT    NOT NULL,  -- one of their devices that has not acknowledged yet
    PRIMARY KEY (message, staff_id, device)
) WITHOUT ROWID;
CREATE INDEX device_deliveries_by_device ON device_deliveries (staff_id, device);

-- Which devices still have to fetch a complete drop (as device_deliveries for messages): a
-- drop goes once every recipient person and every device listed here has acknowledged it.
CREATE TABLE drop_device_deliveries (
    drop_id  BLOB NOT NULL REFERENCES drops (id) ON DELETE CASCADE, -- the drop
    staff_id TEXT NOT NULL,  -- a recipient staff member
    device   TEXT NOT NULL,  -- one of their devices that has not acknowledged yet
    PRIMARY KEY (drop_id, staff_id, device)
) WITHOUT ROWID;
CREATE INDEX drop_device_deliveries_by_device ON drop_device_deliveries (staff_id, device);
