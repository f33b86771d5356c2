//! Test suite files (`DIR/tests/*.yaml`) parsed into `warden_core::suite::Suite`, with the file,
//! line and column of every problem.
//!
//! The YAML crate is `saphyr`: pure Rust without `unsafe` in its own code, YAML 1.2 (so `no`,
//! `on` and `off` stay strings, which matters for ids), maintained, and it keeps a span on every
//! node. `serde_yaml` is archived; `serde_yml` is deprecated; `serde_norway` (a maintained
//! `serde_yaml` fork) reports positions only for errors raised while deserializing, not for the
//! checks made afterwards (a UID that does not parse, a duplicate case name), and wraps a C
//! parser translated to `unsafe` Rust. Walking saphyr's marked tree by hand costs a page of
//! code and gives an exact line for every error, unknown keys included.
//!
//! The format is documented in `docs/testing-policies.md`. Tests: the unit tests below and
//! `tests/cli/test_verb.rs`.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};
use warden_core::cedar_policy::EntityUid;
use warden_core::decision::Outcome;
use warden_core::suite::{Attack, Case, Expectation, Suite};
use warden_core::{parse_uid, parse_uid_json};
use warden_service::reason::Reason;

/// A suite that cannot be read as written, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteFileError {
    /// The suite file, as shown.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SuiteFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SuiteFileError {}

/// Loads the entity file a suite names (a path relative to the suite) as Cedar entity JSON.
pub type EntityFileLoader<'a> = dyn FnMut(&str) -> Result<Vec<Value>, String> + 'a;

const SUITE_KEYS: &[&str] = &["description", "entities", "statuses", "cases"];
const CASE_KEYS: &[&str] = &[
    "name",
    "principal",
    "principal_properties",
    "token_claims",
    "action",
    "resource",
    "resource_properties",
    "context",
    "expect",
    "policies",
    "reason",
    "adversarial",
];
const ADVERSARIAL_KEYS: &[&str] = &["skip", "reason"];

/// Parses one suite file. `load_entity_file` reads the entity files the suite names.
pub fn parse(
    file: &str,
    text: &str,
    load_entity_file: &mut EntityFileLoader<'_>,
) -> Result<Suite, SuiteFileError> {
    let at = |node: &MarkedYaml<'_>, message: String| SuiteFileError {
        file: file.to_owned(),
        line: node.span.start.line(),
        column: node.span.start.col() + 1,
        message,
    };
    let documents = MarkedYaml::load_from_str(text).map_err(|error| SuiteFileError {
        file: file.to_owned(),
        line: error.marker().line(),
        column: error.marker().col() + 1,
        message: format!("malformed YAML: {}", error.info()),
    })?;
    let mut documents = documents.into_iter();
    let Some(root) = documents.next() else {
        return Err(SuiteFileError {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: "the suite is empty (expected `entities` and `cases`)".to_owned(),
        });
    };
    if let Some(extra) = documents.next() {
        return Err(at(
            &extra,
            "a suite file holds one YAML document".to_owned(),
        ));
    }
    let fields = mapping(&root, "the suite", SUITE_KEYS).map_err(|(n, m)| at(n, m))?;

    let mut suite = Suite {
        name: file.to_owned(),
        entities: Vec::new(),
        entities_line: 0,
        cases: Vec::new(),
        statuses: Vec::new(),
    };
    for (key, value) in &fields {
        match *key {
            "description" => {
                string(value, "description").map_err(|(n, m)| at(n, m))?;
            }
            "entities" => {
                suite.entities_line = value.span.start.line();
                suite.entities = entities(value, load_entity_file).map_err(|(n, m)| at(n, m))?;
            }
            "statuses" => {
                suite.statuses = statuses(value).map_err(|(n, m)| at(n, m))?;
            }
            "cases" => {
                let YamlData::Sequence(items) = &value.data else {
                    return Err(at(value, "`cases` must be a list of cases".to_owned()));
                };
                let mut names = HashSet::new();
                for item in items {
                    let case = case(item).map_err(|(n, m)| at(n, m))?;
                    if !names.insert(case.name.clone()) {
                        return Err(at(
                            item,
                            format!("a case named `{}` is already in this suite", case.name),
                        ));
                    }
                    suite.cases.push(case);
                }
            }
            _ => {}
        }
    }
    if suite.cases.is_empty() {
        return Err(at(&root, "the suite has no `cases`".to_owned()));
    }
    Ok(suite)
}

