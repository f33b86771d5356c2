//! A context of attributes the schema types as `String`, `Long` or `Bool` is built without
//! Cedar's JSON reading; it must be exactly the context that reading makes, and anything else
//! (other types, shadowed names, mismatches, unknown attributes) must go through Cedar's reading
//! with its answers and errors unchanged.

use serde_json::{Value, json};
use warden_core::cedar_policy::{Context, EntityUid};
use warden_core::parse_uid;

use crate::support::pack_from;

const SCHEMA: &str = r#"
entity User;
entity Doc;
action read appliesTo {
  principal: [User],
  resource: [Doc],
  context: { ticket?: String, hops?: Long, urgent?: Bool, origin?: ipaddr, tags?: Set<String> },
};
"#;

fn cedar_reading(
    pack: &warden_core::Pack,
    action: &EntityUid,
    context: &Value,
) -> Result<Context, String> {
    Context::from_json_value(
        context.clone(),
        pack.schema().map(|schema| (schema, action)),
    )
    .map_err(|error| error.to_string())
}

fn built(pack: &warden_core::Pack, context: &Value) -> Result<Context, String> {
    pack.request(
        parse_uid("User::\"u\"").unwrap(),
        parse_uid("Action::\"read\"").unwrap(),
        parse_uid("Doc::\"d\"").unwrap(),
        Some(context.clone()),
    )
    .map(|request| request.context().cloned().unwrap())
    .map_err(|error| error.to_string())
}

fn pairs(context: Context) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = context
        .into_iter()
        .map(|(name, value)| (name, format!("{value:?}")))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn primitive_contexts_are_the_ones_cedar_would_read() {
    let pack = pack_from(
        Some(SCHEMA),
        None,
        &[("p.cedar", "permit(principal, action, resource);")],
    )
    .unwrap();
    let action = parse_uid("Action::\"read\"").unwrap();
    for context in [
        json!({}),
        json!({"ticket": "T-1"}),
        json!({"ticket": "with \"quotes\" and \\ and ünïcode", "hops": 3, "urgent": true}),
        json!({"hops": -9_223_372_036_854_775_808_i64, "urgent": false}),
        // Not primitive: these take Cedar's reading, and must come out the same too.
        json!({"origin": "10.0.0.1"}),
        json!({"tags": ["a", "b"], "ticket": "T-2"}),
    ] {
        let expected = cedar_reading(&pack, &action, &context).unwrap();
        let actual = built(&pack, &context).unwrap();
        assert_eq!(pairs(actual), pairs(expected), "{context}");
    }
}

#[test]
fn mismatches_and_unknown_attributes_keep_cedars_errors() {
    let pack = pack_from(
        Some(SCHEMA),
        None,
        &[("p.cedar", "permit(principal, action, resource);")],
    )
    .unwrap();
    for context in [
        json!({"ticket": 7}),
        json!({"hops": "three"}),
        json!({"hops": 1.5}),
        json!({"urgent": "yes"}),
        json!({"unknown": "x"}),
    ] {
        let error = built(&pack, &context).unwrap_err();
        assert!(error.contains("context"), "{context}: {error}");
    }
}

#[test]
fn a_declared_type_named_like_a_primitive_is_not_taken_for_one() {
    // `String` here is an entity type, so `ticket: String` is an entity reference.
    let schema = r#"
entity String;
entity User;
entity Doc;
action read appliesTo { principal: [User], resource: [Doc], context: { ticket?: String } };
"#;
    let pack = pack_from(
        Some(schema),
        None,
        &[("p.cedar", "permit(principal, action, resource);")],
    )
    .unwrap();
    // A plain string is not an entity reference: refused, as Cedar's reading refuses it.
    assert!(built(&pack, &json!({"ticket": "T-1"})).is_err());
}
