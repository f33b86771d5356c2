//! The command line, as clap derives it. One variant per verb; each verb's arguments are
//! documented where they are declared, which is also what `--help` prints.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Warden: one place that decides who may do what, in which tenant.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the decision service (AuthZEN, /v1/check, health, metrics) until SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Load a policy pack and report every problem (exit 0 valid, 1 invalid, 2 bad usage).
    Validate(ValidateArgs),
    /// Decide one request (or a JSON-lines file of them) and explain the decision
    /// (exit 0 allow, 1 deny, 2 bad usage or input).
    Check(CheckArgs),
    /// Run the pack's test suites (DIR/tests/*.yaml) with generated adversarial cases and
    /// coverage (exit 0 all passed, 1 a failure or coverage too low, 2 an invalid suite).
    Test(TestArgs),
    /// What a candidate policy pack would change: the decision log's decisions replayed against
    /// the pack in force and the candidate, over today's entity state (exit 0 no change beyond
    /// --expect, 1 changes beyond it, 2 bad usage or input).
    Diff(DiffArgs),
    /// Bearer tokens: verify one as the server would.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Admin credentials.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Entities in the store, through a running server.
    #[command(subcommand)]
    Entity(EntityCommand),
    /// Role grants, through a running server.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Principal status, through a running server.
    #[command(subcommand)]
    Principal(PrincipalCommand),
    /// A tenant's own policies, checked against the pack and stored, through a running server
    /// (exit 0 done, 1 refused by the server, 2 bad usage or unreachable).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The decision log: verify its hash chain and signatures, query it.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Revoke tokens at once, on every replica, through a running server
    /// (exit 0 revoked, 1 refused by the server, 2 bad usage or unreachable).
    #[command(subcommand)]
    Revoke(RevokeCommand),
    /// Revocations in force, through a running server.
    #[command(subcommand)]
    Revocations(RevocationsCommand),
    /// Service accounts: create, inspect, rotate, offboard, report, through a running server
    /// (exit 0 done, 1 refused by the server, 2 bad usage or unreachable).
    #[command(subcommand)]
    Sa(SaCommand),
    /// Warden's own token-signing keys, through a running server.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The configuration whose pack, entity data, store and decision log the candidate is
    /// compared against.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The candidate pack directory.
    #[arg(long, value_name = "DIR")]
    pub policies: PathBuf,
    /// Only decisions this recent: a span back from now (`7d`, `12h`, `30m`, `90s`) or an
    /// RFC 3339 time. Default: the whole log.
    #[arg(long, value_name = "SPAN|TIME")]
    pub since: Option<String>,
    /// A change that is expected, `DIRECTION[:POLICY][@TENANT]` with DIRECTION `allow-to-deny`
    /// or `deny-to-allow` (repeatable); any other change makes the exit code 1.
    #[arg(long, value_name = "CHANGE")]
    pub expect: Vec<String>,
    /// Examples shown per group.
    #[arg(long, default_value_t = 3)]
    pub examples: usize,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SaCommand {
    /// Create an account; prints its client id and first secret, once.
    Create(SaCreateArgs),
    /// The tenant's live accounts.
    List(SaListArgs),
    /// One account with its credentials (never a secret).
    Show(SaTargetArgs),
    /// Add, rotate or retire credentials.
    #[command(subcommand)]
    Credential(SaCredentialCommand),
    /// Replace the account's scopes (audited with before and after; removed scopes stop
    /// counting at once, in tokens already issued too).
    Scopes(SaScopesArgs),
    /// Offboard: no new token, and every outstanding token is denied at once.
    Disable(SaReasonArgs),
    /// Delete: credentials retired and tokens revoked; kept in the store for the record.
    Delete(SaReasonArgs),
    /// Transfer ownership to another principal of the tenant.
    Transfer(SaTransferArgs),
    /// The inventory: owners, credential ages, last use, expiry, and findings.
    Report(SaReportArgs),
}

