//! Integration tests of the server, started for real on 127.0.0.1:0 and driven over HTTP.
//! One binary, a module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod admin_routes;
mod audit;
mod authzen;
mod check;
mod console;
mod entities_at_scale;
mod errors;
mod ext_authz;
mod filter;
mod forward_auth;
mod limits;
mod operator_attacks;
mod operator_controls;
mod policy_diff;
mod reload;
mod reviews;
mod revocation;
mod service_accounts;
mod shutdown;
mod status_and_grants;
mod store;
mod support;
mod tenant_policies;
mod token_exchange;
