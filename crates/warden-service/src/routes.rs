//! The route table of the gateways (`[[routes]]`): a request's method and path become an action
//! on a resource, the first matching route winning. Built once at start and checked against the
//! pack (the action and the resource type must be in its schema; a tenant-scoped resource type
//! needs the path parameter that gives the tenant). SECURITY-SENSITIVE: a path read differently
//! here than by the upstream would authorize one resource and serve another, so a path that is
//! not plainly a sequence of segments (`.` or `..`, an empty segment, an encoded `/` or `\`, a
//! control character, bad percent-encoding, a raw `#`, a `;`, a `%25` escape) is refused whatever
//! the unmatched-route default.

use percent_encoding::percent_decode_str;
use warden_config::{RouteSettings, TemplateSegment, UnmatchedRoute};
use warden_core::Pack;
use warden_store::TenantId;

use crate::entity_graph::tenant_scoped;

/// A route that does not fit the pack.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The entry's form (already checked when the configuration loaded).
    #[error("{0}")]
    Form(String),
    /// The schema has no such action or entity type, or the tenant is missing.
    #[error("routes: `{path}`: {message}")]
    Pack {
        /// The route's path template.
        path: String,
        /// What does not fit.
        message: String,
    },
}

/// Why a request's path is refused before any route is tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefused {
    /// Not an absolute path of plain segments.
    #[error("the path is not plain segments: {0}")]
    Malformed(&'static str),
    /// The tenant parameter is not a tenant id.
    #[error("the path names no valid tenant")]
    Tenant,
}

struct Route {
    method: Option<String>,
    template: String,
    segments: Vec<TemplateSegment>,
    action: String,
    resource_type: String,
    resource_id: String,
    tenant: Option<String>,
    tenant_scoped: bool,
    audience: Option<String>,
}

/// What a matched route asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// The route's path template (for the record).
    pub template: &'a str,
    /// The action name.
    pub action: &'a str,
    /// The resource's entity type.
    pub resource_type: &'a str,
    /// The resource id, qualified with the tenant for a tenant-scoped type.
    pub resource_id: String,
    /// The context token's audience for this route's upstream, when the route names one.
    pub audience: Option<&'a str>,
}

/// The checked route table.
pub struct RouteTable {
    routes: Vec<Route>,
    unmatched: UnmatchedRoute,
}

impl RouteTable {
    /// Checks `settings` against `pack` and builds the table.
    pub fn new(
        settings: &[RouteSettings],
        unmatched: UnmatchedRoute,
        pack: &Pack,
    ) -> Result<RouteTable, RouteError> {
        let mut routes = Vec::with_capacity(settings.len());
        for route in settings {
            let segments = route.segments().map_err(RouteError::Form)?;
            let refuse = |message: String| RouteError::Pack {
                path: route.path.clone(),
                message,
            };
            if let Some(schema) = pack.schema() {
                let known_action = schema
                    .actions()
                    .any(|action| action.id().unescaped() == route.action);
                if !known_action {
                    return Err(refuse(format!(
                        "the schema has no action `{}`",
                        route.action
                    )));
                }
                if pack.entity_shape(&route.resource_type).is_none() {
                    return Err(refuse(format!(
                        "the schema has no entity type `{}`",
                        route.resource_type
                    )));
                }
            } else if pack.type_name(&route.resource_type).is_none() {
                return Err(refuse(format!(
                    "`{}` is not an entity type name",
                    route.resource_type
                )));
            }
            let scoped = tenant_scoped(pack, &route.resource_type);
            if scoped && route.tenant.is_none() {
                return Err(refuse(format!(
                    "`{}` is tenant-scoped: name the path parameter that gives the tenant (tenant = \"…\")",
                    route.resource_type
                )));
            }
            let is_tenant_type = pack
                .tenancy()
                .is_some_and(|tenancy| tenancy.tenant_type.to_string() == route.resource_type);
            if !scoped && !is_tenant_type && route.tenant.is_some() {
                return Err(refuse(format!(
                    "`{}` is not tenant-scoped, so `tenant` would check nothing: leave it out, or use a tenant-scoped type",
                    route.resource_type
                )));
            }
            routes.push(Route {
                method: (route.method != "*").then(|| route.method.clone()),
                template: route.path.clone(),
                segments,
                action: route.action.clone(),
                resource_type: route.resource_type.clone(),
                resource_id: route.resource_id.clone(),
                tenant: route.tenant.clone(),
                tenant_scoped: scoped,
                audience: route.audience.clone(),
            });
        }
        Ok(RouteTable { routes, unmatched })
    }

    /// A table without routes.
    pub fn empty(unmatched: UnmatchedRoute) -> RouteTable {
        RouteTable {
            routes: Vec::new(),
            unmatched,
        }
    }