type NodeError<'n, 'i> = (&'n MarkedYaml<'i>, String);

/// A mapping's entries with string keys, refusing keys not in `allowed`.
fn mapping<'n, 'i>(
    node: &'n MarkedYaml<'i>,
    what: &str,
    allowed: &[&str],
) -> Result<Vec<(&'n str, &'n MarkedYaml<'i>)>, NodeError<'n, 'i>> {
    let YamlData::Mapping(entries) = &node.data else {
        return Err((node, format!("{what} must be a mapping")));
    };
    let mut fields = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let YamlData::Value(Scalar::String(name)) = &key.data else {
            return Err((key, format!("{what}: keys must be strings")));
        };
        let name: &str = name.as_ref();
        if !allowed.contains(&name) {
            return Err((
                key,
                format!(
                    "unknown key `{name}` in {what} (expected one of: {})",
                    allowed.join(", ")
                ),
            ));
        }
        fields.push((name, value));
    }
    Ok(fields)
}

fn string<'n, 'i>(node: &'n MarkedYaml<'i>, what: &str) -> Result<String, NodeError<'n, 'i>> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => Ok(text.to_string()),
        _ => Err((node, format!("`{what}` must be a string"))),
    }
}

fn entities<'n, 'i>(
    node: &'n MarkedYaml<'i>,
    load_entity_file: &mut EntityFileLoader<'_>,
) -> Result<Vec<Value>, NodeError<'n, 'i>> {
    let items: Vec<&MarkedYaml<'i>> = match &node.data {
        YamlData::Sequence(items) => items.iter().collect(),
        YamlData::Value(Scalar::String(_)) => vec![node],
        _ => {
            return Err((
                node,
                "`entities` must be a file path or a list of file paths and Cedar entity objects"
                    .to_owned(),
            ));
        }
    };
    let mut all = Vec::new();
    for item in items {
        match &item.data {
            YamlData::Value(Scalar::String(path)) => {
                let loaded = load_entity_file(path).map_err(|message| (item, message))?;
                all.extend(loaded);
            }
            YamlData::Mapping(_) => {
                let entity = to_json(item)?;
                let uid_ok = entity
                    .get("uid")
                    .is_some_and(|uid| parse_uid_json(uid).is_ok());
                if !uid_ok {
                    return Err((
                        item,
                        "an inline entity needs a `uid` ({type: …, id: …}, or Type::\"id\")"
                            .to_owned(),
                    ));
                }
                all.push(normalize_uid(entity));
            }
            _ => {
                return Err((
                    item,
                    "each entry of `entities` is a file path or a Cedar entity object".to_owned(),
                ));
            }
        }
    }
    Ok(all)
}

/// Inline entities may write their `uid` as `Type::"id"`; Cedar's JSON wants an object.
fn normalize_uid(mut entity: Value) -> Value {
    let parsed = entity
        .get("uid")
        .filter(|uid| uid.is_string())
        .and_then(|uid| parse_uid_json(uid).ok());
    if let (Some(uid), Some(object)) = (parsed, entity.as_object_mut()) {
        object.insert(
            "uid".to_owned(),
            serde_json::json!({"type": uid.type_name().to_string(), "id": uid.id().unescaped()}),
        );
    }
    entity
}

/// `statuses:`, a mapping of principal uids to `disabled` or `deleted`: what the store would
/// say of them (`warden principal disable`), applied before any policy.
fn statuses<'n, 'i>(
    node: &'n MarkedYaml<'i>,
) -> Result<Vec<(EntityUid, String)>, NodeError<'n, 'i>> {
    let YamlData::Mapping(entries) = &node.data else {
        return Err((
            node,
            "`statuses` must be a mapping of principal uids to disabled or deleted".to_owned(),
        ));
    };
    let mut statuses = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let principal = uid(key, "statuses")?;
        let status = string(value, "statuses")?;
        if !["disabled", "deleted", "active"].contains(&status.as_str()) {
            return Err((
                value,
                format!("a status is active, disabled or deleted, not `{status}`"),
            ));
        }
        statuses.push((principal, status));
    }
    Ok(statuses)
}

/// An optional mapping of a case, as a JSON object.
fn object<'n, 'i>(
    node: Option<&'n MarkedYaml<'i>>,
    what: &str,
) -> Result<Option<serde_json::Map<String, Value>>, NodeError<'n, 'i>> {
    match node {
        None => Ok(None),
        Some(node) => match to_json(node)? {
            Value::Object(object) => Ok(Some(object)),
            _ => Err((node, format!("`{what}` must be a mapping"))),
        },
    }
}

