//! `[[routes]]` and `[forward_auth]`: how a gateway's request (method and path) becomes an
//! action on a resource, and what a gateway does with a request no route matches. Checked here
//! for form (templates, parameter names, methods); checked against the policy pack's schema
//! when the server starts (`warden_service::routes`).

use serde::{Deserialize, Serialize};

/// One `[[routes]]` entry: `method` and `path` (a template such as
/// `/tenants/{tenant}/documents/{id}`) give `action` on a `resource_type` whose id is the path
/// parameter `resource_id`, in the tenant of the path parameter `tenant`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// An HTTP method (`GET`, `POST`, …) or `*` for any (default `*`).
    #[serde(default = "any_method")]
    pub method: String,
    /// The path template: literal segments and `{name}` parameters, each a whole segment.
    pub path: String,
    /// The Cedar action, e.g. `read`.
    pub action: String,
    /// The Cedar entity type of the resource, e.g. `Document`.
    pub resource_type: String,
    /// The path parameter that gives the resource id.
    pub resource_id: String,
    /// The path parameter that gives the tenant (the resource id is then qualified with it when
    /// the type is tenant-scoped).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The audience of the context token for this route's upstream, when it is not
    /// `[context_token] audience`.
    #[serde(default)]
    pub audience: Option<String>,
}

fn any_method() -> String {
    "*".to_owned()
}

/// One segment of a checked path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSegment {
    /// Must be equal to this text.
    Literal(String),
    /// Any one non-empty segment, bound to this name.
    Parameter(String),
}

impl RouteSettings {
    /// The template's segments, or why the entry is not a route.
    pub fn segments(&self) -> Result<Vec<TemplateSegment>, String> {
        let Some(rest) = self.path.strip_prefix('/') else {
            return Err(format!("routes: path `{}` must start with /", self.path));
        };
        let mut segments = Vec::new();
        let mut names = Vec::new();
        for segment in rest.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(format!(
                    "routes: path `{}` has an empty, `.` or `..` segment",
                    self.path
                ));
            }
            match segment
                .strip_prefix('{')
                .and_then(|inner| inner.strip_suffix('}'))
            {
                Some(name) => {
                    let valid = !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid || names.contains(&name) {
                        return Err(format!(
                            "routes: path `{}`: `{{{name}}}` is not a parameter name (letters, digits, _) or is used twice",
                            self.path
                        ));
                    }
                    names.push(name);
                    segments.push(TemplateSegment::Parameter(name.to_owned()));
                }
                None if segment.contains(['{', '}']) => {
                    return Err(format!(
                        "routes: path `{}`: a parameter must be a whole segment (`{segment}`)",
                        self.path
                    ));
                }
                None => segments.push(TemplateSegment::Literal(segment.to_owned())),
            }
        }
        for (what, name) in [
            ("resource_id", Some(&self.resource_id)),
            ("tenant", self.tenant.as_ref()),
        ] {
            if let Some(name) = name
                && !names.contains(&name.as_str())
            {
                return Err(format!(
                    "routes: path `{}` has no parameter `{{{name}}}` for {what}",
                    self.path
                ));
            }
        }
        Ok(segments)
    }

    /// Checks the entry's form: the method, the template, the names.
    pub fn check(&self) -> Result<(), String> {
        let method_ok = self.method == "*"
            || (!self.method.is_empty() && self.method.chars().all(|c| c.is_ascii_uppercase()));
        if !method_ok {
            return Err(format!(
                "routes: method `{}` is not an upper-case HTTP method or *",
                self.method
            ));
        }
        if self.action.trim().is_empty() || self.resource_type.trim().is_empty() {
            return Err(format!(
                "routes: path `{}` needs an action and a resource_type",
                self.path
            ));
        }
        self.segments().map(|_| ())
    }
}

/// What a gateway does with a request no route matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnmatchedRoute {
    /// 403 (`no_route`).
    #[default]
    Deny,
    /// Let it through, recorded as such (`no_route_allowed`).
    Allow,
}

/// What a gateway does with a routed request whose resource the entity data does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownResources {
    /// 403 (`resource_unknown`): an id Warden does not know may be an alias the upstream reads
    /// as a known one (`salaries;v=1`, `SALARIES`, `salaries.json`), which the policies, seeing
    /// an entity without attributes, would judge differently.
    #[default]
    Deny,
    /// Decide anyway (the policies see an entity with no attributes and no parents).
    Decide,
}

