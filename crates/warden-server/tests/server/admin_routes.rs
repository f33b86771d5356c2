//! Issue #26: no admin handler without an authorization extractor. Every route of the admin
//! table (`warden_server::admin_routes::ADMIN_ROUTES`, from which the router is built) is called
//! without a credential (401), with a wrong one (401), and with a credential scoped to another
//! tenant (403 for tenant and all-tenant routes); reads across tenants (the audit trail, a
//! recorded decision, the decision search) let any admin in and filter by its scope.

use reqwest::Method;
use warden_server::admin_routes::ADMIN_ROUTES;

use crate::support::{SCOPED_ADMIN_SECRET, Setup, TestServer};

/// Reads across tenants that any admin may make (each sees its own scope's records).
const READS_FOR_ANY_ADMIN: &[&str] = &[
    "/v1/admin/audit",
    "/v1/decisions/{id}",
    "/v1/admin/decisions",
];

fn concrete(path: &str) -> String {
    path.replace("{tenant}", "acme")
        .replace("{entity_type}", "User")
        .replace("{client_id}", "svc_x")
        .replace("{credential_id}", "cred_x")
        .replace("{id}", "x")
        .replace("{name}", "p")
}

#[tokio::test]
async fn every_admin_route_authenticates_and_authorizes() {
    // Two failed authentications per route, from one address: the failed-authentication
    // limit (tested in operator_controls.rs) is off here.
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: "[rate_limits]\nfailed_auth_per_minute = 0\n",
        ..Setup::default()
    })
    .await;
    assert!(
        ADMIN_ROUTES.len() >= 20,
        "the table lists every admin route"
    );
    for (method, path) in ADMIN_ROUTES {
        let method: Method = method.to_uppercase().parse().unwrap();
        let url = concrete(path);
        for secret in [None, Some("wdn_admin_not-a-credential")] {
            let (status, body) = server
                .admin(method.clone(), &url, secret, Some(&serde_json::json!({})))
                .await;
            assert_eq!(status, 401, "{method} {path} with {secret:?}: {body}");
        }
        let (status, body) = server
            .admin(
                method.clone(),
                &url,
                Some(SCOPED_ADMIN_SECRET),
                Some(&serde_json::json!({})),
            )
            .await;
        if READS_FOR_ANY_ADMIN.contains(path) {
            assert!(
                status != 401 && status != 403,
                "{method} {path}: any admin may read its own scope: {status} {body}"
            );
        } else {
            assert_eq!(
                status, 403,
                "{method} {path}: a credential for globex only may not act here: {body}"
            );
        }
    }
}