#[derive(Debug, Args)]
pub struct SaCreateArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// A name, unique among the tenant's live accounts.
    #[arg(long)]
    pub name: String,
    /// The owner: `User::"acme/alice"` or a local id (`alice`).
    #[arg(long)]
    pub owner: String,
    /// Why the account exists.
    #[arg(long)]
    pub purpose: String,
    /// Space-separated scopes, e.g. "documents:read documents:write".
    #[arg(long, default_value = "")]
    pub scopes: String,
    /// When the account expires, from now (`90d`, `12h`).
    #[arg(long, value_name = "DURATION")]
    pub expires: String,
    /// Lifetime of its access tokens (default: tokens.default_ttl_seconds).
    #[arg(long, value_name = "DURATION")]
    pub token_ttl: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SaListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SaTargetArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The client id (`sa_…`).
    #[arg(value_name = "CLIENT_ID")]
    pub client_id: String,
}

#[derive(Debug, Subcommand)]
pub enum SaCredentialCommand {
    /// Add a secret (printed once) or a public key (`--public-key FILE`, one JWK) for
    /// private_key_jwt.
    Add(SaCredentialAddArgs),
    /// A new secret; the older secrets keep working for the overlap.
    Rotate(SaCredentialRotateArgs),
    /// Retire one credential at once.
    Retire(SaCredentialRetireArgs),
}

