//! Arbitrary bytes as a bearer token: the verifier must refuse without panicking.
//! Seeds: `fuzz/corpus/verify_token/` (HS256, secret and issuer as in the fixture below).
//! Run: `scripts/fuzz.sh` (see fuzz/README.md).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_token::{IssuerSettings, Verifier};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: Verifier,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        warden_token::install_crypto_provider();
        let settings: IssuerSettings = toml::from_str(
            "issuer = \"https://fuzz.test\"\naudiences = [\"warden\"]\nalgorithms = [\"HS256\"]\nhs256_secret_env = \"S\"\n",
        )
        .expect("fixture settings parse");
        let config = settings
            .check(&|_| Some("a-fuzzing-secret-that-is-32-bytes-long".to_owned()))
            .expect("fixture settings are valid");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let verifier = Verifier::new(vec![config], 0).expect("verifier");
        Fixture { runtime, verifier }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let fixture = fixture();
        let _ = fixture
            .runtime
            .block_on(fixture.verifier.verify_uncached(token, 1_800_000_000));
    }
});
