//! The attack suite: each forged, tampered, misdirected or malformed token is refused with the
//! right reason code; the valid token is accepted. One test per attack family.

use serde_json::{Value, json};
use warden_token::{TokenReason, Verifier};

use crate::support::*;

const RS: &str = "https://idp.test";
const ES: &str = "https://ec.test";
const ED: &str = "https://ed.test";
const HS: &str = "https://hs.test";
const TYPED: &str = "https://typed.test";
const HS_SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!!";

struct Suite {
    verifier: Verifier,
    rsa: TestKey,
    ec: TestKey,
    ed: TestKey,
    hmac: TestKey,
    attacker: TestKey,
    _dir: tempfile::TempDir,
}

const MAPPING: &str = "[claims]\ntenant = \"org_id\"\nroles = \"roles\"\n";

async fn suite() -> Suite {
    install();
    let dir = tempfile::tempdir().unwrap();
    let rsa = TestKey::rsa("rsa-1");
    let ec = TestKey::ec("ec-1");
    let ed = TestKey::ed("ed-1");
    let hmac = TestKey::hmac(HS_SECRET.as_bytes());
    let attacker = TestKey::rsa("rsa-1");
    let rs_jwks = jwks(&[&rsa]);
    let ec_jwks = jwks(&[&ec]);
    let ed_jwks = jwks(&[&ed]);
    let rs_extra = format!("algorithms = [\"RS256\"]\n{MAPPING}");
    let typed_extra = format!("algorithms = [\"RS256\"]\ntoken_type = \"at+jwt\"\n{MAPPING}");
    let verifier = verifier(
        dir.path(),
        &[
            (RS, &rs_extra, Some(&rs_jwks)),
            (ES, "algorithms = [\"ES256\"]\n", Some(&ec_jwks)),
            (ED, "algorithms = [\"EdDSA\"]\n", Some(&ed_jwks)),
            (
                HS,
                "algorithms = [\"HS256\"]\nhs256_secret_env = \"HS_SECRET\"\n",
                None,
            ),
            (TYPED, &typed_extra, Some(&rs_jwks)),
        ],
        &[("HS_SECRET", HS_SECRET)],
    )
    .await;
    Suite {
        verifier,
        rsa,
        ec,
        ed,
        hmac,
        attacker,
        _dir: dir,
    }
}

async fn refused(suite: &Suite, token: &str) -> TokenReason {
    match suite.verifier.verify_uncached(token, NOW).await {
        Ok(verified) => panic!("token accepted: {:?}", verified.claims),
        Err(error) => error.reason,
    }
}

fn header(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "kid": kid, "typ": "JWT"})
}

#[tokio::test]
async fn valid_tokens_of_every_algorithm_are_accepted_and_mapped() {
    let suite = suite().await;
    let verified = suite
        .verifier
        .verify(&suite.rsa.token(&claims(RS)), NOW)
        .await
        .unwrap();
    assert_eq!(verified.principal.uid_string(), r#"User::"acme/alice""#);
    assert_eq!(verified.principal.roles, ["editor"]);
    assert_eq!(
        verified.principal.scopes,
        ["documents:read", "documents:write"]
    );
    assert_eq!(
        verified.jti.as_ref().map(warden_token::Jti::as_str),
        Some("j-1")
    );
    for (key, issuer) in [(&suite.ec, ES), (&suite.ed, ED), (&suite.hmac, HS)] {
        let verified = suite
            .verifier
            .verify_uncached(&key.token(&claims(issuer)), NOW)
            .await;
        assert!(verified.is_ok(), "{issuer}: {verified:?}");
    }
    let typed = suite.rsa.token_raw(
        &json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+JWT"}).to_string(),
        &claims(TYPED).to_string(),
    );
    assert!(suite.verifier.verify_uncached(&typed, NOW).await.is_ok());
}

#[tokio::test]
async fn alg_none_in_every_casing_is_refused() {
    let suite = suite().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = format!(
            "{}.{}.",
            b64(header(alg, "rsa-1").to_string().as_bytes()),
            b64(claims(RS).to_string().as_bytes())
        );
        assert_eq!(
            refused(&suite, &token).await,
            TokenReason::AlgNotAllowed,
            "{alg}"
        );
    }
}

