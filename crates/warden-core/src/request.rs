//! Building a Cedar request from parsed parts, typed against the pack's schema.
//!
//! With a schema, the context JSON is read as the schema says (so `{"__extn": …}` values and
//! schema-typed strings become `decimal`, `ipaddr`, `datetime` as Cedar would type them) and the
//! request itself is validated: an action the schema does not know, or a principal type the
//! action does not apply to, is an error rather than a silent deny.

use cedar_policy::{Context, EntityUid, Request};
use serde_json::Value;

use crate::pack::Pack;

/// A request that cannot be evaluated as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The context is not a JSON object, or does not match the schema.
    #[error("invalid context: {0}")]
    Context(String),
    /// The request does not match the schema (unknown action, wrong entity type, …).
    #[error("invalid request: {0}")]
    Request(String),
}

impl Pack {
    /// Builds a request for this pack. `context` of `None` is the empty context.
    pub fn request(
        &self,
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        context: Option<Value>,
    ) -> Result<Request, RequestError> {
        let Some(context_json) = context else {
            // No context: the empty one, still checked against the schema by `Request::new`.
            return Request::new(principal, action, resource, Context::empty(), self.schema())
                .map_err(|error| RequestError::Request(one_line(&error)));
        };
        if !context_json.is_object() {
            return Err(RequestError::Context(format!(
                "the context must be a JSON object, not {context_json}"
            )));
        }
        let schema = self.schema();
        let context =
            Context::from_json_value(context_json, schema.map(|schema| (schema, &action)))
                .map_err(|error| RequestError::Context(one_line(&error)))?;
        Request::new(principal, action, resource, context, schema)
            .map_err(|error| RequestError::Request(one_line(&error)))
    }
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().replace('\n', " ")
}