#[derive(Debug, Args)]
pub struct SaCredentialAddArgs {
    #[command(flatten)]
    pub target: SaTargetArgs,
    /// A file holding the public JWK to register (none: a new secret).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// When it expires, from now (default: service_accounts.max_credential_lifetime_days).
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SaCredentialRotateArgs {
    #[command(flatten)]
    pub target: SaTargetArgs,
    /// How long older secrets keep working (default: service_accounts.secret_overlap_seconds).
    #[arg(long, value_name = "DURATION")]
    pub overlap: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SaCredentialRetireArgs {
    #[command(flatten)]
    pub target: SaTargetArgs,
    /// The credential id (`cred_…`).
    #[arg(value_name = "CREDENTIAL_ID")]
    pub credential_id: String,
}

#[derive(Debug, Args)]
pub struct SaScopesArgs {
    #[command(flatten)]
    pub target: SaTargetArgs,
    /// The new space-separated scopes.
    #[arg(long)]
    pub scopes: String,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct SaReasonArgs {
    #[command(flatten)]
    pub target: SaTargetArgs,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct SaTransferArgs {
    #[command(flatten)]
    pub target: SaTargetArgs,
    /// The new owner: `User::"acme/bob"` or a local id.
    #[arg(long)]
    pub owner: String,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct SaReportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// One tenant (default: every tenant, which needs an admin credential for all tenants).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate now: a new key signs; the previous one stays published until its tokens expire.
    Rotate(KeysArgs),
    /// The published keys and which one signs.
    List(KeysArgs),
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum RevokeCommand {
    /// One token, by issuer and `jti`.
    Token(RevokeTokenArgs),
    /// Every token of a session, by issuer and `sid`.
    Session(RevokeSessionArgs),
    /// Every token of a subject issued before now, by issuer and `sub`.
    Subject(RevokeSubjectArgs),
    /// Every token of a client (service account) issued before now, by client id
    /// (`client_id`, else `azp`).
    Client(RevokeClientArgs),
    /// Every token verified by a key, by its `kid` or its RFC 7638 thumbprint (a compromised
    /// signing key), whether or not the token's header names a `kid`.
    Key(RevokeKeyArgs),
}

/// What every revocation carries.
#[derive(Debug, Args)]
pub struct RevocationCommon {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Why (recorded with the revocation and in the audit trail).
    #[arg(long)]
    pub reason: String,
    /// Let it lapse at this time (RFC 3339), e.g. the `exp` of the last token it covers.
    #[arg(long, value_name = "TIME", conflicts_with = "ttl")]
    pub until: Option<String>,
    /// Let it lapse after this long (`90s`, `15m`, `12h`, `7d`).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
}

#[derive(Debug, Args)]
pub struct RevokeTokenArgs {
    /// The issuer (`iss`).
    #[arg(long)]
    pub issuer: String,
    /// The token id (`jti`).
    #[arg(long)]
    pub jti: String,
    #[command(flatten)]
    pub common: RevocationCommon,
}

#[derive(Debug, Args)]
pub struct RevokeSessionArgs {
    /// The issuer (`iss`).
    #[arg(long)]
    pub issuer: String,
    /// The session id (`sid`).
    #[arg(long)]
    pub sid: String,
    #[command(flatten)]
    pub common: RevocationCommon,
}

#[derive(Debug, Args)]
pub struct RevokeSubjectArgs {
    /// The issuer (`iss`).
    #[arg(long)]
    pub issuer: String,
    /// The subject (`sub`).
    #[arg(long)]
    pub sub: String,
    #[command(flatten)]
    pub common: RevocationCommon,
}

#[derive(Debug, Args)]
pub struct RevokeClientArgs {
    /// The client id.
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub common: RevocationCommon,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, args = ["kid", "thumbprint"])]
pub struct RevokeKeyArgs {
    /// The key id (`kid`) in the issuer's key set.
    #[arg(long)]
    pub kid: Option<String>,
    /// The key's RFC 7638 JWK thumbprint (SHA-256, base64url): names a key whatever its `kid`.
    #[arg(long)]
    pub thumbprint: Option<String>,
    #[command(flatten)]
    pub common: RevocationCommon,
}

#[derive(Debug, Subcommand)]
pub enum RevocationsCommand {
    /// List revocations in force, newest first, as JSON.
    List(RevocationsListArgs),
}

#[derive(Debug, Args)]
pub struct RevocationsListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// At most this many (default 1000).
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check a log file, directory or table: every record's hash, the chain, the sequence,
    /// every signed checkpoint and the signed head; report the first break
    /// (exit 0 intact, 1 broken, 2 bad usage).
    Verify(AuditVerifyArgs),
    /// Find decisions by tenant, principal, resource, decision, reason and time
    /// (exit 0 found, 1 none, 2 bad usage).
    Query(AuditQueryArgs),
}

/// Which log: a path, or the one a configuration names.
#[derive(Debug, Args)]
pub struct AuditSource {
    /// A log directory (every file in chain order) or one log file.
    #[arg(value_name = "PATH", conflicts_with = "config")]
    pub path: Option<PathBuf>,
    /// Read the log `[audit]` of this configuration writes (directory or PostgreSQL table).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub source: AuditSource,
    /// The checkpoint public key (`ed25519:…`, or a file holding it). Default: the `.pub` file
    /// beside the configured signing key, or `audit-signing.key.pub` in the log directory.
    #[arg(long, value_name = "KEY|FILE")]
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuditFormat {
    /// One JSON record per line.
    Json,
    /// A readable table.
    Table,
}

#[derive(Debug, Args)]
pub struct AuditQueryArgs {
    #[command(flatten)]
    pub source: AuditSource,
    /// The tenant (the resource's, else the principal's).
    #[arg(long)]
    pub tenant: Option<String>,
    /// `Type::"id"` or the bare id.
    #[arg(long)]
    pub principal: Option<String>,
    /// `Type::"id"` or the bare id.
    #[arg(long)]
    pub resource: Option<String>,
    /// A service account that acted for the principal (a delegated token's chain):
    /// `ServiceAccount::"acme/sa_…"` or the bare id.
    #[arg(long)]
    pub actor: Option<String>,
    /// `allow` or `deny`.
    #[arg(long)]
    pub decision: Option<String>,
    /// A reason code, e.g. `tenant_boundary`.
    #[arg(long)]
    pub reason: Option<String>,
    /// From this time (RFC 3339), inclusive.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Until this time (RFC 3339), exclusive.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// At most this many records, the newest (default 100).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Also admin records and checkpoints.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin credential for all tenants directly in the configured store and print it
    /// once: the first one, or the way back in when none for all tenants is usable (exit 1 while
    /// one is).
    Init(AdminInitArgs),
    /// Create an admin credential through the server (needs a credential for all tenants in
    /// WARDEN_ADMIN_TOKEN) and print its secret once.
    Create(AdminCreateArgs),
    /// List the admin credentials (ids, scopes, expiry, status; never secrets).
    List(AdminListArgs),
    /// Replace a credential's secret; the old one stops working at once. Prints the new one once.
    Rotate(AdminRotateArgs),
    /// Revoke a credential. The last usable credential for all tenants needs --force.
    Revoke(AdminRevokeArgs),
}

#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Limit the credential to one tenant (default: all tenants).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Expire it after this long (`90s`, `30m`, `12h`, `90d`).
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    /// A label to tell credentials apart.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub label: String,
}

#[derive(Debug, Args)]
pub struct AdminListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct AdminRotateArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The credential id (`adm_…`).
    pub id: String,
}

#[derive(Debug, Args)]
pub struct AdminRevokeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The credential id (`adm_…`).
    pub id: String,
    /// Why (kept in the audit trail).
    #[arg(long)]
    pub reason: String,
    /// Revoke even the last usable credential for all tenants (then only `warden admin init`
    /// on the store makes a new one).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct AdminInitArgs {
    /// The configuration file with [storage].
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Limit the credential to one tenant (default: all tenants).
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Create one even while a usable credential for all tenants exists (its secret was lost);
    /// then revoke the lost one with `warden admin revoke`.
    #[arg(long)]
    pub force: bool,
}

/// How admin verbs reach the server: `--server`, else the config's listen address.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL (default: http://<server.listen of --config>, https:// when it has
    /// [server.tls], or http://127.0.0.1:8180). Name the host the certificate is for when the
    /// listen address is 0.0.0.0.
    #[arg(long, value_name = "URL", env = "WARDEN_SERVER")]
    pub server: Option<String>,
    /// A configuration file to take the listen address from (https when it has `[server.tls]`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PEM certificates of the CA that signed the server's certificate (a private CA), trusted
    /// besides the system's roots.
    #[arg(long, value_name = "FILE", env = "WARDEN_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (chain) to present, for a listener with
    /// `client_auth = "required"`; needs --client-key.
    #[arg(
        long,
        value_name = "FILE",
        env = "WARDEN_CLIENT_CERT",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of --client-cert.
    #[arg(
        long,
        value_name = "FILE",
        env = "WARDEN_CLIENT_KEY",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum EntityCommand {
    /// Import Cedar entity JSON into a tenant (ids of tenant-scoped types are qualified):
    /// a JSON array or JSON lines of any size, streamed in batches.
    Import(EntityImportArgs),
    /// Add or remove parents (roles, groups) of a stored entity, whatever wrote them.
    Parents(EntityParentsArgs),
}

#[derive(Debug, Args)]
pub struct EntityParentsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// The entity, e.g. 'User::"alice"'.
    #[arg(long, value_name = "UID")]
    pub entity: String,
    /// A parent to add (repeatable), e.g. 'Role::"editor"'.
    #[arg(long, value_name = "UID")]
    pub add: Vec<String>,
    /// A parent to remove (repeatable).
    #[arg(long, value_name = "UID")]
    pub remove: Vec<String>,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct EntityImportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// A Cedar entity JSON file: an array, or JSON lines (one entity per line).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Make the tenant's stored entities exactly the file's: afterwards, delete those the file
    /// does not list (only when every entity was accepted).
    #[arg(long)]
    pub replace: bool,
    /// Entities per request (each request is one transaction).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch_size: usize,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create or replace one of the tenant's policies from a file of one Cedar policy
    /// (refused with every problem at `file:line:column` when it does not validate against the
    /// pack's schema or names another tenant's entities; nothing changes then).
    Put(PolicyPutArgs),
    /// Delete one of the tenant's policies.
    Delete(PolicyNameArgs),
    /// The tenant's policies.
    List(PolicyListArgs),
}

