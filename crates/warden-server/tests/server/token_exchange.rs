//! Issue #25: RFC 8693 token exchange end to end against the real server. A service account
//! exchanges a user's token for a delegated one that decides exactly as the user (never more:
//! scopes narrow, the tenant never changes), the decision log names the user and the actor,
//! policies see the actor, every RFC 8693 error case is refused with its code, revoking the
//! user (or anything in the chain) denies the delegated token at once, and an operator acts on
//! the admin API through an admin tool's exchange, attributed to the person.

use reqwest::Method;
use serde_json::{Value, json};

use crate::service_accounts::{claims_of, create, issuing_server_with, token_basic};
use crate::support::{ADMIN_SECRET, ISSUER, TestServer, check_document, now};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

async fn server() -> TestServer {
    issuing_server_with(
        "rotate_after_days = 0\nexchange_audiences = [\"https://reports.internal\"]\nmax_delegation_depth = 2",
    )
    .await
}

/// A token of the test IdP for `sub` of `org`, with `scope`, a `jti` of its own and a session.
fn user_token(server: &TestServer, sub: &str, org: &str, scope: &str) -> String {
    let mut claims = warden_testkit::claims_at(ISSUER, now());
    claims["sub"] = json!(sub);
    claims["org_id"] = json!(org);
    claims["roles"] = json!(["viewer"]);
    claims["scope"] = json!(scope);
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    claims["jti"] = json!(format!("{sub}-{org}-{serial}"));
    claims["sid"] = json!(format!("session-of-{sub}"));
    server.key.token(&claims)
}

/// A token exchange by `client` for `subject` with `extra` form fields; (status, answer).
async fn exchange(
    server: &TestServer,
    client: &(String, String),
    subject: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    let (status, body, _) = token_basic(server, &client.0, &client.1, &form).await;
    (status, body)
}

