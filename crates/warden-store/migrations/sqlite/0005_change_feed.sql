-- The change feed (issue #20): every write records which keys it changed, at the store version
-- it committed at, so replicas apply changes row by row instead of re-reading the whole store.
-- `kind` is 'entity', 'grant' (the principal's grants) or 'status' (the principal's status).
CREATE TABLE changes (
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    tenant TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX changes_by_version ON changes (version);
-- Changes at or below the floor were pruned: a replica that saw less must read everything.
CREATE TABLE change_floor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO change_floor (id, version) SELECT 1, version FROM store_version;
CREATE INDEX role_assignments_by_expiry ON role_assignments (expires_at);
-- An entity an import wrote as Cedar's own JSON of the entity after the schema validated it:
-- the pack data fingerprint it was validated against. A replica with the same fingerprint
-- takes the row as it is; any other replica (and every row without one) validates it again.
ALTER TABLE entities ADD COLUMN canonical_for TEXT;