/// `[forward_auth]`: the HTTP forward-auth endpoint for nginx `auth_request`, Caddy
/// `forward_auth` and Traefik ForwardAuth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthSettings {
    /// A request no `[[routes]]` entry matches: `"deny"` (default) or `"allow"`.
    #[serde(default)]
    pub default: UnmatchedRoute,
    /// A routed resource the entity data does not know: `"deny"` (default) or `"decide"`.
    #[serde(default)]
    pub unknown_resources: UnknownResources,
}

/// `[grpc]`: the gRPC listener (Envoy `ext_authz`, `envoy.service.auth.v3.Authorization/Check`,
/// and `grpc.health.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcSettings {
    /// The address to listen on, e.g. `127.0.0.1:9191`.
    pub listen: std::net::SocketAddr,
    /// The largest request message decided on, in bytes (default 262144: Envoy sends the
    /// request's headers, the target twice, and its body only when `with_request_body` is set,
    /// which Warden does not need). A larger one, up to four times this, is a recorded 403
    /// `request_too_large`; beyond that, gRPC `OUT_OF_RANGE`.
    #[serde(default = "default_grpc_max_message")]
    pub max_message_bytes: usize,
    /// Concurrent calls per connection (default 1024; Envoy multiplexes on a few connections).
    #[serde(default = "default_grpc_concurrency")]
    pub max_concurrent_streams: u32,
}

fn default_grpc_max_message() -> usize {
    262_144
}

fn default_grpc_concurrency() -> u32 {
    1024
}

/// The longest context-token lifetime: it stands in for a full decision, so it must not outlive
/// a revocation by much.
pub const MAX_CONTEXT_TOKEN_TTL_SECONDS: u64 = 300;

/// `[context_token]`: on allow, a gateway answer carries a short-lived token signed by Warden
/// (`X-Warden-Context`) that the upstream's SDK accepts for the same action on the same resource
/// instead of a second check. Needs `[tokens]` (Warden's signing key).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContextTokenSettings {
    /// The upstream's audience (`aud`), unless the route names its own.
    pub audience: String,
    /// Lifetime in seconds (default 30, at most 300).
    #[serde(default = "default_context_ttl")]
    pub ttl_seconds: u64,
}

fn default_context_ttl() -> u64 {
    30
}

impl ContextTokenSettings {
    /// Checks the lifetime and the audience (`warden_audience`: `[tokens] audience`, which a
    /// context token must never carry, or it could be sent back to Warden as an access token).
    pub fn check(&self, warden_audience: &str, routes: &[RouteSettings]) -> Result<(), String> {
        if self.ttl_seconds == 0 || self.ttl_seconds > MAX_CONTEXT_TOKEN_TTL_SECONDS {
            return Err(format!(
                "context_token.ttl_seconds must be between 1 and {MAX_CONTEXT_TOKEN_TTL_SECONDS}"
            ));
        }
        let audiences = std::iter::once(self.audience.as_str())
            .chain(routes.iter().filter_map(|route| route.audience.as_deref()));
        for audience in audiences {
            if audience.trim().is_empty() || audience.trim() != audience {
                return Err(format!(
                    "context_token: audience `{audience}` must be a non-empty name without surrounding spaces"
                ));
            }
            if audience == warden_audience {
                return Err(format!(
                    "context_token: audience `{audience}` is Warden's own ([tokens] audience): a context token must name the upstream"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, resource_id: &str, tenant: Option<&str>) -> RouteSettings {
        RouteSettings {
            method: "GET".to_owned(),
            path: path.to_owned(),
            action: "read".to_owned(),
            resource_type: "Document".to_owned(),
            resource_id: resource_id.to_owned(),
            tenant: tenant.map(str::to_owned),
            audience: None,
        }
    }

    #[test]
    fn templates_are_literal_segments_and_whole_segment_parameters() {
        let good = route("/tenants/{tenant}/documents/{id}", "id", Some("tenant"));
        assert_eq!(
            good.segments().unwrap(),
            vec![
                TemplateSegment::Literal("tenants".into()),
                TemplateSegment::Parameter("tenant".into()),
                TemplateSegment::Literal("documents".into()),
                TemplateSegment::Parameter("id".into()),
            ]
        );
        for (path, id, tenant) in [
            ("tenants/{t}/d/{id}", "id", None),
            ("/d/{id}/", "id", None),
            ("/d/../{id}", "id", None),
            ("/d/x{id}", "id", None),
            ("/d/{id}/{id}", "id", None),
            ("/d/{id}", "nope", None),
            ("/d/{id}", "id", Some("tenant")),
            ("/d/{i-d}", "i-d", None),
        ] {
            assert!(route(path, id, tenant).check().is_err(), "{path}");
        }
        let mut lower = good.clone();
        lower.method = "get".into();
        assert!(lower.check().is_err());
    }
}