async fn exchanged(server: &TestServer, client: &(String, String), subject: &str) -> String {
    let (status, body) = exchange(server, client, subject, &[]).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn assert_refused(answer: &(u16, Value), code: &str) {
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert_eq!(answer.1["error"], code, "{}", answer.1);
    assert!(answer.1.get("access_token").is_none());
}

async fn admin_as(
    server: &TestServer,
    bearer: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server
        .admin(method, path, Some(bearer), body.as_ref())
        .await
}

/// The decision-log record of `decision_id`, through the decision search.
async fn logged(server: &TestServer, decision_id: &str) -> Value {
    let (status, found) = admin_as(
        server,
        ADMIN_SECRET,
        Method::GET,
        "/v1/admin/decisions?tenant=acme&limit=200",
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    found["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["id"] == decision_id)
        .cloned()
        .unwrap_or_else(|| panic!("{decision_id} is not in the log: {found}"))
}

#[tokio::test]
async fn a_delegated_token_decides_exactly_as_the_user_and_the_log_names_user_and_actor() {
    let server = server().await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read", "documents:write"],
    )
    .await;
    let carol = user_token(&server, "carol", "acme", "documents:read documents:write");
    let (status, answer) = exchange(&server, &worker, &carol, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "documents:read documents:write");
    let lifetime = answer["expires_in"].as_i64().unwrap();
    assert!((1..=300).contains(&lifetime), "{answer}");
    let job = answer["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&job);
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["aud"], "warden");
    assert_eq!(claims["client_id"], json!(worker.0));
    assert_eq!(claims["act"], json!({"sub": worker.0, "tenant": "acme"}));
    assert_eq!(claims["warden_origin"]["type"], "User");
    assert_eq!(claims["warden_origin"]["id"], "acme/carol");
    assert!(
        !claims.to_string().contains(&carol),
        "the user's token is never inside"
    );

    // Exactly what carol may do (a viewer): the same answers, action by action.
    for (action, document) in [
        ("read", "acme/roadmap"),
        ("edit", "acme/roadmap"),
        ("delete", "acme/roadmap"),
        ("read", "acme/salaries"),
        ("read", "globex/roadmap"),
    ] {
        let as_job = check_document(&server, &job, action, document).await;
        let as_carol = check_document(&server, &carol, action, document).await;
        assert_eq!(
            as_job["decision"], as_carol["decision"],
            "{action} {document}: {as_job} vs {as_carol}"
        );
        assert_eq!(as_job["reason"], as_carol["reason"], "{action} {document}");
    }
    let read = check_document(&server, &job, "read", "acme/roadmap").await;
    assert_eq!(read["decision"], "allow", "{read}");
    let cross = check_document(&server, &job, "read", "globex/roadmap").await;
    assert_eq!(cross["decision"], "deny", "a job never switches tenant");

    // The log names carol as the principal and the worker as the actor.
    let record = logged(&server, read["decision_id"].as_str().unwrap()).await;
    assert_eq!(record["principal"]["id"], "acme/carol", "{record}");
    assert_eq!(
        record["actors"],
        json!([{"type": "ServiceAccount", "id": format!("acme/{}", worker.0), "tenant": "acme"}]),
        "{record}"
    );
    assert_eq!(
        record["context"]["actor"]["__entity"]["id"],
        json!(format!("acme/{}", worker.0))
    );
    let own = logged(
        &server,
        check_document(&server, &carol, "read", "acme/roadmap").await["decision_id"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert!(own.get("actors").is_none(), "{own}");
    // The search finds what an account did for people, and only that.
    let (status, by_actor) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::GET,
        &format!(
            "/v1/admin/decisions?actor={}&limit=200",
            format!("ServiceAccount::\"acme/{}\"", worker.0)
                .replace('"', "%22")
                .replace(':', "%3A")
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{by_actor}");
    let found = by_actor["decisions"].as_array().unwrap();
    assert_eq!(found.len(), 7, "{by_actor}");
    assert!(
        found
            .iter()
            .all(|record| record["principal"]["id"] == "acme/carol")
    );

    // Scopes narrow and never widen.
    let narrowed = exchange(&server, &worker, &carol, &[("scope", "documents:read")]).await;
    assert_eq!(narrowed.0, 200, "{}", narrowed.1);
    assert_eq!(narrowed.1["scope"], "documents:read");
    assert_refused(
        &exchange(
            &server,
            &worker,
            &carol,
            &[("scope", "documents:read admin")],
        )
        .await,
        "invalid_scope",
    );
    let reader = user_token(&server, "carol", "acme", "documents:read");
    let only_read = exchange(&server, &worker, &reader, &[]).await;
    assert_eq!(only_read.1["scope"], "documents:read", "{}", only_read.1);
    assert_refused(
        &exchange(&server, &worker, &reader, &[("scope", "documents:write")]).await,
        "invalid_scope",
    );
    let reading_worker = create(
        &server,
        "reading-worker",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let (_, both) = exchange(&server, &reading_worker, &carol, &[]).await;
    assert_eq!(
        both["scope"], "documents:read",
        "only what both the user and the account hold"
    );

    // An audience of the configured list, which Warden accepts as its own.
    let reports = exchange(
        &server,
        &worker,
        &carol,
        &[("audience", "https://reports.internal")],
    )
    .await;
    assert_eq!(reports.0, 200, "{}", reports.1);
    let reports_token = reports.1["access_token"].as_str().unwrap();
    assert_eq!(claims_of(reports_token)["aud"], "https://reports.internal");
    assert_eq!(
        check_document(&server, reports_token, "read", "acme/roadmap").await["decision"],
        "allow"
    );

    // A chain: a second account exchanges the delegated token; the chain is kept, the depth
    // is bounded (2 here), scopes never come back.
    let helper = create(
        &server,
        "helper",
        &["warden:token-exchange", "documents:read", "documents:write"],
    )
    .await;
    let narrowed_job = narrowed.1["access_token"].as_str().unwrap().to_owned();
    let second = exchange(&server, &helper, &narrowed_job, &[]).await;
    assert_eq!(second.0, 200, "{}", second.1);
    assert_eq!(second.1["scope"], "documents:read");
    let second_token = second.1["access_token"].as_str().unwrap().to_owned();
    let chained = claims_of(&second_token);
    assert_eq!(chained["act"]["sub"], json!(helper.0));
    assert_eq!(chained["act"]["act"]["sub"], json!(worker.0));
    assert_eq!(chained["sub"], "carol");
    let decided = check_document(&server, &second_token, "read", "acme/roadmap").await;
    assert_eq!(decided["decision"], "allow", "{decided}");
    let record = logged(&server, decided["decision_id"].as_str().unwrap()).await;
    assert_eq!(
        record["actors"][0]["id"],
        json!(format!("acme/{}", helper.0))
    );
    assert_eq!(
        record["actors"][1]["id"],
        json!(format!("acme/{}", worker.0))
    );
    assert_refused(
        &exchange(
            &server,
            &helper,
            &narrowed_job,
            &[("scope", "documents:write")],
        )
        .await,
        "invalid_scope",
    );
    let too_deep = exchange(&server, &worker, &second_token, &[]).await;
    assert_refused(&too_deep, "invalid_request");
    assert!(
        too_deep.1["error_description"]
            .as_str()
            .unwrap()
            .contains("at most 2"),
        "{}",
        too_deep.1
    );
}

#[tokio::test]
async fn each_rfc_8693_error_case_is_refused_with_its_code_and_nothing_is_issued() {
    let server = server().await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let carol = user_token(&server, "carol", "acme", "documents:read");

    // Invalid subject tokens: malformed, forged (another key), expired, wrong audience.
    let forged = warden_testkit::TestKey::rsa("k1").token(&{
        let mut claims = warden_testkit::claims_at(ISSUER, now());
        claims["sub"] = json!("carol");
        claims
    });
    let expired = server.key.token(&{
        let mut claims = warden_testkit::claims_at(ISSUER, now() - 3600);
        claims["sub"] = json!("carol");
        claims
    });
    let elsewhere = server.key.token(&{
        let mut claims = warden_testkit::claims_at(ISSUER, now());
        claims["aud"] = json!("another-api");
        claims
    });
    for bad in [
        "not-a-token",
        forged.as_str(),
        expired.as_str(),
        elsewhere.as_str(),
    ] {
        assert_refused(
            &exchange(&server, &worker, bad, &[]).await,
            "invalid_request",
        );
    }
    let missing = token_basic(
        &server,
        &worker.0,
        &worker.1,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_refused(&(missing.0, missing.1), "invalid_request");

    // Unsupported token types.
    let saml = token_basic(
        &server,
        &worker.0,
        &worker.1,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &carol),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:saml2",
            ),
        ],
    )
    .await;
    assert_refused(&(saml.0, saml.1.clone()), "invalid_request");
    assert!(
        saml.1["error_description"]
            .as_str()
            .unwrap()
            .contains("not supported")
    );
    let untyped = token_basic(
        &server,
        &worker.0,
        &worker.1,
        &[("grant_type", EXCHANGE), ("subject_token", &carol)],
    )
    .await;
    assert_refused(&(untyped.0, untyped.1), "invalid_request");
    assert_refused(
        &exchange(
            &server,
            &worker,
            &carol,
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
        )
        .await,
        "invalid_request",
    );
    assert_refused(
        &exchange(
            &server,
            &worker,
            &carol,
            &[("actor_token", &carol), ("actor_token_type", ACCESS_TOKEN)],
        )
        .await,
        "invalid_request",
    );

    // Audiences Warden does not issue for.
    assert_refused(
        &exchange(
            &server,
            &worker,
            &carol,
            &[("audience", "https://evil.example")],
        )
        .await,
        "invalid_target",
    );
    assert_refused(
        &exchange(
            &server,
            &worker,
            &carol,
            &[("resource", "https://reports.internal")],
        )
        .await,
        "invalid_target",
    );

    // An account without `warden:token-exchange` may not exchange at all.
    let plain = create(&server, "plain", &["documents:read"]).await;
    assert_refused(
        &exchange(&server, &plain, &carol, &[]).await,
        "unauthorized_client",
    );

    // Tenants never change: a globex user's token through an acme account, and an acme
    // user's token through a globex account.
    let globex_user = user_token(&server, "bob", "globex", "documents:read");
    assert_refused(
        &exchange(&server, &worker, &globex_user, &[]).await,
        "invalid_request",
    );
    let (status, body) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::POST,
        "/v1/admin/tenants/globex/service-accounts",
        Some(json!({
            "name": "globex-worker", "owner": "alice", "purpose": "jobs",
            "scopes": ["warden:token-exchange", "documents:read"],
            "expires_in_seconds": 86_400,
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let globex_worker = (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    );
    assert_refused(
        &exchange(&server, &globex_worker, &carol, &[]).await,
        "invalid_request",
    );

    // A wrong client secret is `invalid_client`, as for any grant.
    let (status, body, _) = token_basic(
        &server,
        &worker.0,
        "wsa_wrong",
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &carol),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // The discovery document names the grant.
    let (_, discovery) = server.get("/.well-known/openid-configuration").await;
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(EXCHANGE))
    );
}

async fn revoke(server: &TestServer, body: Value) {
    let (status, answer) = admin_as(
        server,
        ADMIN_SECRET,
        Method::POST,
        "/v1/admin/revocations",
        Some(body),
    )
    .await;
    assert!(status == 200 || status == 201, "{status}: {answer}");
}

async fn assert_token_refused(server: &TestServer, token: &str) {
    let response = server
        .client
        .post(server.url("/v1/check"))
        .bearer_auth(token)
        .json(&json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["reason"], "token_revoked", "{body}");
}

#[tokio::test]
async fn revoking_the_user_or_anything_in_the_chain_denies_the_delegated_token_at_once() {
    let server = server().await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let helper = create(
        &server,
        "helper",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let allowed = |answer: &Value| answer["decision"] == "allow";

    // The user's subject revoked after the job was enqueued.
    let carol = user_token(&server, "carol", "acme", "documents:read");
    let job = exchanged(&server, &worker, &carol).await;
    assert!(allowed(
        &check_document(&server, &job, "read", "acme/roadmap").await
    ));
    revoke(
        &server,
        json!({"kind": "subject", "issuer": ISSUER, "value": "carol", "reason": "left the company"}),
    )
    .await;
    assert_token_refused(&server, &job).await;
    assert_refused(
        &exchange(&server, &worker, &carol, &[]).await,
        "invalid_request",
    );

    // The user's original token revoked by its jti; and its session.
    let dave = user_token(&server, "dave", "acme", "documents:read");
    let dave_job = exchanged(&server, &worker, &dave).await;
    let dave_jti = claims_of(&dave)["jti"].as_str().unwrap().to_owned();
    revoke(
        &server,
        json!({"kind": "token", "issuer": ISSUER, "value": dave_jti, "reason": "leaked"}),
    )
    .await;
    assert_token_refused(&server, &dave_job).await;
    let erin = user_token(&server, "erin", "acme", "documents:read");
    let erin_job = exchanged(&server, &worker, &erin).await;
    revoke(
        &server,
        json!({"kind": "session", "issuer": ISSUER, "value": "session-of-erin", "reason": "logout"}),
    )
    .await;
    assert_token_refused(&server, &erin_job).await;

    // The user disabled in the store: the principal is refused, as the user's own token is.
    let bob = user_token(&server, "bob", "acme", "documents:read");
    let bob_job = exchanged(&server, &worker, &bob).await;
    let (status, answer) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::POST,
        "/v1/admin/tenants/acme/principals/status",
        Some(json!({"principal": "User::\"acme/bob\"", "status": "disabled"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let mut denied = Value::Null;
    for _ in 0..50 {
        denied = check_document(&server, &bob_job, "read", "acme/roadmap").await;
        if denied["reason"] == "principal_disabled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(denied["decision"], "deny", "{denied}");
    assert_eq!(denied["reason"], "principal_disabled", "{denied}");

    // An exchanged token in the middle of a chain revoked: what was made from it goes too.
    let zed = user_token(&server, "zed", "acme", "documents:read");
    let first = exchanged(&server, &worker, &zed).await;
    let second = exchanged(&server, &helper, &first).await;
    let first_jti = claims_of(&first)["jti"].as_str().unwrap().to_owned();
    revoke(
        &server,
        json!({"kind": "token", "issuer": crate::service_accounts::OWN_ISSUER, "value": first_jti, "reason": "job cancelled"}),
    )
    .await;
    assert_token_refused(&server, &second).await;

    // An actor disabled: every token it holds for anyone is refused.
    let yan = user_token(&server, "yan", "acme", "documents:read");
    let by_helper = exchanged(&server, &helper, &yan).await;
    let chained = exchanged(&server, &worker, &by_helper).await;
    assert!(allowed(
        &check_document(&server, &chained, "read", "acme/roadmap").await
    ));
    let (status, answer) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::POST,
        &format!(
            "/v1/admin/tenants/acme/service-accounts/{}/disable",
            helper.0
        ),
        Some(json!({"reason": "compromised"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_token_refused(&server, &by_helper).await;
    assert_token_refused(&server, &chained).await;
}

#[tokio::test]
async fn policies_see_the_actor_and_the_caller_cannot_claim_one() {
    let server = server().await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read", "documents:write"],
    )
    .await;
    let policy = format!(
        "forbid (principal, action == Action::\"edit\", resource)\nwhen {{ context has actor && context.actor == ServiceAccount::\"acme/{}\" }};",
        worker.0
    );
    let (status, answer) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::PUT,
        "/v1/admin/tenants/acme/policies/jobs-never-edit",
        Some(json!({ "policy": policy })),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // bob is an editor.
    let bob = user_token(&server, "bob", "acme", "documents:read documents:write");
    let job = exchanged(&server, &worker, &bob).await;
    assert_eq!(
        check_document(&server, &bob, "edit", "acme/roadmap").await["decision"],
        "allow"
    );
    let edit = check_document(&server, &job, "edit", "acme/roadmap").await;
    assert_eq!(edit["decision"], "deny", "{edit}");
    assert!(edit.to_string().contains("jobs-never-edit"), "{edit}");
    assert_eq!(
        check_document(&server, &job, "read", "acme/roadmap").await["decision"],
        "allow"
    );

    // The narrowed scopes are there for policies too: a tenant forbid keeps a job whose token
    // was narrowed to reading from editing, though its user may.
    let (status, answer) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::PUT,
        "/v1/admin/tenants/acme/policies/jobs-within-scopes",
        Some(json!({"policy": "forbid (principal, action == Action::\"share\", resource)\nwhen { context has delegated_scopes && !context.delegated_scopes.contains(\"documents:write\") };"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let owner = user_token(&server, "alice", "acme", "documents:read documents:write");
    let (status, narrowed) =
        exchange(&server, &worker, &owner, &[("scope", "documents:read")]).await;
    assert_eq!(status, 200, "{narrowed}");
    let narrowed = narrowed["access_token"].as_str().unwrap().to_owned();
    let full = exchanged(&server, &worker, &owner).await;
    assert_eq!(
        check_document(&server, &owner, "share", "acme/nda").await["decision"],
        "allow"
    );
    assert_eq!(
        check_document(&server, &full, "share", "acme/nda").await["decision"],
        "allow"
    );
    let refused = check_document(&server, &narrowed, "share", "acme/nda").await;
    assert_eq!(refused["decision"], "deny", "{refused}");
    assert!(
        refused.to_string().contains("jobs-within-scopes"),
        "{refused}"
    );

    // `actor` and `delegated_scopes` are Warden's to set: a caller that sends one is refused,
    // with or without a delegated token.
    for token in [&bob, &job] {
        let response = server
            .client
            .post(server.url("/v1/check"))
            .bearer_auth(token)
            .json(&json!({
                "action": "read",
                "resource": {"type": "Document", "id": "acme/roadmap"},
                "context": {"actor": {"__entity": {"type": "ServiceAccount", "id": "acme/other"}}},
            }))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["decision"], "deny", "{body}");
        assert_eq!(body["reason"], "invalid_request", "{body}");
        let response = server
            .client
            .post(server.url("/v1/check"))
            .bearer_auth(token)
            .json(&json!({
                "action": "read",
                "resource": {"type": "Document", "id": "acme/roadmap"},
                "context": {"delegated_scopes": ["documents:write"]},
            }))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["reason"], "invalid_request", "{body}");
    }
}

#[tokio::test]
async fn an_operator_acts_on_the_admin_api_through_an_admin_tool_and_is_named_in_the_trail() {
    let server = server().await;
    let tool = create(
        &server,
        "admin-console",
        &["warden:token-exchange", "warden:admin"],
    )
    .await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let alice = user_token(&server, "alice", "acme", "warden:admin documents:read");
    // Unasked, no admin power; asked, only for Warden's own audience.
    let (status, answer) = exchange(&server, &tool, &alice, &[]).await;
    assert_eq!(
        (status, answer["scope"].as_str()),
        (200, Some("")),
        "{answer}"
    );
    assert_refused(
        &exchange(
            &server,
            &tool,
            &alice,
            &[
                ("scope", "warden:admin"),
                ("audience", "https://reports.internal"),
            ],
        )
        .await,
        "invalid_scope",
    );
    let (status, answer) = exchange(&server, &tool, &alice, &[("scope", "warden:admin")]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["scope"], "warden:admin");
    let operator = answer["access_token"].as_str().unwrap().to_owned();

    let (status, listed) = admin_as(
        &server,
        &operator,
        Method::GET,
        "/v1/admin/tenants/acme/service-accounts",
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let (status, answer) = admin_as(
        &server,
        &operator,
        Method::POST,
        "/v1/admin/tenants/acme/principals/status",
        Some(json!({"principal": "User::\"acme/erin\"", "status": "disabled"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (_, trail) = admin_as(&server, ADMIN_SECRET, Method::GET, "/v1/admin/audit", None).await;
    let expected = format!("operator:User::\"acme/alice\" via {}", tool.0);
    assert!(
        trail.to_string().contains(&expected.replace('"', "\\\"")),
        "the write is attributed to alice through the tool: {trail}"
    );

    // Its own tenant only, and nothing that mints lasting credentials.
    let (status, _) = admin_as(
        &server,
        &operator,
        Method::GET,
        "/v1/admin/tenants/globex/service-accounts",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = admin_as(
        &server,
        &operator,
        Method::POST,
        "/v1/admin/credentials",
        Some(json!({"name": "escalate", "tenant": "acme"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = admin_as(
        &server,
        &operator,
        Method::POST,
        "/v1/admin/tenants/acme/service-accounts",
        Some(json!({"name": "x", "owner": "alice", "purpose": "p", "scopes": [], "expires_in_seconds": 3600})),
    )
    .await;
    assert_eq!(status, 403);

    // Not an operator: a job's token (no `warden:admin`), the person's own token, a forgery.
    let job = exchanged(&server, &worker, &alice).await;
    let (status, _) = admin_as(
        &server,
        &job,
        Method::GET,
        "/v1/admin/tenants/acme/service-accounts",
        None,
    )
    .await;
    assert_eq!(status, 403);
    for not_operator in [alice.as_str(), "a.b.c"] {
        let (status, _) = admin_as(
            &server,
            not_operator,
            Method::GET,
            "/v1/admin/tenants/acme/service-accounts",
            None,
        )
        .await;
        assert_eq!(status, 401);
    }
    // A person whose token lacks `warden:admin` gets none through the tool.
    let carol = user_token(&server, "carol", "acme", "documents:read");
    let (status, answer) = exchange(&server, &tool, &carol, &[]).await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = admin_as(
        &server,
        answer["access_token"].as_str().unwrap(),
        Method::GET,
        "/v1/admin/tenants/acme/service-accounts",
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Revoking the person ends the operator token at once.
    revoke(
        &server,
        json!({"kind": "subject", "issuer": ISSUER, "value": "alice", "reason": "offboarded"}),
    )
    .await;
    let (status, _) = admin_as(
        &server,
        &operator,
        Method::GET,
        "/v1/admin/tenants/acme/service-accounts",
        None,
    )
    .await;
    assert_eq!(status, 401);
}

// What a review (helper session, attacker's view) found, each now refused.

#[tokio::test]
async fn a_service_account_cannot_make_itself_an_operator_or_give_lasting_admin_power() {
    let server = server().await;
    let tool = create(
        &server,
        "admin-console",
        &["warden:token-exchange", "warden:admin"],
    )
    .await;
    // Its own client-credentials token starts no chain: no person is in it.
    let (status, body, _) = token_basic(
        &server,
        &tool.0,
        &tool.1,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let own = body["access_token"].as_str().unwrap().to_owned();
    assert_refused(
        &exchange(&server, &tool, &own, &[]).await,
        "invalid_request",
    );

    // An operator's short-lived token cannot give an account `warden:admin` or
    // `warden:token-exchange` (that would outlive the operator); it may change other scopes.
    let worker = create(&server, "worker", &["documents:read"]).await;
    let operator = operator_token(&server, &tool, "alice").await;
    let path = format!(
        "/v1/admin/tenants/acme/service-accounts/{}/scopes",
        worker.0
    );
    for widened in [
        json!(["documents:read", "warden:admin"]),
        json!(["documents:read", "warden:token-exchange"]),
    ] {
        let (status, answer) = admin_as(
            &server,
            &operator,
            Method::POST,
            &path,
            Some(json!({"scopes": widened, "reason": "x"})),
        )
        .await;
        assert_eq!(status, 403, "{answer}");
    }
    let (status, answer) = admin_as(
        &server,
        &operator,
        Method::POST,
        &path,
        Some(json!({"scopes": ["documents:read", "documents:write"], "reason": "x"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_job_token_reviews_nothing_and_a_token_for_another_audience_administers_nothing() {
    let server = server().await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let job = exchanged(
        &server,
        &worker,
        &user_token(&server, "alice", "acme", "documents:read"),
    )
    .await;
    let response = server
        .client
        .get(server.url("/v1/reviews"))
        .bearer_auth(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    let tool = create(
        &server,
        "admin-console",
        &["warden:token-exchange", "warden:admin"],
    )
    .await;
    let alice = user_token(&server, "alice", "acme", "warden:admin");
    let (status, answer) = exchange(
        &server,
        &tool,
        &alice,
        &[("audience", "https://reports.internal")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = admin_as(
        &server,
        answer["access_token"].as_str().unwrap(),
        Method::GET,
        "/v1/admin/tenants/acme/service-accounts",
        None,
    )
    .await;
    assert_eq!(
        status, 401,
        "a token made for another service is no operator token"
    );
}

#[tokio::test]
async fn revoking_an_earlier_actor_or_the_key_of_an_earlier_link_reaches_what_was_made_from_it() {
    let server = server().await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let helper = create(
        &server,
        "helper",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    // A client revocation of the first actor.
    let first = exchanged(
        &server,
        &worker,
        &user_token(&server, "zed", "acme", "documents:read"),
    )
    .await;
    let second = exchanged(&server, &helper, &first).await;
    revoke(
        &server,
        json!({"kind": "client", "value": worker.0, "reason": "compromised"}),
    )
    .await;
    assert_token_refused(&server, &first).await;
    assert_token_refused(&server, &second).await;

    // A key revocation of the key that signed the first link, after a rotation.
    let first = exchanged(
        &server,
        &helper,
        &user_token(&server, "kim", "acme", "documents:read"),
    )
    .await;
    let (status, rotated) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::POST,
        "/v1/admin/keys/rotate",
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let third = create(
        &server,
        "third",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let second = exchanged(&server, &third, &first).await;
    assert_eq!(
        check_document(&server, &second, "read", "acme/roadmap").await["decision"],
        "allow"
    );
    revoke(
        &server,
        json!({"kind": "key", "value": rotated["previous_kid"], "reason": "leaked"}),
    )
    .await;
    assert_token_refused(&server, &first).await;
    assert_token_refused(&server, &second).await;
}

#[tokio::test]
async fn authzen_with_forwarded_identifiers_checks_the_chain_too() {
    let server = server().await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let evaluate = |claims: Value| {
        let server = &server;
        async move {
            let (status, answer) = server
                .pep_post(
                    "/access/v1/evaluation",
                    &json!({
                        "subject": {"type": "User", "id": "acme/dave", "properties": {"token": {
                            "iss": claims["iss"], "jti": claims["jti"], "sub": claims["sub"],
                            "iat": claims["iat"], "client_id": claims["client_id"],
                            "tenant": claims["tenant"], "act": claims["act"],
                            "warden_origin": claims["warden_origin"]}}},
                        "action": {"name": "read"},
                        "resource": {"type": "Document", "id": "acme/roadmap"},
                    }),
                )
                .await;
            assert_eq!(status, 200, "{answer}");
            answer
        }
    };
    let job = exchanged(
        &server,
        &worker,
        &user_token(&server, "dave", "acme", "documents:read"),
    )
    .await;
    let claims = claims_of(&job);
    let allowed = evaluate(claims.clone()).await;
    assert_eq!(allowed["decision"], true);
    // The record names the actor the PEP's forwarded chain names.
    let record = logged(
        &server,
        allowed["context"]["decision_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{allowed}")),
    )
    .await;
    assert_eq!(record["principal"]["id"], "acme/dave", "{record}");
    assert_eq!(
        record["actors"][0]["id"],
        json!(format!("acme/{}", worker.0)),
        "{record}"
    );
    revoke(
        &server,
        json!({"kind": "session", "issuer": ISSUER, "value": "session-of-dave", "reason": "logout"}),
    )
    .await;
    assert_token_refused(&server, &job).await;
    let answer = evaluate(claims).await;
    assert_eq!(answer["decision"], false, "{answer}");

    // A forged chain is the PEP's word too: malformed or inconsistent is refused, never ignored.
    let mut forged = claims_of(&job);
    forged["warden_origin"] = json!({"iss": ISSUER});
    assert_eq!(evaluate(forged).await["decision"], false);
    let other = exchanged(
        &server,
        &worker,
        &user_token(&server, "erin", "acme", "documents:read"),
    )
    .await;
    let mut elsewhere = claims_of(&other);
    elsewhere["sub"] = json!("dave"); // erin's chain forwarded for dave
    assert_eq!(evaluate(elsewhere).await["decision"], false);

    // Another issuer's plain RFC 8693 `act` is its own business: no chain is read from it.
    let (status, answer) = server
        .pep_post(
            "/access/v1/evaluation",
            &json!({
                "subject": {"type": "User", "id": "acme/carol", "properties": {"token": {
                    "iss": ISSUER, "sub": "carol", "act": {"sub": "reports-svc", "iss": "https://idp.example"}}}},
                "action": {"name": "read"},
                "resource": {"type": "Document", "id": "acme/roadmap"},
            }),
        )
        .await;
    assert_eq!(
        (status, answer["decision"].clone()),
        (200, json!(true)),
        "{answer}"
    );
}

#[tokio::test]
async fn a_revocation_covers_tokens_issued_in_its_own_second() {
    let server = server().await;
    let mut claims = warden_testkit::claims_at(ISSUER, now());
    claims["iat"] = json!(now());
    claims["sub"] = json!("carol");
    claims["roles"] = json!(["viewer"]);
    let token = server.key.token(&claims);
    revoke(
        &server,
        json!({"kind": "subject", "issuer": ISSUER, "value": "carol", "reason": "x"}),
    )
    .await;
    assert_token_refused(&server, &token).await;
}

async fn operator_token(server: &TestServer, tool: &(String, String), person: &str) -> String {
    let (status, answer) = exchange(
        server,
        tool,
        &user_token(server, person, "acme", "warden:admin"),
        &[("scope", "warden:admin")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_operator_token_gives_no_workload_lasting_power_and_decides_no_review() {
    let server = server().await;
    let tool = create(
        &server,
        "admin-console",
        &["warden:token-exchange", "warden:admin"],
    )
    .await;
    let operator = operator_token(&server, &tool, "alice").await;
    let tool_entity = format!("acme/{}", tool.0);
    let attempts = [
        (
            Method::POST,
            "/v1/admin/tenants/acme/entities".to_owned(),
            json!([{"uid": {"type": "ServiceAccount", "id": tool_entity}, "attrs": {"scopes": []},
                    "parents": [{"type": "Role", "id": "admin"}]}]),
        ),
        (
            Method::POST,
            "/v1/admin/tenants/acme/roles/grant".to_owned(),
            json!({"principal": format!("ServiceAccount::\"{tool_entity}\""),
                   "role": "Role::\"admin\"", "reason": "x"}),
        ),
        (
            Method::PUT,
            "/v1/admin/tenants/acme/policies/tool-reads".to_owned(),
            json!({"policy": format!(
                "permit (principal == ServiceAccount::\"{tool_entity}\", action, resource);"
            )}),
        ),
        (
            Method::POST,
            format!("/v1/admin/tenants/acme/service-accounts/{}/owner", tool.0),
            json!({"owner": "carol", "reason": "x"}),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = admin_as(&server, &operator, method, &path, Some(body)).await;
        assert_eq!(status, 403, "{path}: {answer}");
    }
    // People are another matter: an operator grants a user a role.
    let (status, answer) = admin_as(
        &server,
        &operator,
        Method::POST,
        "/v1/admin/tenants/acme/roles/grant",
        Some(json!({"principal": "User::\"acme/erin\"", "role": "Role::\"viewer\"", "reason": "onboarding"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    // Reviews are decided with a credential or the reviewer's own token, never an operator's.
    let (status, created) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::POST,
        "/v1/admin/tenants/acme/reviews",
        Some(json!({"name": "q", "scope": "roles", "due_in_days": 3})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["campaign"]["id"].as_str().unwrap().to_owned();
    let (_, shown) = admin_as(
        &server,
        ADMIN_SECRET,
        Method::GET,
        &format!("/v1/admin/tenants/acme/reviews/{id}"),
        None,
    )
    .await;
    let item = shown["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, answer) = admin_as(
        &server,
        &operator,
        Method::POST,
        &format!("/v1/admin/tenants/acme/reviews/{id}/items/{item}"),
        Some(json!({"decision": "keep"})),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
}

#[tokio::test]
async fn a_delegated_token_too_large_to_be_accepted_is_never_issued() {
    let server = server().await;
    let worker = create(
        &server,
        "worker",
        &["warden:token-exchange", "documents:read"],
    )
    .await;
    let mut claims = warden_testkit::claims_at(ISSUER, now());
    claims["sub"] = json!("rita");
    claims["scope"] = json!("documents:read");
    // A subject token just under the 8192 bytes the IdP's tokens may have: the delegated
    // token, which carries its roles and the chain besides, would be over Warden's own.
    let mut roles: Vec<String> = Vec::new();
    let mut big = String::new();
    while big.len() < 8_050 {
        roles.push(format!("role-number-{:04}", roles.len()));
        claims["roles"] = json!(roles);
        big = server.key.token(&claims);
    }
    assert!(big.len() <= 8_192, "{}", big.len());
    let refused = exchange(&server, &worker, &big, &[]).await;
    assert_refused(&refused, "invalid_request");
    assert!(
        refused.1["error_description"]
            .as_str()
            .unwrap()
            .contains("more than Warden accepts"),
        "{}",
        refused.1
    );
}
