//! Service accounts, credentials, assertion replay and signing keys on every back end.

use warden_store::{
    AccountStatus, Credential, CredentialSecret, Offboarding, RevocationKind, ServiceAccount,
    SigningKeyRecord, StoreError,
};

use crate::support::{client, stores, tenant};

fn account(tenant: &str, client_id: &str, name: &str) -> ServiceAccount {
    ServiceAccount {
        client_id: client_id.into(),
        tenant: tenant.into(),
        name: name.into(),
        owner: format!("User::\"{tenant}/alice\""),
        purpose: "indexing".into(),
        scopes: vec!["documents:read".into()],
        token_ttl_seconds: 600,
        created_at: 100,
        created_by: "admin:test".into(),
        expires_at: 10_000,
        status: AccountStatus::Active,
        last_used_at: None,
        credentials: vec![secret(&format!("cred_{client_id}"), 100, 5_000)],
    }
}

fn secret(id: &str, created_at: i64, expires_at: i64) -> Credential {
    Credential {
        id: id.into(),
        secret: CredentialSecret::SecretDigest(format!("{id}-digest")),
        created_at,
        expires_at,
        retired_at: None,
    }
}

#[tokio::test]
async fn accounts_and_their_credentials_round_trip_per_tenant() {
    for test in stores().await {
        let store = &test.store;
        store
            .create_service_account(&account("acme", "sa_1", "indexer"))
            .await
            .unwrap();
        store
            .create_service_account(&account("globex", "sa_2", "indexer"))
            .await
            .unwrap();
        // A live name is unique within its tenant.
        let twice = store
            .create_service_account(&account("acme", "sa_3", "indexer"))
            .await;
        assert!(
            matches!(twice, Err(StoreError::Refused(_))),
            "{}",
            test.name
        );

        let acme = store.service_accounts(Some("acme"), false).await.unwrap();
        assert_eq!(acme.len(), 1, "{}", test.name);
        assert_eq!(acme[0], account("acme", "sa_1", "indexer"), "{}", test.name);
        assert_eq!(store.service_accounts(None, false).await.unwrap().len(), 2);

        // Rotation: the new secret, the old one cut to the overlap.
        store
            .add_credential(
                &tenant("acme"),
                &client("sa_1"),
                &secret("cred_2", 200, 6_000),
                Some(300),
                "admin:test",
            )
            .await
            .unwrap();
        let rotated = store
            .service_account(&client("sa_1"))
            .await
            .unwrap()
            .unwrap();
        let expiries: Vec<(String, i64)> = rotated
            .credentials
            .iter()
            .map(|c| (c.id.clone(), c.expires_at))
            .collect();
        assert_eq!(
            expiries,
            [("cred_sa_1".into(), 300), ("cred_2".into(), 6_000)],
            "{}",
            test.name
        );
        // Another tenant's admin path cannot touch it.
        let wrong = store
            .retire_credential(
                &tenant("globex"),
                &client("sa_1"),
                "cred_2",
                "admin:test",
                250,
            )
            .await;
        assert!(
            matches!(wrong, Err(StoreError::NotFound(_))),
            "{}",
            test.name
        );
        store
            .retire_credential(
                &tenant("acme"),
                &client("sa_1"),
                "cred_2",
                "admin:test",
                250,
            )
            .await
            .unwrap();

        let before = store
            .set_service_account_scopes(
                &tenant("acme"),
                &client("sa_1"),
                &["a".into(), "b".into()],
                "why",
                "admin:test",
                260,
            )
            .await
            .unwrap();
        assert_eq!(before, ["documents:read"]);
        let version = store.version().await.unwrap();
        store
            .offboard_service_account(
                &tenant("acme"),
                &client("sa_1"),
                AccountStatus::Disabled,
                &Offboarding {
                    reason: "retired",
                    actor: "admin:test",
                    now: 270,
                    revoke_before: 271,
                    revocation_expires_at: 5_000,
                },
            )
            .await
            .unwrap();
        // The disable and its client revocation are one write, visible to replicas.
        let revocations = store.revocations_since(version, 270).await.unwrap();
        assert_eq!(revocations.len(), 1, "{}", test.name);
        assert_eq!(revocations[0].kind, RevocationKind::Client);
        assert_eq!(
            (revocations[0].value.as_str(), revocations[0].revoked_at),
            ("sa_1", 271)
        );
        let disabled = store
            .service_account(&client("sa_1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(disabled.status, AccountStatus::Disabled);
        assert_eq!(disabled.scopes, ["a", "b"]);

        store
            .record_last_used(&[("sa_2".into(), 500), ("sa_2".into(), 400)])
            .await
            .unwrap();
        assert_eq!(
            store
                .service_account(&client("sa_2"))
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(500)
        );
        store
            .record_scope_usage(&[("sa_2".into(), "documents:read".into(), 600)])
            .await
            .unwrap();
        store
            .record_scope_usage(&[("sa_2".into(), "documents:read".into(), 550)])
            .await
            .unwrap();
        assert_eq!(
            store.scope_usage().await.unwrap(),
            [("sa_2".to_owned(), "documents:read".to_owned(), 600)]
        );
        let trail = store.audit_trail().await.unwrap();
        let scopes = trail
            .iter()
            .find(|r| r.action == "service_account.scopes")
            .unwrap();
        assert!(
            scopes.detail.contains("\"before\":[\"documents:read\"]"),
            "{}",
            scopes.detail
        );
    }
}

#[tokio::test]
async fn a_client_assertion_is_accepted_once() {
    for test in stores().await {
        let store = &test.store;
        assert!(
            store
                .remember_assertion(&client("sa_1"), "jti-1", 200, 100)
                .await
                .unwrap()
        );
        assert!(
            !store
                .remember_assertion(&client("sa_1"), "jti-1", 200, 150)
                .await
                .unwrap(),
            "{}",
            test.name
        );
        assert!(
            store
                .remember_assertion(&client("sa_2"), "jti-1", 200, 150)
                .await
                .unwrap()
        );
    }
}

fn key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        algorithm: "EdDSA".into(),
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        private_key_sealed: "sealed".into(),
        created_at,
        retired_at: None,
        publish_until: None,
    }
}