    /// What a request no route matches gets.
    pub fn unmatched(&self) -> UnmatchedRoute {
        self.unmatched
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The first route matching `method` (a `GET` route also matches `HEAD`) and `uri` (a path,
    /// with or without a query). When unmatched requests are let through, a path that matches a
    /// route but for the case of its literal segments is refused: upstreams that route without
    /// regard to case would serve the route's resource unchecked.
    pub fn find(&self, method: &str, uri: &str) -> Result<Option<RouteMatch<'_>>, PathRefused> {
        let segments = path_segments(uri)?;
        let found = self.find_segments(method, &segments)?;
        if found.is_none() && self.unmatched == UnmatchedRoute::Allow {
            let folded: Vec<String> = segments.iter().map(|s| s.to_lowercase()).collect();
            let near = self.routes.iter().any(|route| {
                route.segments.len() == folded.len()
                    && route.segments.iter().zip(&folded).all(
                        |(template, segment)| match template {
                            TemplateSegment::Literal(text) => text.to_lowercase() == *segment,
                            TemplateSegment::Parameter(_) => true,
                        },
                    )
            });
            if near {
                return Err(PathRefused::Malformed(
                    "it matches a route but for the case of its letters",
                ));
            }
        }
        Ok(found)
    }

    fn find_segments(
        &self,
        method: &str,
        segments: &[String],
    ) -> Result<Option<RouteMatch<'_>>, PathRefused> {
        for route in &self.routes {
            // HEAD is GET without the body: a GET route answers for it.
            let method_matches = route
                .method
                .as_deref()
                .is_none_or(|m| m == method || (method == "HEAD" && m == "GET"));
            if !method_matches || route.segments.len() != segments.len() {
                continue;
            }
            let mut bound: Vec<(&str, &str)> = Vec::new();
            let matches = route
                .segments
                .iter()
                .zip(segments)
                .all(|(template, segment)| match template {
                    TemplateSegment::Literal(text) => text == segment,
                    TemplateSegment::Parameter(name) => {
                        bound.push((name, segment));
                        true
                    }
                });
            if !matches {
                continue;
            }
            let value = |name: &str| {
                bound
                    .iter()
                    .find(|(bound_name, _)| *bound_name == name)
                    .map(|(_, value)| *value)
                    .unwrap_or_default()
            };
            let id = value(&route.resource_id);
            let resource_id = match &route.tenant {
                Some(tenant) => {
                    let tenant = value(tenant);
                    TenantId::parse(tenant).map_err(|_| PathRefused::Tenant)?;
                    if route.tenant_scoped {
                        format!("{tenant}/{id}")
                    } else {
                        id.to_owned()
                    }
                }
                None => id.to_owned(),
            };
            return Ok(Some(RouteMatch {
                template: &route.template,
                action: &route.action,
                resource_type: &route.resource_type,
                resource_id,
                audience: route.audience.as_deref(),
            }));
        }
        Ok(None)
    }
}

/// The decoded segments of `uri`'s path; `/` has none.
fn path_segments(uri: &str) -> Result<Vec<String>, PathRefused> {
    // A request-target never holds `#` (RFC 9112): one forwarded raw is a path the upstream
    // may read past (`/a#/../b`), so it is refused, not cut off.
    if uri.contains('#') {
        return Err(PathRefused::Malformed("it holds a raw `#`"));
    }
    let path = uri.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathRefused::Malformed("it does not start with /"));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|raw| {
            let decoded = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| PathRefused::Malformed("a segment is not UTF-8"))?;
            if raw.contains('%')
                && !raw.split('%').skip(1).all(|escape| {
                    escape
                        .get(..2)
                        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                })
            {
                return Err(PathRefused::Malformed(
                    "a percent-escape is not two hex digits",
                ));
            }
            if decoded.is_empty() || decoded == "." || decoded == ".." {
                return Err(PathRefused::Malformed("an empty, `.` or `..` segment"));
            }
            if raw.contains(';') {
                return Err(PathRefused::Malformed(
                    "a segment holds `;` (path parameters, which some upstreams drop)",
                ));
            }
            if decoded.contains('%') {
                return Err(PathRefused::Malformed(
                    "a segment is encoded twice (`%25`), which some upstreams decode again",
                ));
            }
            if decoded.contains(['/', '\\']) || decoded.chars().any(char::is_control) {
                return Err(PathRefused::Malformed(
                    "a segment holds `/`, `\\` or a control character",
                ));
            }
            Ok(decoded.into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_plain_segments_or_refused() {
        assert_eq!(path_segments("/").unwrap(), Vec::<String>::new());
        assert_eq!(
            path_segments("/a/b%20c?x=/../y").unwrap(),
            vec!["a".to_owned(), "b c".to_owned()]
        );
        for bad in [
            "a/b",
            "/a//b",
            "/a/b/",
            "/a/./b",
            "/a/../b",
            "/a/%2e%2e/b",
            "/a/%2E/b",
            "/a/b%2Fc",
            "/a/b%5Cc",
            "/a/b%00",
            "/a/%zz",
            "/a/%4",
            "/a/%ff",
            "/a/roadmap#/../salaries",
            "/a/salaries;jsessionid=1",
            "/a/%252e%252e",
        ] {
            assert!(path_segments(bad).is_err(), "{bad}");
        }
    }
}