#[tokio::test]
async fn key_confusion_hs256_with_the_rsa_public_key_is_refused() {
    let suite = suite().await;
    // The attacker knows the issuer's public key and uses its bytes as an HMAC secret.
    let public_jwk = suite.rsa.jwk().to_string();
    let confused = TestKey::hmac(public_jwk.as_bytes());
    let token = confused.token_raw(
        &header("HS256", "rsa-1").to_string(),
        &claims(RS).to_string(),
    );
    assert_eq!(refused(&suite, &token).await, TokenReason::AlgNotAllowed);
}

#[tokio::test]
async fn another_algorithm_than_the_issuer_allows_is_refused() {
    let suite = suite().await;
    let token = suite.ed.token_raw(
        &header("EdDSA", "rsa-1").to_string(),
        &claims(RS).to_string(),
    );
    assert_eq!(refused(&suite, &token).await, TokenReason::AlgNotAllowed);
    let unknown = suite.rsa.token_raw(
        &header("RS1024", "rsa-1").to_string(),
        &claims(RS).to_string(),
    );
    assert_eq!(refused(&suite, &unknown).await, TokenReason::AlgNotAllowed);
}

#[tokio::test]
async fn kids_pointing_nowhere_are_refused() {
    let suite = suite().await;
    for kid in [
        "nope",
        "../../../../etc/passwd",
        "' OR '1'='1' --",
        "",
        "rsa-1\u{0}",
    ] {
        let token = suite
            .rsa
            .token_raw(&header("RS256", kid).to_string(), &claims(RS).to_string());
        assert_eq!(
            refused(&suite, &token).await,
            TokenReason::KeyUnknown,
            "{kid:?}"
        );
    }
}

#[tokio::test]
async fn keys_embedded_in_the_header_are_never_used() {
    let suite = suite().await;
    let attacker_kid = TestKey::rsa("evil");
    for field in ["jwk", "jku", "x5u", "x5c"] {
        let value = match field {
            "jwk" => attacker_kid.jwk(),
            "x5c" => json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
            _ => json!("https://attacker.example/keys.json"),
        };
        // With the attacker's own kid: no such key.
        let mut with_kid = header("RS256", "evil");
        with_kid[field] = value.clone();
        let token = attacker_kid.token_raw(&with_kid.to_string(), &claims(RS).to_string());
        assert_eq!(
            refused(&suite, &token).await,
            TokenReason::KeyUnknown,
            "{field} with the attacker's kid"
        );
        // With the issuer's kid: the issuer's key does not verify the attacker's signature.
        let mut with_our_kid = header("RS256", "rsa-1");
        with_our_kid[field] = value;
        let token = suite
            .attacker
            .token_raw(&with_our_kid.to_string(), &claims(RS).to_string());
        assert_eq!(
            refused(&suite, &token).await,
            TokenReason::SignatureInvalid,
            "{field} with our kid"
        );
    }
}

#[tokio::test]
async fn stripped_foreign_and_zero_signatures_are_refused() {
    let suite = suite().await;
    let valid = suite.rsa.token(&claims(RS));
    let stripped = &valid[..valid.rfind('.').unwrap() + 1];
    assert_eq!(
        refused(&suite, stripped).await,
        TokenReason::SignatureInvalid
    );
    // Another key published under the same kid elsewhere.
    let foreign = suite.attacker.token(&claims(RS));
    assert_eq!(
        refused(&suite, &foreign).await,
        TokenReason::SignatureInvalid
    );
    // CVE-2022-21449 ("psychic signatures"): r = s = 0.
    let ec_token = suite.ec.token(&claims(ES));
    let zero = format!(
        "{}.{}",
        &ec_token[..ec_token.rfind('.').unwrap()],
        b64(&[0u8; 64])
    );
    assert_eq!(refused(&suite, &zero).await, TokenReason::SignatureInvalid);
    // A wrong HMAC secret.
    let wrong_secret = TestKey::hmac(b"another-secret-that-is-long-enough-too!!");
    assert_eq!(
        refused(&suite, &wrong_secret.token(&claims(HS))).await,
        TokenReason::SignatureInvalid
    );
}

