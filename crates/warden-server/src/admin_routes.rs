//! Every admin route in one table: the router is built from it, and the authorization test
//! (`tests/server/admin_routes.rs`) walks it, calling each route without a credential and
//! with a credential of another tenant. A route added here without an authorizing extractor
//! fails that test; a route added to the router elsewhere is not an admin route.

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::routes::{
    admin, admin_credentials, decisions, policy_diff, reviews, revocations, service_accounts,
    tenant_policies,
};
use crate::state::AppState;

/// Declares the admin routes once: the table of `(method, path)` and the router.
macro_rules! admin_routes {
    ($($path:literal => $first:ident $first_handler:path $(, $method:ident $handler:path)*;)*) => {
        /// Every admin route as `(method, path)`, in the order the router adds them.
        pub const ADMIN_ROUTES: &[(&str, &str)] = &[
            $((stringify!($first), $path), $((stringify!($method), $path),)*)*
        ];

        /// The admin routes.
        pub(crate) fn router() -> Router<AppState> {
            Router::new()
                $(.route($path, $first($first_handler)$(.$method($handler))*))*
        }
    };
}

admin_routes! {
    "/v1/admin/tenants/{tenant}/entities" => post admin::import_entities, get admin::list_entities;
    "/v1/admin/tenants/{tenant}/entities/keys" => get admin::entity_keys;
    "/v1/admin/tenants/{tenant}/entities/delete" => post admin::delete_entities;
    "/v1/admin/tenants/{tenant}/entities/{entity_type}/{id}" => delete admin::delete_entity;
    "/v1/admin/tenants/{tenant}/entities/{entity_type}/{id}/parents" => post admin::edit_parents;
    "/v1/admin/tenants/{tenant}/roles/grant" => post admin::grant_role;
    "/v1/admin/tenants/{tenant}/roles/revoke" => post admin::revoke_role;
    "/v1/admin/tenants/{tenant}/principals/status" => post admin::set_status;
    "/v1/admin/tenants/{tenant}/policies" => get tenant_policies::list;
    "/v1/admin/tenants/{tenant}/policies/{name}" => put tenant_policies::put, delete tenant_policies::delete;
    "/v1/admin/audit" => get admin::audit;
    "/v1/decisions/{id}" => get admin::decision;
    "/v1/admin/revocations" => post revocations::revoke, get revocations::list;
    "/v1/admin/tenants/{tenant}/service-accounts" => post service_accounts::create, get service_accounts::list;
    "/v1/admin/tenants/{tenant}/service-accounts/report" => get service_accounts::tenant_report;
    "/v1/admin/tenants/{tenant}/service-accounts/{client_id}" => get service_accounts::show, delete service_accounts::delete;
    "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/credentials" => post service_accounts::add_credential;
    "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/credentials/rotate" => post service_accounts::rotate_credential;
    "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/credentials/{credential_id}/retire" => post service_accounts::retire_credential;
    "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/scopes" => post service_accounts::set_scopes;
    "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/owner" => post service_accounts::transfer;
    "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/disable" => post service_accounts::disable;
    "/v1/admin/service-accounts/report" => get service_accounts::full_report;
    "/v1/admin/keys" => get service_accounts::list_keys;
    "/v1/admin/keys/rotate" => post service_accounts::rotate_key;
    "/v1/admin/credentials" => post admin_credentials::create, get admin_credentials::list;
    "/v1/admin/credentials/{id}/rotate" => post admin_credentials::rotate;
    "/v1/admin/credentials/{id}/revoke" => post admin_credentials::revoke;
    "/v1/admin/diff" => post policy_diff::diff;
    "/v1/admin/decisions" => get decisions::search;
    "/v1/admin/tenants/{tenant}/reviews" => post reviews::create, get reviews::list;
    "/v1/admin/tenants/{tenant}/reviews/{id}" => get reviews::show;
    "/v1/admin/tenants/{tenant}/reviews/{id}/items/{item}" => post reviews::decide;
    "/v1/admin/tenants/{tenant}/reviews/{id}/report" => get reviews::report;
}
