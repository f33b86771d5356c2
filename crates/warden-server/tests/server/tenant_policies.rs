//! Issue #19: tenant-managed policies through the admin API. Accepted ones decide at once (and
//! are named in the decision log), refused ones change nothing and say where they are wrong,
//! a tenant's policy can name only its own entities and never reaches another tenant, and a
//! write is in force on a second PostgreSQL replica within a second. Each scenario runs on
//! SQLite and, when `WARDEN_TEST_POSTGRES_URL` is set, on PostgreSQL.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    ADMIN_SECRET, Setup, TestServer, check_document, servers_with_a_store, user_token,
};
use warden_testkit::fresh_postgres_url;

async fn put(server: &TestServer, tenant: &str, name: &str, policy: &str) -> (u16, Value) {
    server
        .admin(
            Method::PUT,
            &format!("/v1/admin/tenants/{tenant}/policies/{name}"),
            Some(ADMIN_SECRET),
            Some(&json!({ "policy": policy })),
        )
        .await
}

async fn decide(server: &TestServer, token: &str, action: &str, document: &str) -> Value {
    check_document(server, token, action, document).await
}

fn policy_ids(answer: &Value) -> Vec<String> {
    answer["reasons"]
        .as_array()
        .map(|reasons| {
            reasons
                .iter()
                .filter_map(|reason| reason["policy"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

const LEGAL_READ: &str =
    "permit (principal, action == Action::\"read\", resource in Folder::\"acme/contracts\");";

#[tokio::test]
async fn an_accepted_tenant_policy_decides_at_once_and_is_logged() {
    for (backend, server) in servers_with_a_store().await {
        let zed = user_token(&server, "zed", "acme", &[]);
        let before = decide(&server, &zed, "read", "acme/nda").await;
        assert_eq!(before["decision"], "deny", "{backend}: {before}");

        let (status, answer) = put(&server, "acme", "legal-read", LEGAL_READ).await;
        assert_eq!(status, 200, "{backend}: {answer}");
        assert_eq!(answer["id"], "tenant/acme/legal-read", "{backend}");
        assert_eq!(answer["replaced"], false, "{backend}");

        let after = decide(&server, &zed, "read", "acme/nda").await;
        assert_eq!(after["decision"], "allow", "{backend}: {after}");
        assert_eq!(
            policy_ids(&after),
            ["tenant/acme/legal-read"],
            "{backend}: {after}"
        );
        // Outside the folder, and for another action, nothing changed.
        assert_eq!(
            decide(&server, &zed, "read", "acme/salaries").await["decision"],
            "deny",
            "{backend}"
        );
        assert_eq!(
            decide(&server, &zed, "edit", "acme/nda").await["decision"],
            "deny",
            "{backend}"
        );

        // The decision log names the tenant policy.
        let id = after["decision_id"].as_str().unwrap().to_owned();
        let mut recorded = Value::Null;
        for _ in 0..50 {
            let (status, found) = server
                .admin(
                    Method::GET,
                    &format!("/v1/decisions/{id}"),
                    Some(ADMIN_SECRET),
                    None,
                )
                .await;
            if status == 200 {
                recorded = found;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            recorded.to_string().contains("tenant/acme/legal-read"),
            "{backend}: {recorded}"
        );

        // Listed, then deleted: the access goes with it.
        let (status, listed) = server
            .admin(
                Method::GET,
                "/v1/admin/tenants/acme/policies",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(status, 200, "{backend}: {listed}");
        assert_eq!(listed["policies"][0]["name"], "legal-read", "{backend}");
        assert_eq!(listed["policies"][0]["policy"], LEGAL_READ, "{backend}");
        let (status, _) = server
            .admin(
                Method::DELETE,
                "/v1/admin/tenants/acme/policies/legal-read",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(status, 200, "{backend}");
        assert_eq!(
            decide(&server, &zed, "read", "acme/nda").await["decision"],
            "deny",
            "{backend}: a deleted policy no longer allows"
        );
        let (status, _) = server
            .admin(
                Method::DELETE,
                "/v1/admin/tenants/acme/policies/legal-read",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(status, 404, "{backend}");

        // The admin audit trail has both writes.
        let (_, trail) = server
            .admin(Method::GET, "/v1/admin/audit", Some(ADMIN_SECRET), None)
            .await;
        let trail = trail.to_string();
        assert!(
            trail.contains("policy.put") && trail.contains("policy.delete"),
            "{backend}: {trail}"
        );
    }
}

#[tokio::test]
async fn a_tenant_forbid_denies_inside_its_tenant_only() {
    for (backend, server) in servers_with_a_store().await {
        let viewer = user_token(&server, "vera", "acme", &["viewer"]);
        assert_eq!(
            decide(&server, &viewer, "read", "acme/roadmap").await["decision"],
            "allow",
            "{backend}"
        );
        let (status, answer) = put(
            &server,
            "acme",
            "no-roadmap",
            "forbid (principal, action, resource == Document::\"acme/roadmap\");",
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let denied = decide(&server, &viewer, "read", "acme/roadmap").await;
        assert_eq!(denied["decision"], "deny", "{backend}: {denied}");
        assert_eq!(denied["reason"], "forbidden", "{backend}");
        assert_eq!(policy_ids(&denied), ["tenant/acme/no-roadmap"], "{backend}");

        // globex permits everything inside globex: it reaches neither acme's documents nor
        // acme's users.
        let (status, answer) = put(
            &server,
            "globex",
            "open",
            "permit (principal, action, resource);",
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let eve = user_token(&server, "eve", "globex", &[]);
        assert_eq!(
            decide(&server, &eve, "read", "globex/nda").await["decision"],
            "allow",
            "{backend}: the tenant's own open permit applies inside it"
        );
        for document in ["acme/nda", "acme/salaries"] {
            let answer = decide(&server, &eve, "read", document).await;
            assert_eq!(answer["decision"], "deny", "{backend}: {answer}");
        }
        let zed = user_token(&server, "zed", "acme", &[]);
        assert_eq!(
            decide(&server, &zed, "read", "acme/nda").await["decision"],
            "deny",
            "{backend}"
        );
    }
}

#[tokio::test]
async fn invalid_or_foreign_policies_are_refused_and_change_nothing() {
    for (backend, server) in servers_with_a_store().await {
        let refusals = [
            (
                "typo",
                "permit (principal, action == Action::\"read\", resource)\nwhen { resource.clasification == \"public\" };",
            ),
            ("syntax", "permit (principal, action, resource"),
            (
                "other-group",
                "permit (principal in Group::\"globex/legal\", action, resource);",
            ),
            (
                "other-doc",
                "permit (principal, action, resource) when { resource == Document::\"globex/nda\" };",
            ),
            (
                "unprefixed",
                "permit (principal == User::\"alice\", action, resource);",
            ),
            (
                "crossing",
                "@cross_tenant(\"support\")\npermit (principal, action, resource);",
            ),
            (
                "two",
                "permit (principal, action, resource);\npermit (principal, action, resource);",
            ),
        ];
        for (name, text) in refusals {
            let (status, answer) = put(&server, "acme", name, text).await;
            assert_eq!(status, 400, "{backend} {name}: {answer}");
            let errors = answer["errors"].as_array().cloned().unwrap_or_default();
            assert!(!errors.is_empty(), "{backend} {name}: {answer}");
            assert_eq!(
                errors[0]["file"],
                format!("tenant/acme/{name}.cedar"),
                "{backend} {name}: {answer}"
            );
        }
        // The typo is located: line 2, where the attribute is.
        let (_, answer) = put(&server, "acme", "typo", refusals[0].1).await;
        assert_eq!(answer["errors"][0]["line"], 2, "{backend}: {answer}");
        let (status, answer) = put(&server, "acme", "bad/name", LEGAL_READ).await;
        assert!(
            status == 400 || status == 404,
            "{backend}: {status} {answer}"
        );

        let (_, listed) = server
            .admin(
                Method::GET,
                "/v1/admin/tenants/acme/policies",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(
            listed["policies"],
            json!([]),
            "{backend}: nothing was stored"
        );
    }
}

/// A policy written through one replica is in force on another within a second (PostgreSQL
/// notifies; the bound is checked with a loop that stops by itself).
#[tokio::test]
async fn a_tenant_policy_is_in_force_on_a_second_postgres_replica_within_a_second() {
    let Some(url) = fresh_postgres_url().await else {
        eprintln!("note: WARDEN_TEST_POSTGRES_URL is not set; this PostgreSQL test is skipped");
        return;
    };
    let replica = |url: String| {
        TestServer::start(Setup {
            storage: Some(url),
            poll_interval_ms: 5_000,
            ..Setup::default()
        })
    };
    let writer = replica(url.clone()).await;
    let reader = replica(url).await;
    let zed = user_token(&reader, "zed", "acme", &[]);
    assert_eq!(
        decide(&reader, &zed, "read", "acme/nda").await["decision"],
        "deny"
    );
    let (status, answer) = put(&writer, "acme", "legal-read", LEGAL_READ).await;
    assert_eq!(status, 200, "{answer}");
    let written = Instant::now();
    let mut seen = None;
    while written.elapsed() < Duration::from_secs(3) {
        if decide(&reader, &zed, "read", "acme/nda").await["decision"] == "allow" {
            seen = Some(written.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = seen.expect("the second replica never applied the tenant policy");
    assert!(
        seen < Duration::from_secs(1),
        "in force on the second replica after {seen:?}"
    );
}

/// The data owner's forbids hold against a cross-tenant grant of the pack; the visitor's own
/// tenant's policies do not reach into another tenant's resources.
#[tokio::test]
async fn on_a_cross_tenant_request_only_the_resource_tenants_forbids_apply() {
    for (backend, server) in servers_with_a_store().await {
        let zed = user_token(&server, "zed", "acme", &["viewer"]);
        let before = decide(&server, &zed, "read", "public/handbook").await;
        assert_eq!(before["decision"], "allow", "{backend}: {before}");
        assert_eq!(before["reason"], "permitted_cross_tenant", "{backend}");

        // acme's forbid-everything does not read the public tenant's document.
        let (status, answer) = put(&server, "acme", "lockdown", "forbid (principal, action, resource) when { resource has classification && resource.classification == \"public\" };").await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let visiting = decide(&server, &zed, "read", "public/handbook").await;
        assert_eq!(visiting["decision"], "allow", "{backend}: {visiting}");
        assert_eq!(
            visiting["reason"], "permitted_cross_tenant",
            "{backend}: {visiting}"
        );

        // The public tenant's own forbid does.
        let (status, answer) = put(
            &server,
            "public",
            "no-handbook",
            "forbid (principal, action, resource == Document::\"public/handbook\");",
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let denied = decide(&server, &zed, "read", "public/handbook").await;
        assert_eq!(denied["decision"], "deny", "{backend}: {denied}");
        assert_eq!(
            policy_ids(&denied),
            ["tenant/public/no-handbook"],
            "{backend}"
        );
    }
}

/// A tenant forbid that fails at evaluation denies (Cedar alone would skip it and allow).
#[tokio::test]
async fn a_tenant_forbid_that_cannot_be_evaluated_denies() {
    for (backend, server) in servers_with_a_store().await {
        let vera = user_token(&server, "vera", "acme", &["viewer"]);
        assert_eq!(
            decide(&server, &vera, "read", "acme/roadmap").await["decision"],
            "allow",
            "{backend}"
        );
        let (status, answer) = put(
            &server,
            "acme",
            "overflows",
            "forbid (principal, action, resource) when { 9223372036854775807 + 1 > 0 };",
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let denied = decide(&server, &vera, "read", "acme/roadmap").await;
        assert_eq!(denied["decision"], "deny", "{backend}: {denied}");
        assert_eq!(denied["reason"], "evaluation_error", "{backend}: {denied}");
        assert_eq!(
            denied["errors"][0]["policy"], "tenant/acme/overflows",
            "{backend}: {denied}"
        );
    }
}

/// Limits: text size, entity literals, nesting (a stack overflow in Cedar's parser would end
/// the process), each refused with nothing stored.
#[tokio::test]
async fn oversized_or_deeply_nested_policies_are_refused() {
    for (backend, server) in servers_with_a_store().await {
        let long = format!(
            "permit (principal, action, resource) when {{ principal.email == \"{}\" }};",
            "x".repeat(9000)
        );
        let many: Vec<String> = (0..150).map(|n| format!("User::\"acme/u{n}\"")).collect();
        let literals = format!(
            "permit (principal, action, resource) when {{ [{}].contains(principal) }};",
            many.join(", ")
        );
        let nested = format!(
            "permit (principal, action, resource) when {{ {}true{} }};",
            "(".repeat(30_000),
            ")".repeat(30_000)
        );
        for (name, text) in [("long", long), ("literals", literals), ("nested", nested)] {
            let (status, answer) = put(&server, "acme", name, &text).await;
            assert!(
                status == 400 || status == 413,
                "{backend} {name}: {status} {answer}"
            );
        }
        let (_, listed) = server
            .admin(
                Method::GET,
                "/v1/admin/tenants/acme/policies",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(listed["policies"], json!([]), "{backend}");
        // The server is still there.
        let (status, _) = server.get("/healthz").await;
        assert_eq!(status, 200, "{backend}");
    }
}