#[tokio::test]
async fn time_claims_are_checked_with_leeway() {
    let suite = suite().await;
    let cases = [
        ("exp", json!(NOW - 31), TokenReason::Expired),
        ("nbf", json!(NOW + 31), TokenReason::NotYetValid),
        ("iat", json!(NOW + 31), TokenReason::NotYetValid),
        ("exp", json!("tomorrow"), TokenReason::ClaimInvalid),
    ];
    for (field, value, reason) in cases {
        let token = suite
            .rsa
            .token(&claims_with(RS, field, Some(value.clone())));
        assert_eq!(refused(&suite, &token).await, reason, "{field} = {value}");
    }
    // Within the 30 s leeway all three pass.
    for (field, value) in [("exp", NOW - 29), ("nbf", NOW + 29), ("iat", NOW + 29)] {
        let token = suite.rsa.token(&claims_with(RS, field, Some(json!(value))));
        assert!(
            suite.verifier.verify_uncached(&token, NOW).await.is_ok(),
            "{field} = {value}"
        );
    }
    let fractional = suite
        .rsa
        .token(&claims_with(RS, "exp", Some(json!(NOW as f64 + 0.5))));
    assert!(
        suite
            .verifier
            .verify_uncached(&fractional, NOW)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn audience_issuer_and_required_claims_are_enforced() {
    let suite = suite().await;
    let cases = [
        (
            claims_with(RS, "aud", Some(json!("someone-else"))),
            TokenReason::AudienceMismatch,
        ),
        (
            claims_with(RS, "aud", Some(json!(["a", "b"]))),
            TokenReason::AudienceMismatch,
        ),
        (claims_with(RS, "aud", None), TokenReason::AudienceMismatch),
        (
            claims_with(RS, "aud", Some(json!(["warden", 5]))),
            TokenReason::ClaimInvalid,
        ),
        (
            claims_with(RS, "iss", Some(json!("https://evil.test"))),
            TokenReason::IssuerUnknown,
        ),
        (
            claims_with(RS, "iss", Some(json!(5))),
            TokenReason::IssuerUnknown,
        ),
        (claims_with(RS, "iss", None), TokenReason::IssuerUnknown),
        (claims_with(RS, "exp", None), TokenReason::ClaimMissing),
        (claims_with(RS, "sub", None), TokenReason::ClaimMissing),
        (claims_with(RS, "org_id", None), TokenReason::ClaimMissing),
        (
            claims_with(RS, "roles", Some(json!(7))),
            TokenReason::ClaimInvalid,
        ),
    ];
    for (claims, reason) in cases {
        assert_eq!(
            refused(&suite, &suite.rsa.token(&claims)).await,
            reason,
            "{claims}"
        );
    }
    let array_with_ours =
        suite
            .rsa
            .token(&claims_with(RS, "aud", Some(json!(["other", "warden"]))));
    assert!(
        suite
            .verifier
            .verify_uncached(&array_with_ours, NOW)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn crit_and_type_are_enforced() {
    let suite = suite().await;
    let mut with_crit = header("RS256", "rsa-1");
    with_crit["crit"] = json!(["exp-ext"]);
    with_crit["exp-ext"] = json!(true);
    let token = suite
        .rsa
        .token_raw(&with_crit.to_string(), &claims(RS).to_string());
    assert_eq!(refused(&suite, &token).await, TokenReason::CritUnsupported);

    let untyped = suite.rsa.token(&claims(TYPED));
    assert_eq!(refused(&suite, &untyped).await, TokenReason::TypeInvalid);
    let id_token = suite.rsa.token_raw(
        &json!({"alg": "RS256", "kid": "rsa-1"}).to_string(),
        &claims(TYPED).to_string(),
    );
    assert_eq!(refused(&suite, &id_token).await, TokenReason::TypeInvalid);
}

#[tokio::test]
async fn malformed_and_oversized_tokens_are_refused() {
    let suite = suite().await;
    let valid = suite.rsa.token(&claims(RS));
    let parts: Vec<&str> = valid.split('.').collect();
    assert_eq!(refused(&suite, "").await, TokenReason::Missing);
    assert_eq!(refused(&suite, "abc").await, TokenReason::Malformed);
    assert_eq!(
        refused(&suite, &format!("{}.{}", parts[0], parts[1])).await,
        TokenReason::Malformed
    );
    // A JWE has five parts.
    assert_eq!(
        refused(&suite, &format!("{valid}.e30.e30")).await,
        TokenReason::Malformed
    );
    // Bad base64url: padding, a foreign alphabet, garbage.
    assert_eq!(
        refused(&suite, &format!("{}=.{}.{}", parts[0], parts[1], parts[2])).await,
        TokenReason::Malformed
    );
    assert_eq!(
        refused(&suite, &format!("{}.{}+/.{}", parts[0], parts[1], parts[2])).await,
        TokenReason::Malformed
    );
    assert_eq!(refused(&suite, "!!!.???.###").await, TokenReason::Malformed);
    // Duplicate JSON keys in the payload and in the header.
    let duplicate_sub = format!(
        r#"{{"iss":"{RS}","sub":"alice","sub":"admin","aud":"warden","exp":{},"org_id":"acme"}}"#,
        NOW + 60
    );
    assert_eq!(
        refused(
            &suite,
            &suite
                .rsa
                .token_raw(&header("RS256", "rsa-1").to_string(), &duplicate_sub)
        )
        .await,
        TokenReason::Malformed
    );
    let duplicate_alg = r#"{"alg":"HS256","alg":"RS256","kid":"rsa-1"}"#;
    assert_eq!(
        refused(
            &suite,
            &suite.rsa.token_raw(duplicate_alg, &claims(RS).to_string())
        )
        .await,
        TokenReason::Malformed
    );
    // Not JSON objects.
    assert_eq!(
        refused(&suite, &suite.rsa.token_raw("[1]", &claims(RS).to_string())).await,
        TokenReason::Malformed
    );
    assert_eq!(
        refused(
            &suite,
            &suite
                .rsa
                .token_raw(&header("RS256", "rsa-1").to_string(), "\"x\"")
        )
        .await,
        TokenReason::Malformed
    );
    // Oversized: past the issuer's 8192-byte limit.
    let mut big = claims(RS);
    big["padding"] = json!("x".repeat(9000));
    assert_eq!(
        refused(&suite, &suite.rsa.token(&big)).await,
        TokenReason::TooLarge
    );
}

#[tokio::test]
async fn the_cache_answers_repeats_and_never_outlives_exp() {
    let suite = suite().await;
    let token = suite
        .rsa
        .token(&claims_with(RS, "exp", Some(json!(NOW + 100))));
    let first = suite.verifier.verify(&token, NOW).await.unwrap();
    let second = suite.verifier.verify(&token, NOW + 1).await.unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &second),
        "the second call is a cache hit"
    );
    // After exp + leeway the cached entry is gone and the token is refused.
    assert_eq!(
        suite
            .verifier
            .verify(&token, NOW + 131)
            .await
            .unwrap_err()
            .reason,
        TokenReason::Expired
    );
}

/// The verified token names the key that verified it as the key set names it: a JWKS key by
/// its `kid` (also when the header names none) and its RFC 7638 thumbprint; a shared secret by
/// nothing, whatever `kid` the token's header writes (a key revocation of that header value
/// would otherwise be dodged by writing another one).
#[tokio::test]
async fn the_verified_token_names_its_key_as_the_key_set_does() {
    let suite = suite().await;
    let verified = suite
        .verifier
        .verify_uncached(&suite.rsa.token(&claims(RS)), NOW)
        .await
        .unwrap();
    assert_eq!(verified.kid.as_deref(), Some("rsa-1"));
    assert_eq!(verified.key_thumbprint.as_ref().map(String::len), Some(43));
    let chosen_kid = suite.hmac.token_raw(
        &json!({"alg": "HS256", "kid": "anything-the-holder-likes"}).to_string(),
        &claims(HS).to_string(),
    );
    let verified = suite
        .verifier
        .verify_uncached(&chosen_kid, NOW)
        .await
        .unwrap();
    assert_eq!(verified.kid, None);
    assert_eq!(verified.key_thumbprint, None);
}
