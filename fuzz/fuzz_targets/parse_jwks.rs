//! Arbitrary bytes as a JWKS document: parsing must never panic.
//! Run by hand: `cargo fuzz run parse_jwks` (see docs/tokens.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = warden_token::keys::KeySet::from_jwks(data);
});
