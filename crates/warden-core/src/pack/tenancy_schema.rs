//! Checks a pack's `[tenancy]` settings against its schema.
//!
//! The tenant guard needs every principal and resource entity to carry the tenant attribute
//! as a reference to a tenant entity. When the pack has a schema, this is checked at load
//! time: a principal or resource type without the attribute is an error (every request for
//! it would be denied), an optional attribute is a warning.

use std::collections::BTreeSet;

use cedar_policy::{Schema, SchemaFragment};

use super::sources::SchemaSource;
use serde_json::Value;

use super::diagnostics::{PackDiagnostic, Severity};
use super::manifest::TenancySettings;
use super::sources::{PackSources, SchemaFormat};
use super::{Tenancy, parse_type_name};

pub(crate) fn check(
    settings: &TenancySettings,
    schema: Option<&Schema>,
    schema_json: Option<&Value>,
    sources: &PackSources,
    diagnostics: &mut Vec<PackDiagnostic>,
) -> Option<Tenancy> {
    let manifest_path = sources
        .manifest
        .as_ref()
        .map_or("pack.toml", |file| file.path.as_str());
    let Some(tenant_type) = parse_type_name(&settings.tenant_type) else {
        diagnostics.push(PackDiagnostic::in_file(
            Severity::Error,
            manifest_path,
            format!(
                "[tenancy] tenant_type `{}` is not a valid entity type name",
                settings.tenant_type
            ),
        ));
        return None;
    };
    let tenancy = Tenancy {
        attribute: settings.attribute.clone(),
        tenant_type,
    };
    let (Some(schema), Some(schema_source)) = (schema, sources.schema.as_ref()) else {
        diagnostics.push(PackDiagnostic::in_file(
            Severity::Warning,
            manifest_path,
            "tenancy is on but the pack has no schema: tenant attributes are only checked at decision time".to_owned(),
        ));
        return Some(tenancy);
    };
    let schema_path = schema_source.file.path.as_str();
    let tenant_type_name = tenancy.tenant_type.to_string();
    if !schema.entity_types().any(|t| t == &tenancy.tenant_type) {
        diagnostics.push(PackDiagnostic::in_file(
            Severity::Error,
            schema_path,
            format!(
                "[tenancy] tenant_type `{tenant_type_name}` is not an entity type of the schema"
            ),
        ));
        return Some(tenancy);
    }
    let Some(fragment_json) = schema_json else {
        return Some(tenancy);
    };
    let scoped_types: BTreeSet<String> = schema
        .principals()
        .chain(schema.resources())
        .filter(|t| *t != &tenancy.tenant_type)
        .map(ToString::to_string)
        .collect();
    for type_name in scoped_types {
        match tenant_attribute_of(fragment_json, &type_name, &settings.attribute, &tenant_type_name) {
            AttributeCheck::Required => {}
            AttributeCheck::Optional => diagnostics.push(PackDiagnostic::in_file(
                Severity::Warning,
                schema_path,
                format!(
                    "entity type `{type_name}` declares `{}` as optional: its entities without a tenant are always denied",
                    settings.attribute
                ),
            )),
            AttributeCheck::WrongType => diagnostics.push(PackDiagnostic::in_file(
                Severity::Error,
                schema_path,
                format!(
                    "entity type `{type_name}`: attribute `{}` must be a `{tenant_type_name}` entity reference",
                    settings.attribute
                ),
            )),
            AttributeCheck::Missing => diagnostics.push(PackDiagnostic::in_file(
                Severity::Error,
                schema_path,
                format!(
                    "entity type `{type_name}` is a principal or resource but has no `{}: {tenant_type_name}` attribute; the tenant guard would deny every request for it",
                    settings.attribute
                ),
            )),
            AttributeCheck::Unknown => {}
        }
    }
    Some(tenancy)
}

enum AttributeCheck {
    Required,
    Optional,
    WrongType,
    Missing,
    /// The shape is a common type or otherwise not inspectable here; Cedar's validator and
    /// the decision-time guard still hold.
    Unknown,
}

fn tenant_attribute_of(
    fragment: &Value,
    qualified_type: &str,
    attribute: &str,
    tenant_type: &str,
) -> AttributeCheck {
    let (namespace, base_name) = match qualified_type.rsplit_once("::") {
        Some((namespace, base)) => (namespace, base),
        None => ("", qualified_type),
    };
    let Some(shape) = fragment
        .get(namespace)
        .and_then(|ns| ns.get("entityTypes"))
        .and_then(|types| types.get(base_name))
        .and_then(|entity| entity.get("shape"))
    else {
        return AttributeCheck::Missing;
    };
    if shape.get("type").and_then(Value::as_str) != Some("Record") {
        return AttributeCheck::Unknown;
    }
    let Some(declared) = shape
        .get("attributes")
        .and_then(|attrs| attrs.get(attribute))
    else {
        return AttributeCheck::Missing;
    };
    let kind = declared.get("type").and_then(Value::as_str);
    let name = declared
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let resolved = if name.contains("::") || namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}::{name}")
    };
    let names_tenant = name == tenant_type || resolved == tenant_type;
    if !matches!(kind, Some("Entity" | "EntityOrCommon")) || !names_tenant {
        return AttributeCheck::WrongType;
    }
    if declared.get("required").and_then(Value::as_bool) == Some(false) {
        AttributeCheck::Optional
    } else {
        AttributeCheck::Required
    }
}

/// The schema in Cedar's JSON form, for introspection (attributes, parents).
pub(crate) fn schema_json(source: &SchemaSource) -> Option<Value> {
    match source.format {
        SchemaFormat::CedarSchema => SchemaFragment::from_cedarschema_str(&source.file.text)
            .ok()
            .and_then(|(fragment, _)| fragment.to_json_value().ok()),
        SchemaFormat::Json => serde_json::from_str::<Value>(&source.file.text).ok(),
    }
}
