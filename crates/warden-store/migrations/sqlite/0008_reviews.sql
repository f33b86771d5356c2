-- Entitlement review campaigns (issue #24). A campaign is a snapshot of who held what in one
-- tenant when it was created; each item is kept or revoked by a reviewer. A revoke is recorded
-- first (decision 'revoke', applied_at NULL) and applied through the normal revoke path after;
-- the sweep completes any revoke a crash left unapplied, and revokes the undecided items of an
-- overdue campaign that asks for it.
CREATE TABLE review_campaigns (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    auto_revoke_overdue BIGINT NOT NULL,
    unused_days BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX review_campaigns_tenant ON review_campaigns (tenant, created_at);
CREATE INDEX review_campaigns_due ON review_campaigns (auto_revoke_overdue, due_at);
CREATE TABLE review_items (
    campaign_id TEXT NOT NULL REFERENCES review_campaigns (id),
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    role_type TEXT,
    role_id TEXT,
    client_id TEXT,
    detail TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    grant_reason TEXT NOT NULL,
    expires_at BIGINT,
    reviewer TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    note TEXT,
    applied_at BIGINT,
    PRIMARY KEY (campaign_id, item_id)
);
CREATE INDEX review_items_pending ON review_items (decision, applied_at);
CREATE INDEX review_items_reviewer ON review_items (reviewer, decision);
-- When a role (or any parent a policy names) last helped allow a decision for a principal, and
-- which decision: the usage evidence of a review item. Fed in batches from the decision path.
CREATE TABLE entitlement_usage (
    principal_type TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    last_allowed_at BIGINT NOT NULL,
    decision_id TEXT NOT NULL,
    PRIMARY KEY (principal_type, principal_id, entity_type, entity_id)
);
-- Console sessions: the SHA-256 digest of the session secret (the secret is only in the
-- browser's HttpOnly cookie), the admin credential it was opened with (its id and the digest
-- it had), and its expiry. A session is only as good as its credential: revoking, expiring or
-- rotating the credential ends its sessions.
CREATE TABLE console_sessions (
    digest TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL,
    credential_digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