fn case<'n, 'i>(node: &'n MarkedYaml<'i>) -> Result<Case, NodeError<'n, 'i>> {
    let fields = mapping(node, "a case", CASE_KEYS)?;
    let get = |key: &str| {
        fields
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| *value)
    };
    let required = |key: &str| get(key).ok_or((node, format!("the case has no `{key}`")));
    let name = string(required("name")?, "name")?;
    let principal = uid(required("principal")?, "principal")?;
    let action = uid(required("action")?, "action")?;
    let resource = uid(required("resource")?, "resource")?;
    let context = match get("context") {
        None => None,
        Some(node) => {
            let value = to_json(node)?;
            if !value.is_object() {
                return Err((node, "`context` must be a mapping".to_owned()));
            }
            Some(value)
        }
    };
    let expect_node = required("expect")?;
    let outcome = match string(expect_node, "expect")?.as_str() {
        "allow" => Outcome::Allow,
        "deny" => Outcome::Deny,
        other => {
            return Err((
                expect_node,
                format!("`expect` must be allow or deny, not `{other}`"),
            ));
        }
    };
    let policies = match get("policies") {
        None => None,
        Some(node) => {
            let YamlData::Sequence(items) = &node.data else {
                return Err((node, "`policies` must be a list of policy ids".to_owned()));
            };
            let mut ids = BTreeSet::new();
            for item in items {
                ids.insert(string(item, "policies")?);
            }
            Some(ids)
        }
    };
    let reason = match get("reason") {
        None => None,
        Some(node) => {
            let text = string(node, "reason")?;
            if Reason::parse(&text).is_none() {
                let codes: Vec<&str> = Reason::all().map(Reason::as_str).collect();
                return Err((
                    node,
                    format!(
                        "unknown reason code `{text}` (expected one of: {})",
                        codes.join(", ")
                    ),
                ));
            }
            Some(text)
        }
    };
    let (skip, skip_reason) = match get("adversarial") {
        None => (BTreeSet::new(), None),
        Some(node) => adversarial(node)?,
    };
    if outcome == Outcome::Deny && !skip.is_empty() {
        return Err((
            node,
            "`adversarial` applies to cases expected to allow (only they generate cases)"
                .to_owned(),
        ));
    }
    Ok(Case {
        name,
        line: node.span.start.line(),
        principal,
        action,
        resource,
        context,
        principal_properties: object(get("principal_properties"), "principal_properties")?,
        resource_properties: object(get("resource_properties"), "resource_properties")?,
        token_claims: object(get("token_claims"), "token_claims")?,
        expect: Expectation {
            outcome,
            policies,
            reason,
        },
        skip,
        skip_reason,
    })
}

fn adversarial<'n, 'i>(
    node: &'n MarkedYaml<'i>,
) -> Result<(BTreeSet<Attack>, Option<String>), NodeError<'n, 'i>> {
    let fields = mapping(node, "`adversarial`", ADVERSARIAL_KEYS)?;
    let mut skip = BTreeSet::new();
    let mut reason = None;
    for (key, value) in fields {
        if key == "reason" {
            let text = string(value, "adversarial.reason")?;
            if text.trim().is_empty() {
                return Err((value, "`adversarial.reason` must not be empty".to_owned()));
            }
            reason = Some(text);
            continue;
        }
        let YamlData::Sequence(items) = &value.data else {
            return Err((
                value,
                "`adversarial.skip` must be a list of generated case kinds".to_owned(),
            ));
        };
        for item in items {
            let text = string(item, "adversarial.skip")?;
            let names: Vec<&str> = Attack::ALL.iter().map(|attack| attack.as_str()).collect();
            skip.insert(Attack::parse(&text).ok_or((
                item,
                format!(
                    "unknown generated case kind `{text}` (expected one of: {})",
                    names.join(", ")
                ),
            ))?);
        }
    }
    if !skip.is_empty() && reason.is_none() {
        return Err((
            node,
            "skipping generated cases needs a `reason` beside `skip`".to_owned(),
        ));
    }
    Ok((skip, reason))
}