#[derive(Debug, Args)]
pub struct PolicyPutArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// The policy's name within the tenant (default: the file's name without `.cedar`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The file with the policy's Cedar text (`-` reads standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PolicyNameArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// The policy's name within the tenant.
    #[arg(long, value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PolicyListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// Print the answer as JSON (with each policy's text).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Grant a role, optionally time-bound.
    Grant(RoleGrantArgs),
    /// Revoke a role.
    Revoke(RoleRevokeArgs),
}

#[derive(Debug, Args)]
pub struct RoleGrantArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// The principal, e.g. 'User::"alice"'.
    #[arg(long, value_name = "UID")]
    pub principal: String,
    /// The role, e.g. 'Role::"editor"'.
    #[arg(long, value_name = "UID")]
    pub role: String,
    /// Lifetime of the grant, e.g. 90s, 30m, 1h, 7d.
    #[arg(long, value_name = "DURATION", conflicts_with = "until")]
    pub ttl: Option<String>,
    /// End of the grant, RFC 3339 (e.g. 2026-12-01T18:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub until: Option<String>,
    /// Why (recorded in the audit trail).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct RoleRevokeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// The principal.
    #[arg(long, value_name = "UID")]
    pub principal: String,
    /// The role.
    #[arg(long, value_name = "UID")]
    pub role: String,
    /// Why (recorded in the audit trail).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    /// Disable a principal: every decision for it is a deny.
    Disable(PrincipalStatusArgs),
    /// Enable a disabled principal again.
    Enable(PrincipalStatusArgs),
}

