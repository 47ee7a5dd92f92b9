-- kok client mailbox, schema version 5: read reports owed to the relay (protocol/SPEC.md
-- section 21). Opening a message on this device owes one report, sent with the next sync
-- (never at the moment of opening). Messages read before this version owe none.
-- read_report: NULL while not opened here, 1 while a report is owed, 0 once sent (or dropped).

ALTER TABLE messages ADD COLUMN read_report INTEGER CHECK (read_report IN (0, 1))
