-- A principal's lifecycle status lives apart from its entity data (issue #18): setting a status
-- never writes an entity, so a status change can neither freeze a grant-derived parent into a
-- stored entity nor make the store "know" a principal it only has a status for.
CREATE TABLE principal_status (
    tenant TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, principal_type, principal_id)
);
INSERT INTO principal_status (tenant, principal_type, principal_id, status, updated_at)
    SELECT tenant, entity_type, entity_id, status, updated_at FROM entities WHERE status <> 'active';
UPDATE entities SET status = 'active' WHERE status <> 'active';