#[derive(Debug, Args)]
pub struct PrincipalStatusArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The tenant.
    #[arg(long, value_name = "TENANT")]
    pub tenant: String,
    /// The principal, e.g. 'User::"alice"'.
    #[arg(value_name = "UID")]
    pub principal: String,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Verify a token against the configured issuers and print the principal or the reason code
    /// (exit 0 valid, 1 refused, 2 bad usage or configuration).
    Verify(TokenVerifyArgs),
    /// Mint a token for an HS256 issuer of the configuration (development and tests only:
    /// production tokens come from your IdP or from Warden's own token endpoint).
    Mint(TokenMintArgs),
    /// Exchange a person's token for a delegated one at the server's token endpoint (RFC 8693)
    /// as a service account (client id from --client-id or WARDEN_CLIENT_ID, secret from
    /// WARDEN_CLIENT_SECRET): prints the delegated token, e.g. for WARDEN_ADMIN_TOKEN so that
    /// admin verbs act as that person (exit 0 issued, 1 refused, 2 bad usage or unreachable).
    Exchange(TokenExchangeArgs),
}

#[derive(Debug, Args)]
pub struct TokenExchangeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The acting service account's client id (it must hold `warden:token-exchange`).
    #[arg(long, value_name = "ID", env = "WARDEN_CLIENT_ID")]
    pub client_id: String,
    /// A file holding the person's token (`-`: standard input); without it,
    /// WARDEN_SUBJECT_TOKEN. Never on the command line, where other users can read it.
    #[arg(long, value_name = "FILE")]
    pub subject_token_file: Option<PathBuf>,
    /// Space-separated scopes to narrow to, e.g. "warden:admin".
    #[arg(long)]
    pub scope: Option<String>,
    /// The audience (default: Warden's own).
    #[arg(long)]
    pub audience: Option<String>,
    /// Print the whole answer as JSON instead of the token alone.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TokenMintArgs {
    /// The configuration file with the [[issuers]].
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The issuer to mint for (its `issuer` value); it must use HS256.
    #[arg(long, value_name = "ISS")]
    pub issuer: String,
    /// The subject.
    #[arg(long, value_name = "SUB")]
    pub sub: String,
    /// Extra claims, KEY=VALUE; VALUE is read as JSON when it parses, as a string otherwise.
    #[arg(long = "claim", value_name = "KEY=VALUE")]
    pub claims: Vec<String>,
    /// Lifetime in seconds (default 600).
    #[arg(long, default_value_t = 600)]
    pub ttl: u64,
}

