//! Properties over random input: a flipped byte anywhere in a valid token never verifies, and
//! arbitrary input never panics the verifier (the fuzz target in `fuzz/` digs deeper).

use proptest::prelude::*;

use crate::support::*;

const RS: &str = "https://idp.test";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: warden_token::Verifier,
    token: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::rsa("rsa-1");
        let verifier = runtime.block_on(verifier(
            dir.path(),
            &[(RS, "algorithms = [\"RS256\"]\n", Some(&jwks(&[&key])))],
            &[],
        ));
        let token = key.token(&claims(RS));
        assert!(
            runtime
                .block_on(verifier.verify_uncached(&token, NOW))
                .is_ok()
        );
        Fixture {
            runtime,
            verifier,
            token,
            _dir: dir,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_flipped_byte_never_verifies(position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let fixture = fixture();
        let mut bytes = fixture.token.clone().into_bytes();
        let index = position.index(bytes.len());
        bytes[index] ^= flip;
        // Not UTF-8 any more: such a header value could never reach the verifier as a &str.
        if let Ok(tampered) = String::from_utf8(bytes) {
            let result = fixture.runtime.block_on(fixture.verifier.verify_uncached(&tampered, NOW));
            prop_assert!(result.is_err(), "flip at {index} verified");
        }
    }

    #[test]
    fn arbitrary_input_is_refused_without_panicking(input in ".{0,400}") {
        let fixture = fixture();
        let result = fixture.runtime.block_on(fixture.verifier.verify_uncached(&input, NOW));
        prop_assert!(result.is_err());
    }

    #[test]
    fn arbitrary_three_part_tokens_are_refused(header in "[A-Za-z0-9_-]{0,60}", payload in "[A-Za-z0-9_-]{0,120}", signature in "[A-Za-z0-9_-]{0,90}") {
        let fixture = fixture();
        let token = format!("{header}.{payload}.{signature}");
        let result = fixture.runtime.block_on(fixture.verifier.verify_uncached(&token, NOW));
        prop_assert!(result.is_err());
    }
}
