//! Arbitrary bytes as a JWKS document: parsing must never panic.
//! Seeds: `fuzz/corpus/parse_jwks/`. Run: `scripts/fuzz.sh` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = warden_token::keys::KeySet::from_jwks(data);
});