#[derive(Debug, Args)]
pub struct TokenVerifyArgs {
    /// The configuration file with the [[issuers]].
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The token; omit it or give `-` to read it from standard input (keeps it out of shell history).
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (warden.toml); WARDEN_<SECTION>__<KEY> variables override it.
    #[arg(long, value_name = "FILE", env = "WARDEN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: json (default when not a terminal) or text.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// A pack directory (schema, *.cedar, pack.toml) or a single .cedar file.
    #[arg(long, short = 'p', value_name = "PATH")]
    pub policies: PathBuf,
    /// A schema file that adds to or replaces the pack's schema (.cedarschema or .cedarschema.json).
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub pack: PackArgs,
    /// Also check every tenant-managed policy of this store (`sqlite://…` or `postgres://…`)
    /// against the pack, as `warden policy put` would, and list them with it.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A pack directory (schema, *.cedar, pack.toml) or a single .cedar file.
    #[arg(
        long,
        short = 'p',
        value_name = "PATH",
        required_unless_present = "config",
        conflicts_with = "config"
    )]
    pub policies: Option<PathBuf>,
    /// A schema file that adds to or replaces the pack's schema (.cedarschema or .cedarschema.json).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub schema: Option<PathBuf>,
    /// Cedar entity JSON: the principals, resources and their parents.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub entities: Option<PathBuf>,
    /// Decide as `warden serve` with this configuration would: its pack and entity file, its
    /// store (entities, grants, principal statuses, revocations), its issuers and claim
    /// settings, read once. Nothing is recorded in the decision log.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A bearer token (JWT) whose principal asks, instead of --principal: verified with the
    /// configuration's issuers and checked against its revocations, as `POST /v1/check` does.
    #[arg(long, value_name = "JWT", conflicts_with_all = ["principal", "requests"], requires = "config")]
    pub token: Option<String>,
    /// Attributes of the principal (a JSON object) for when the entity data does not know it,
    /// as an AuthZEN subject's `properties`; known data wins.
    #[arg(long, value_name = "JSON", conflicts_with = "requests")]
    pub principal_properties: Option<String>,
    /// Attributes of the resource (a JSON object) for when the entity data does not know it.
    #[arg(long, value_name = "JSON", conflicts_with = "requests")]
    pub resource_properties: Option<String>,
    /// The principal, e.g. 'User::"acme/alice"'.
    #[arg(
        long,
        value_name = "UID",
        required_unless_present_any = ["requests", "token"],
        conflicts_with = "requests"
    )]
    pub principal: Option<String>,
    /// The action, e.g. 'Action::"read"'.
    #[arg(
        long,
        value_name = "UID",
        required_unless_present = "requests",
        conflicts_with = "requests"
    )]
    pub action: Option<String>,
    /// The resource, e.g. 'Document::"acme/roadmap"'.
    #[arg(
        long,
        value_name = "UID",
        required_unless_present = "requests",
        conflicts_with = "requests"
    )]
    pub resource: Option<String>,
    /// The context as a JSON object, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON", conflicts_with = "requests")]
    pub context: Option<String>,
    /// A JSON-lines file of requests ({"principal", "action", "resource", "context"} per line,
    /// optionally "principal_properties", "resource_properties", or "token" in place of
    /// "principal"); prints one JSON decision per line, in order. Exit 0 when every line was
    /// evaluated, 2 when any line could not be.
    #[arg(long, value_name = "FILE")]
    pub requests: Option<PathBuf>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The pack directory; its suites are DIR/tests/*.yaml (default: the current directory).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The pack, when it is not DIR itself (a directory or a single .cedar file).
    #[arg(long, short = 'p', value_name = "PATH")]
    pub policies: Option<PathBuf>,
    /// Output format: text for people, junit for CI test reports.
    #[arg(long, value_enum, default_value_t = TestFormat::Text)]
    pub format: TestFormat,
    /// Fail when the share of policies made determining, or of schema actions exercised, by
    /// the hand-written cases is below PERCENT.
    #[arg(long, value_name = "PERCENT")]
    pub min_coverage: Option<f64>,
    /// A `warden.toml` whose issuers map cases' `token_claims` to principals and whose
    /// `[principals] claim_attributes` apply, as on the server.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A store (`sqlite://…`, `postgres://…`) whose tenant-managed policies decide with the
    /// pack, as on a server on that store; they are listed in the report.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// Readable text, with the explanation of every failure.
    Text,
    /// JUnit XML.
    Junit,
}
