-- Service accounts, their credentials and Warden's signing keys (issue #10). Secrets are never
-- stored: a client secret is kept as its SHA-256 digest, a signing key's private half sealed
-- (AES-256-GCM) with the key-encryption key from the environment or a file.
CREATE TABLE service_accounts (
    client_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    purpose TEXT NOT NULL,
    scopes TEXT NOT NULL,
    token_ttl_seconds BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX service_accounts_tenant ON service_accounts (tenant);
CREATE TABLE service_account_credentials (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES service_accounts (client_id),
    kind TEXT NOT NULL,
    secret_digest TEXT,
    public_jwk TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE INDEX service_account_credentials_client ON service_account_credentials (client_id);
-- Client assertions already used (RFC 7523 replay protection), kept until they expire.
CREATE TABLE client_assertion_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    publish_until BIGINT
);
-- When each scope of an account last helped allow a decision (fed in batches from the decision
-- path; the inventory report's "unused scopes" finding reads it).
CREATE TABLE service_account_scope_usage (
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, scope)
);
