-- Admin credentials as a lifecycle (issue #22): an optional expiry, revocation (the row stays,
-- for the audit trail and the list), rotation (a new digest under the same id), who made it and
-- a label. A credential authenticates only while neither revoked nor expired.
ALTER TABLE admin_credentials ADD COLUMN expires_at BIGINT;
ALTER TABLE admin_credentials ADD COLUMN revoked_at BIGINT;
ALTER TABLE admin_credentials ADD COLUMN rotated_at BIGINT;
ALTER TABLE admin_credentials ADD COLUMN created_by TEXT NOT NULL DEFAULT 'warden admin init';
ALTER TABLE admin_credentials ADD COLUMN label TEXT NOT NULL DEFAULT '';