#[tokio::test]
async fn one_key_signs_and_a_rotation_race_has_one_winner() {
    for test in stores().await {
        let store = &test.store;
        assert!(
            store
                .rotate_signing_key(&key("k1", 100), None, 0, "warden")
                .await
                .unwrap()
        );
        // A second "first key" loses: one already signs.
        assert!(
            !store
                .rotate_signing_key(&key("k1b", 100), None, 0, "warden")
                .await
                .unwrap(),
            "{}",
            test.name
        );
        assert!(
            store
                .rotate_signing_key(&key("k2", 200), Some("k1"), 900, "warden")
                .await
                .unwrap()
        );
        // A replica that still thinks k1 signs loses the race.
        assert!(
            !store
                .rotate_signing_key(&key("k3", 210), Some("k1"), 900, "warden")
                .await
                .unwrap()
        );
        let published = store.signing_keys(500).await.unwrap();
        let kids: Vec<(&str, Option<i64>)> = published
            .iter()
            .map(|k| (k.kid.as_str(), k.retired_at))
            .collect();
        assert_eq!(kids, [("k2", None), ("k1", Some(200))], "{}", test.name);
        // Past its overlap the old key is no longer published.
        let later: Vec<String> = store
            .signing_keys(901)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert_eq!(later, ["k2"]);
    }
}

/// Admin writes that read before they write (a service account's scopes and owner, a tenant's
/// policy) all succeed when many run at once: none fails with "database is locked" on SQLite,
/// which is what happens when two deferred transactions both read and then try to write.
#[tokio::test]
async fn concurrent_read_then_write_transactions_all_commit() {
    for test in stores().await {
        let store = test.store.clone();
        store
            .create_service_account(&account("acme", "sa_busy", "busy"))
            .await
            .unwrap();
        let acme = tenant("acme");
        let sa = client("sa_busy");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24_i64 {
            let store = store.clone();
            let acme = acme.clone();
            let sa = sa.clone();
            tasks.spawn(async move {
                match i % 3 {
                    0 => store
                        .set_service_account_scopes(
                            &acme,
                            &sa,
                            &[format!("scope:{i}")],
                            "busy",
                            "admin:test",
                            100 + i,
                        )
                        .await
                        .map(|_| ()),
                    1 => store
                        .set_service_account_owner(
                            &acme,
                            &sa,
                            &format!("User::\"acme/u{i}\""),
                            "busy",
                            "admin:test",
                            100 + i,
                        )
                        .await
                        .map(|_| ()),
                    _ => store
                        .put_tenant_policy(
                            &acme,
                            &format!("p{i}"),
                            "permit(principal, action, resource);",
                            "admin:test",
                            100 + i,
                            100,
                        )
                        .await
                        .map(|_| ()),
                }
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Err(error) = done.unwrap() {
                failures.push(error.to_string());
            }
        }
        assert!(failures.is_empty(), "{}: {failures:?}", test.name);
        let audit = store.audit_trail().await.unwrap();
        let busy = audit.iter().filter(|record| record.at >= 100).count();
        assert!(busy >= 24, "{}: every write audited: {busy}", test.name);
    }
}
