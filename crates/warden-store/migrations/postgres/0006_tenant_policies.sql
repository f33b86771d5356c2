-- Tenant-managed policies (issue #19): Cedar text a tenant's administrator wrote, validated
-- against the pack's schema before it was stored. `name` is unique within the tenant; the
-- policy's id in decisions is `tenant/<tenant>/<name>`. Writes record a change row of kind
-- 'policy' (entity_type '', entity_id = the name), so replicas apply them from the feed.
CREATE TABLE tenant_policies (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
