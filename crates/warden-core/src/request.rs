//! Building a Cedar request from parsed parts, typed against the pack's schema.
//!
//! With a schema, the context JSON is read as the schema says (so `{"__extn": …}` values and
//! schema-typed strings become `decimal`, `ipaddr`, `datetime` as Cedar would type them) and the
//! request itself is validated: an action the schema does not know, or a principal type the
//! action does not apply to, is an error rather than a silent deny.

use cedar_policy::{Context, EntityUid, Request, RestrictedExpression};
use serde_json::Value;

use crate::pack::Pack;
use crate::pack::shapes::Primitive;

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
        let context = match self.primitive_context(&action, &context_json) {
            Some(context) => context,
            None => Context::from_json_value(context_json, schema.map(|schema| (schema, &action)))
                .map_err(|error| RequestError::Context(one_line(&error)))?,
        };
        Request::new(principal, action, resource, context, schema)
            .map_err(|error| RequestError::Request(one_line(&error)))
    }
}

impl Pack {
    /// The context built directly, when every attribute given is one the schema declares for
    /// this action as `String`, `Long` or `Bool` and the value is of that JSON type: the same
    /// context Cedar's schema-based JSON reading would make, without its cost. `None` sends
    /// the context through Cedar's reading (anything else, including every error case).
    /// `Request::new` then validates the context against the schema either way.
    pub(crate) fn primitive_context(&self, action: &EntityUid, context: &Value) -> Option<Context> {
        let declared = self.context_primitives.get(action)?;
        let attributes = context.as_object()?;
        let mut pairs = Vec::with_capacity(attributes.len());
        for (name, value) in attributes {
            let expression = match (declared.get(name)?, value) {
                (Primitive::String, Value::String(text)) => {
                    RestrictedExpression::new_string(text.clone())
                }
                (Primitive::Long, Value::Number(number)) => {
                    RestrictedExpression::new_long(number.as_i64()?)
                }
                (Primitive::Bool, Value::Bool(flag)) => RestrictedExpression::new_bool(*flag),
                _ => return None,
            };
            pairs.push((name.clone(), expression));
        }
        Context::from_pairs(pairs).ok()
    }
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().replace('\n', " ")
}