fn uid<'n, 'i>(node: &'n MarkedYaml<'i>, what: &str) -> Result<EntityUid, NodeError<'n, 'i>> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => {
            parse_uid(text).map_err(|error| (node, format!("`{what}`: {error}")))
        }
        YamlData::Mapping(_) => {
            let value = to_json(node)?;
            parse_uid_json(&value).map_err(|error| (node, format!("`{what}`: {error}")))
        }
        _ => Err((
            node,
            format!("`{what}` must be an entity UID such as User::\"acme/alice\""),
        )),
    }
}

/// A YAML node as JSON: scalars, lists and mappings with string keys; no tags or aliases.
fn to_json<'n, 'i>(node: &'n MarkedYaml<'i>) -> Result<Value, NodeError<'n, 'i>> {
    Ok(match &node.data {
        YamlData::Value(scalar) => match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(flag) => Value::Bool(*flag),
            Scalar::Integer(number) => Value::Number(Number::from(*number)),
            Scalar::FloatingPoint(number) => Number::from_f64(number.0)
                .map(Value::Number)
                .ok_or((node, "not a finite number".to_owned()))?,
            Scalar::String(text) => Value::String(text.to_string()),
        },
        YamlData::Representation(text, _, _) => Value::String(text.to_string()),
        YamlData::Sequence(items) => {
            Value::Array(items.iter().map(to_json).collect::<Result<Vec<_>, _>>()?)
        }
        YamlData::Mapping(entries) => {
            let mut object = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let YamlData::Value(Scalar::String(name)) = &key.data else {
                    return Err((key, "mapping keys must be strings".to_owned()));
                };
                object.insert(name.to_string(), to_json(value)?);
            }
            Value::Object(object)
        }
        YamlData::Tagged(..) => return Err((node, "YAML tags are not supported".to_owned())),
        YamlData::Alias(_) => return Err((node, "YAML aliases are not supported".to_owned())),
        YamlData::BadValue => return Err((node, "not a valid YAML value".to_owned())),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;

    fn parse_text(text: &str) -> Result<Suite, SuiteFileError> {
        parse("t.yaml", text, &mut |path: &str| {
            if path == "entities.json" {
                Ok(vec![serde_json::json!({
                    "uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []
                })])
            } else {
                Err(format!("{path}: no such file"))
            }
        })
    }

    const CASE: &str = "cases:\n  - name: n\n    principal: User::\"a\"\n    action: Action::\"read\"\n    resource: Doc::\"d\"\n    expect: allow\n";

    #[test]
    fn a_minimal_suite_parses() {
        let suite = parse_text(&format!("entities: entities.json\n{CASE}")).unwrap();
        assert_eq!(suite.entities.len(), 1);
        assert_eq!(suite.entities_line, 1);
        let case = suite.cases.first().unwrap();
        assert_eq!(case.line, 3);
        assert_eq!(case.expect.outcome, Outcome::Allow);
        assert_eq!(case.principal.to_string(), "User::\"a\"");
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let error = parse_text(&format!("{CASE}    colour: red\n")).unwrap_err();
        assert_eq!((error.line, error.column), (7, 5), "{error}");
        assert!(error.message.contains("unknown key `colour`"), "{error}");

        let error = parse_text(&CASE.replace("User::\"a\"", "alice")).unwrap_err();
        assert_eq!(error.line, 3, "{error}");
        assert!(
            error.message.contains("`alice` is not an entity UID"),
            "{error}"
        );

        let error = parse_text("cases: [\n").unwrap_err();
        assert!(error.message.starts_with("malformed YAML"), "{error}");

        let error = parse_text(&format!("entities: missing.json\n{CASE}")).unwrap_err();
        assert_eq!(error.to_string(), "t.yaml:1:11: missing.json: no such file");
    }

    #[test]
    fn skipping_needs_a_reason() {
        let error =
            parse_text(&format!("{CASE}    adversarial: {{skip: [role_drift]}}\n")).unwrap_err();
        assert!(error.message.contains("needs a `reason`"), "{error}");
        let suite = parse_text(&format!(
            "{CASE}    adversarial: {{skip: [role_drift], reason: owners need no role}}\n"
        ))
        .unwrap();
        let case = suite.cases.first().unwrap();
        assert!(case.skip.contains(&Attack::RoleDrift));
        let error = parse_text(&format!(
            "{CASE}    adversarial: {{skip: [roles], reason: x}}\n"
        ))
        .unwrap_err();
        assert!(
            error
                .message
                .contains("unknown generated case kind `roles`"),
            "{error}"
        );
    }
}
