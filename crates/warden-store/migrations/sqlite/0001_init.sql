CREATE TABLE entities (
    tenant TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    attrs TEXT NOT NULL,
    parents TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, entity_type, entity_id)
);
CREATE TABLE role_assignments (
    tenant TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    role_type TEXT NOT NULL,
    role_id TEXT NOT NULL,
    expires_at BIGINT,
    reason TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, principal_type, principal_id, role_type, role_id)
);
CREATE TABLE admin_credentials (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    tenant_scope TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE admin_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    tenant TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE store_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO store_version (id, version) VALUES (1, 0);
