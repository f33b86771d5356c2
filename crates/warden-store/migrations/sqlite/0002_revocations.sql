-- Revocations (issue #9). `version` is the store version the write bumped to, taken under the
-- version row's lock, so readers can fetch exactly what is new since the version they saw.
CREATE TABLE revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    issuer TEXT NOT NULL,
    value TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX revocations_version ON revocations (version);
CREATE INDEX revocations_expiry ON revocations (expires_at);
