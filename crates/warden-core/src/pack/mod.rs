//! Policy packs: a schema, `*.cedar` files and an optional `pack.toml`, compiled once into a
//! ready [`Pack`] that decisions only look things up in.
//!
//! Compiling parses every file, names every policy (`@id("…")`, or Cedar's own numbering),
//! validates every policy against the schema in strict mode, checks the tenancy settings,
//! and collects every problem with file, line and column before giving up. Tests of the
//! loader are at the bottom of this file and in `tests/pack_loading.rs`.

pub(crate) mod diagnostics;
pub mod index;
mod manifest;
mod naming;
pub(crate) mod shapes;
mod sources;
mod tenancy_schema;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Effect, Entities, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, Request, Schema,
    ValidationMode, Validator,
};
use sha2::{Digest, Sha256};

pub use diagnostics::{PackDiagnostic, Severity};
pub use manifest::{LifecycleSettings, Manifest, TenancySettings};
pub use shapes::EntityShape;
pub use sources::{PackSources, SchemaFormat, SchemaSource, SourceFile};

use diagnostics::flatten_miette;
use index::{ActionMap, IndexedPolicy, PolicyIndex};

/// A pack that failed to load, with every problem found.
#[derive(Debug, thiserror::Error)]
#[error("the policy pack is invalid: {} error(s), first: {}", self.errors().count(), self.first_error())]
pub struct PackError {
    /// Every problem found, errors and warnings, in file order.
    pub diagnostics: Vec<PackDiagnostic>,
}

impl PackError {
    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &PackDiagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    fn first_error(&self) -> String {
        self.errors()
            .next()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string)
    }
}

/// Entity data (Cedar entity JSON) that does not parse or does not match the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EntityDataError(String);

/// A content hash of every file of the pack; every decision reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Revision(Arc<str>);

impl Revision {
    /// The revision as text, e.g. `3f1c9a0b7d2e4f61`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What Warden knows of one policy beyond Cedar's AST.
#[derive(Clone, Debug)]
pub struct PolicyInfo {
    /// The policy id: the `@id` annotation, or Cedar's default numbering.
    pub id: PolicyId,
    /// `@description("…")`, if any.
    pub description: Option<Arc<str>>,
    /// `@cross_tenant("reason")`, if any: the permit may cross the tenant boundary.
    pub cross_tenant: Option<Arc<str>>,
    /// Permit or forbid.
    pub effect: Effect,
    /// The file the policy is in.
    pub file: Arc<str>,
    /// The 1-based line where the policy starts.
    pub line: usize,
}

/// Tenancy settings, checked and parsed.
#[derive(Clone, Debug)]
pub struct Tenancy {
    /// The attribute that carries the tenant.
    pub attribute: String,
    /// The entity type of tenants.
    pub tenant_type: EntityTypeName,
}

/// Principal lifecycle settings, checked against the schema.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    /// The optional `String` attribute that marks a principal's status; only `"active"` is active.
    pub status_attribute: String,
}

/// A compiled pack and the warnings found while compiling it.
#[derive(Debug)]
pub struct CompiledPack {
    /// The ready pack.
    pub pack: Pack,
    /// Problems that do not reject the pack (a policy without `@id`, no schema, …).
    pub warnings: Vec<PackDiagnostic>,
}

/// A ready policy pack: parsed, named, validated. Immutable; reloading builds a new one.
#[derive(Debug)]
pub struct Pack {
    name: Option<String>,
    policy_set: PolicySet,
    schema: Option<Schema>,
    tenancy: Option<Tenancy>,
    lifecycle: Option<Lifecycle>,
    revision: Revision,
    /// What entity data is read against (schema and manifest): packs that share it read the
    /// same entity data the same way, so a policy-only reload keeps the parsed entities.
    data_fingerprint: Revision,
    policies: HashMap<PolicyId, PolicyInfo>,
    entity_shapes: HashMap<String, EntityShape>,
    /// Per action, the context attributes the schema types as `String`, `Long` or `Bool`: a
    /// context of only those is built directly instead of through Cedar's JSON reading, which
    /// costs more than the evaluation itself (see `request.rs`).
    pub(crate) context_primitives: HashMap<EntityUid, HashMap<String, shapes::Primitive>>,
    /// Per action (`Action::"read"`), the names of the context attributes the schema declares.
    context_attributes: HashMap<String, std::collections::BTreeSet<String>>,
    /// Entity type names parsed once: parsing a name runs Cedar's full parser, which would
    /// otherwise happen several times per request.
    type_names: HashMap<String, EntityTypeName>,
    /// The schema's actions and the groups each is in.
    actions: ActionMap,
    /// Every policy filed by action and scope anchor (see [`index`]): a request evaluates only
    /// the policies whose scope can hold for it, so a decision's cost does not grow with
    /// policies written for other principals, resources or actions.
    index: PolicyIndex,
    /// Per action, its open-scope policies as a ready set (they apply to every request of the
    /// action), and the entities their conditions name.
    open_sets: HashMap<EntityUid, OpenPolicies>,
    /// The same for an action the schema does not declare, or a pack without a schema.
    open_every: OpenPolicies,
    /// Every entity the policies' conditions name, sorted (a data-filter plan reads them).
    condition_literals: Vec<EntityUid>,
}

/// The open-scope policies of one action, ready to evaluate.
#[derive(Debug, Default)]
struct OpenPolicies {
    set: PolicySet,
    literals: Vec<EntityUid>,
}

impl OpenPolicies {
    fn of(
        policies: &[Arc<IndexedPolicy>],
    ) -> Result<OpenPolicies, Box<cedar_policy::PolicySetError>> {
        let mut literals: Vec<EntityUid> = policies
            .iter()
            .flat_map(|policy| policy.literals().iter().cloned())
            .collect();
        literals.sort();
        literals.dedup();
        Ok(OpenPolicies {
            set: index::policy_set_of(policies)?,
            literals,
        })
    }
}

impl Pack {
    /// Compiles a pack from its sources, reporting every problem at once.
    pub fn compile(sources: &PackSources) -> Result<CompiledPack, PackError> {
        let mut diagnostics = Vec::new();

        let manifest = match &sources.manifest {
            None => Manifest::default(),
            Some(file) => match Manifest::parse(&file.text) {
                Ok(manifest) => manifest,
                Err((message, offset)) => {
                    diagnostics.push(PackDiagnostic::at_offset(
                        Severity::Error,
                        &file.path,
                        &file.text,
                        offset,
                        message,
                    ));
                    Manifest::default()
                }
            },
        };

        let schema = sources
            .schema
            .as_ref()
            .and_then(|source| parse_schema(source, &mut diagnostics));

        let named = naming::name_policies(&sources.policy_files, &mut diagnostics);

        let mut policy_set = PolicySet::new();
        let mut policies = HashMap::with_capacity(named.len());
        for named_policy in named {
            let info = PolicyInfo {
                id: named_policy.policy.id().clone(),
                description: named_policy.policy.annotation("description").map(Arc::from),
                cross_tenant: named_policy
                    .policy
                    .annotation("cross_tenant")
                    .map(Arc::from),
                effect: named_policy.policy.effect(),
                file: Arc::from(named_policy.file.as_str()),
                line: named_policy.line,
            };
            check_annotations(&info, &mut diagnostics);
            if let Err(error) = policy_set.add(named_policy.policy) {
                diagnostics.push(PackDiagnostic::in_file(
                    Severity::Error,
                    &named_policy.file,
                    error.to_string(),
                ));
                continue;
            }
            policies.insert(info.id.clone(), info);
        }

        if let Some(schema) = &schema {
            validate_policies(schema, &policy_set, &policies, sources, &mut diagnostics);
        } else if !sources.policy_files.is_empty() && sources.manifest.is_some() {
            diagnostics.push(PackDiagnostic {
                severity: Severity::Warning,
                file: None,
                line: None,
                column: None,
                message: "the pack has no schema: policies are not validated".to_owned(),
            });
        }

        let schema_json = sources
            .schema
            .as_ref()
            .and_then(tenancy_schema::schema_json);
        let tenancy = manifest.tenancy.as_ref().and_then(|settings| {
            tenancy_schema::check(
                settings,
                schema.as_ref(),
                schema_json.as_ref(),
                sources,
                &mut diagnostics,
            )
        });
        let entity_shapes = schema_json.as_ref().map(shapes::shapes).unwrap_or_default();
        let context_primitives = schema_json
            .as_ref()
            .map(shapes::context_primitives)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(uid, attributes)| {
                uid.parse::<EntityUid>().ok().map(|uid| (uid, attributes))
            })
            .collect();
        let context_attributes = schema_json
            .as_ref()
            .map(shapes::context_attribute_names)
            .unwrap_or_default();
        let lifecycle = manifest
            .lifecycle
            .as_ref()
            .map(|settings| check_lifecycle(settings, sources, &entity_shapes, &mut diagnostics));

        if diagnostics.iter().any(PackDiagnostic::is_error) {
            return Err(PackError { diagnostics });
        }
        let pack = Pack {
            name: manifest.name,
            policy_set,
            schema,
            tenancy,
            lifecycle,
            revision: revision_of(sources),
            data_fingerprint: data_fingerprint_of(sources),
            policies,
            entity_shapes,
            context_primitives,
            context_attributes,
            type_names: HashMap::new(),
            actions: ActionMap::default(),
            index: PolicyIndex::default(),
            open_sets: HashMap::new(),
            open_every: OpenPolicies::default(),
            condition_literals: Vec::new(),
        };
        let mut pack = pack;
        pack.type_names = known_type_names(&pack);
        pack.actions = ActionMap::of(pack.schema.as_ref());
        let mut condition_literals = Vec::new();
        for policy in pack.policy_set.policies() {
            let indexed = IndexedPolicy::new(policy.clone());
            condition_literals.extend(indexed.literals().iter().cloned());
            pack.index.insert(&pack.actions, Arc::new(indexed));
        }
        condition_literals.sort();
        condition_literals.dedup();
        pack.condition_literals = condition_literals;
        let open = |policies: &[Arc<IndexedPolicy>]| {
            OpenPolicies::of(policies).map_err(|error| PackError {
                diagnostics: vec![PackDiagnostic {
                    severity: Severity::Error,
                    file: None,
                    line: None,
                    column: None,
                    message: format!("indexing the policies failed: {error}"),
                }],
            })
        };
        pack.open_every = open(pack.index.open_for(&pack.actions, None))?;
        for (action, policies) in pack.index.open_by_action() {
            pack.open_sets.insert(action.clone(), open(policies)?);
        }
        Ok(CompiledPack {
            pack,
            warnings: diagnostics,
        })
    }

    /// The pack's name from `pack.toml`, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The Cedar policy set.
    pub fn policy_set(&self) -> &PolicySet {
        &self.policy_set
    }

    /// Whether the schema declares context attribute `attribute` for the action named `action`
    /// (as a request names it, `read`); `false` without a schema.
    pub fn context_declares(&self, action: &str, attribute: &str) -> bool {
        let uid = format!("Action::{}", serde_json::Value::String(action.to_owned()));
        self.context_attributes
            .get(&uid)
            .is_some_and(|names| names.contains(attribute))
    }

    /// The schema's actions, for filing policies in a [`PolicyIndex`] of one's own.
    pub fn action_map(&self) -> &ActionMap {
        &self.actions
    }

    fn open_policies(&self, action: Option<&EntityUid>) -> &OpenPolicies {
        match action {
            Some(action) => match self.open_sets.get(action) {
                Some(open) => open,
                None if self.declares_action(action) => &EMPTY_OPEN,
                None => &self.open_every,
            },
            None => &self.open_every,
        }
    }

    fn declares_action(&self, action: &EntityUid) -> bool {
        self.actions.declares(action)
    }

    /// The entities named by the conditions of the open-scope policies of `action`: every
    /// decision of the action may read them, so its entities must include them.
    pub fn open_literals(&self, action: &EntityUid) -> &[EntityUid] {
        &self.open_policies(Some(action)).literals
    }

    /// The policy index (for data-filter plans, which select without a resource).
    pub(crate) fn policy_index(&self) -> &PolicyIndex {
        &self.index
    }

    /// Every entity the conditions of the pack's policies name, sorted.
    pub fn condition_literals(&self) -> &[EntityUid] {
        &self.condition_literals
    }

    /// The policies that can apply to a request, by the policy index (see [`index`]), given the
    /// entities it will be decided against.
    pub fn select<'a>(&'a self, request: &Request, entities: &Entities) -> Selection<'a> {
        let open = self.open_policies(request.action());
        let mut chosen = Vec::new();
        self.index
            .select_anchored(&self.actions, request, entities, &mut chosen);
        Selection {
            open: &open.set,
            chosen,
        }
    }

    /// The schema, if the pack has one.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// The tenancy settings; `None` for a plain single-tenant pack.
    pub fn tenancy(&self) -> Option<&Tenancy> {
        self.tenancy.as_ref()
    }

    /// The principal lifecycle settings (`[lifecycle]`), if the pack declares them.
    pub fn lifecycle(&self) -> Option<&Lifecycle> {
        self.lifecycle.as_ref()
    }

    /// The content hash every decision reports.
    pub fn revision(&self) -> &Revision {
        &self.revision
    }

    /// A digest of what entity data is read against (the schema and the manifest): two packs
    /// with the same one parse and validate the same entity data alike.
    pub fn data_fingerprint(&self) -> &Revision {
        &self.data_fingerprint
    }

    /// What Warden knows of a policy.
    pub fn policy_info(&self, id: &PolicyId) -> Option<&PolicyInfo> {
        self.policies.get(id)
    }

    /// Every policy, in a stable order (file, then line).
    pub fn policies(&self) -> Vec<&PolicyInfo> {
        let mut all: Vec<&PolicyInfo> = self.policies.values().collect();
        all.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        all
    }

    /// What the schema declares for an entity type (attributes, parent types); `None` without a
    /// schema or for an undeclared type.
    pub fn entity_shape(&self, entity_type: &str) -> Option<&EntityShape> {
        self.entity_shapes.get(entity_type)
    }

    /// An entity type name, parsed once per pack for the types the schema and policies name.
    pub fn type_name(&self, name: &str) -> Option<EntityTypeName> {
        match self.type_names.get(name) {
            Some(known) => Some(known.clone()),
            None => EntityTypeName::from_str(name).ok(),
        }
    }

    /// The Cedar policy behind an id.
    pub fn policy(&self, id: &PolicyId) -> Option<&Policy> {
        self.policy_set.policy(id)
    }

    /// Parses Cedar entity JSON against the pack's schema (when there is one), which also
    /// adds the schema's action entities.
    pub fn parse_entities(&self, json: &str) -> Result<Entities, EntityDataError> {
        Entities::from_json_str(json, self.schema.as_ref())
            .map_err(|error| EntityDataError(error.to_string().replace('\n', " ")))
    }
}

fn parse_schema(source: &SchemaSource, diagnostics: &mut Vec<PackDiagnostic>) -> Option<Schema> {
    let file = &source.file;
    match source.format {
        SchemaFormat::CedarSchema => match Schema::from_cedarschema_str(&file.text) {
            Ok((schema, warnings)) => {
                for warning in warnings {
                    for (message, offset) in flatten_miette(&warning) {
                        diagnostics.push(PackDiagnostic::at_offset(
                            Severity::Warning,
                            &file.path,
                            &file.text,
                            offset,
                            message,
                        ));
                    }
                }
                Some(schema)
            }
            Err(error) => {
                for (message, offset) in flatten_miette(&error) {
                    diagnostics.push(PackDiagnostic::at_offset(
                        Severity::Error,
                        &file.path,
                        &file.text,
                        offset,
                        message,
                    ));
                }
                None
            }
        },
        SchemaFormat::Json => match Schema::from_json_str(&file.text) {
            Ok(schema) => Some(schema),
            Err(error) => {
                for (message, offset) in flatten_miette(&error) {
                    diagnostics.push(PackDiagnostic::at_offset(
                        Severity::Error,
                        &file.path,
                        &file.text,
                        offset,
                        message,
                    ));
                }
                None
            }
        },
    }
}

/// With a schema, the status attribute must be declared, optional, on some entity type: a
/// required one would make every principal built from a token invalid.
fn check_lifecycle(
    settings: &LifecycleSettings,
    sources: &PackSources,
    entity_shapes: &HashMap<String, EntityShape>,
    diagnostics: &mut Vec<PackDiagnostic>,
) -> Lifecycle {
    let attribute = settings.status_attribute.as_str();
    if sources.schema.is_some() {
        let manifest_path = sources
            .manifest
            .as_ref()
            .map_or("pack.toml", |file| file.path.as_str());
        let declared: Vec<bool> = entity_shapes
            .values()
            .filter_map(|shape| shape.attributes.get(attribute).copied())
            .collect();
        if declared.is_empty() {
            diagnostics.push(PackDiagnostic::in_file(
                Severity::Error,
                manifest_path,
                format!(
                    "[lifecycle] status_attribute `{attribute}` is not declared on any entity type of the schema (declare `{attribute}?: String` on the principal types)"
                ),
            ));
        } else if declared.iter().any(|required| *required) {
            diagnostics.push(PackDiagnostic::in_file(
                Severity::Warning,
                manifest_path,
                format!(
                    "[lifecycle] status_attribute `{attribute}` is required on some entity type; principals built from tokens will not carry it, so declare it optional (`{attribute}?: String`)"
                ),
            ));
        }
    }
    Lifecycle {
        status_attribute: settings.status_attribute.clone(),
    }
}

fn check_annotations(info: &PolicyInfo, diagnostics: &mut Vec<PackDiagnostic>) {
    if let Some(reason) = &info.cross_tenant {
        let position = |message: String, severity| PackDiagnostic {
            severity,
            file: Some(info.file.to_string()),
            line: Some(info.line),
            column: Some(1),
            message,
        };
        if reason.trim().is_empty() {
            diagnostics.push(position(
                format!(
                    "policy `{}`: @cross_tenant needs a reason, e.g. @cross_tenant(\"vendor support\")",
                    info.id
                ),
                Severity::Error,
            ));
        }
        if info.effect == Effect::Forbid {
            diagnostics.push(position(
                format!(
                    "policy `{}`: @cross_tenant on a forbid has no effect (only permits can cross tenants)",
                    info.id
                ),
                Severity::Warning,
            ));
        }
    }
}

fn validate_policies(
    schema: &Schema,
    policy_set: &PolicySet,
    policies: &HashMap<PolicyId, PolicyInfo>,
    sources: &PackSources,
    diagnostics: &mut Vec<PackDiagnostic>,
) {
    let validator = Validator::new(schema.clone());
    let result = validator.validate(policy_set, ValidationMode::Strict);
    let locate = |policy_id: &PolicyId| {
        policies.get(policy_id).and_then(|info| {
            sources
                .policy_files
                .iter()
                .find(|file| file.path.as_str() == &*info.file)
        })
    };
    for error in result.validation_errors() {
        push_located(
            error,
            locate(error.policy_id()),
            Severity::Error,
            diagnostics,
        );
    }
    for warning in result.validation_warnings() {
        push_located(
            warning,
            locate(warning.policy_id()),
            Severity::Warning,
            diagnostics,
        );
    }
}

fn push_located(
    problem: &dyn miette::Diagnostic,
    file: Option<&SourceFile>,
    severity: Severity,
    diagnostics: &mut Vec<PackDiagnostic>,
) {
    for (message, offset) in flatten_miette(problem) {
        diagnostics.push(match file {
            Some(file) => {
                PackDiagnostic::at_offset(severity, &file.path, &file.text, offset, message)
            }
            None => PackDiagnostic {
                severity,
                file: None,
                line: None,
                column: None,
                message,
            },
        });
    }
}

/// SHA-256 over the manifest and the schema: what entity data depends on. The same value as
/// the compiled pack's [`Pack::data_fingerprint`], known before anything is parsed.
pub fn data_fingerprint_of(sources: &PackSources) -> Revision {
    let mut hasher = Sha256::new();
    for (label, file) in [
        ("manifest", sources.manifest.as_ref()),
        ("schema", sources.schema.as_ref().map(|schema| &schema.file)),
    ] {
        let text = file.map_or("", |file| file.text.as_str());
        for part in [label, text] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
    }
    let hex = hex::encode(hasher.finalize());
    Revision(Arc::from(hex.get(..16).unwrap_or(&hex)))
}

/// The revision: SHA-256 over every file's path and content, in a fixed order.
fn revision_of(sources: &PackSources) -> Revision {
    let mut hasher = Sha256::new();
    let mut feed = |label: &str, file: &SourceFile| {
        for part in [label, file.path.as_str(), file.text.as_str()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
    };
    if let Some(manifest) = &sources.manifest {
        feed("manifest", manifest);
    }
    if let Some(schema) = &sources.schema {
        feed("schema", &schema.file);
    }
    let mut files: Vec<&SourceFile> = sources.policy_files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for file in files {
        feed("policy", file);
    }
    let digest = hasher.finalize();
    let hex = hex::encode(digest);
    Revision(Arc::from(hex.get(..16).unwrap_or(&hex)))
}

static EMPTY_OPEN: std::sync::LazyLock<OpenPolicies> =
    std::sync::LazyLock::new(OpenPolicies::default);

/// The policies that can apply to one request: the pack's open-scope policies of its action,
/// and the anchored ones (of the pack, and of any other index added) its scope matches.
#[derive(Debug)]
pub struct Selection<'a> {
    pub(crate) open: &'a PolicySet,
    pub(crate) chosen: Vec<&'a Arc<IndexedPolicy>>,
}

impl<'a> Selection<'a> {
    /// Adds the policies of another index (a tenant's) that can apply to the request.
    pub fn add_from(
        &mut self,
        index: &'a PolicyIndex,
        actions: &ActionMap,
        request: &Request,
        entities: &Entities,
    ) {
        index.select(actions, request, entities, &mut self.chosen);
    }

    /// The entities the selected anchored policies' conditions name (the open ones' are
    /// [`Pack::open_literals`], known before the selection): a decision's entities must
    /// include them.
    pub fn literals(&self) -> impl Iterator<Item = &EntityUid> {
        self.chosen
            .iter()
            .flat_map(|policy| policy.literals().iter())
    }

    /// How many policies will be evaluated.
    pub fn len(&self) -> usize {
        self.open.num_of_policies() + self.chosen.len()
    }

    /// True when no policy can apply.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The type names a request is likely to use: the schema's entity types and action types.
fn known_type_names(pack: &Pack) -> HashMap<String, EntityTypeName> {
    let mut names = HashMap::new();
    if let Some(schema) = pack.schema() {
        for type_name in schema.entity_types() {
            names.insert(type_name.to_string(), type_name.clone());
        }
        for action in schema.actions() {
            names.insert(action.type_name().to_string(), action.type_name().clone());
        }
    }
    if let Ok(action) = EntityTypeName::from_str("Action") {
        names.entry("Action".to_owned()).or_insert(action);
    }
    names
}

/// Parses an entity type name such as `Tenant` or `App::Tenant`.
pub(crate) fn parse_type_name(name: &str) -> Option<EntityTypeName> {
    EntityTypeName::from_str(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Result<CompiledPack, PackError> {
        Pack::compile(&PackSources::from_policy_text("p.cedar", text))
    }

    #[test]
    fn default_ids_are_cedars_numbering_for_a_single_file() {
        let compiled =
            compile("permit(principal, action, resource);\nforbid(principal, action, resource);")
                .unwrap();
        let ids: Vec<String> = compiled
            .pack
            .policies()
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        assert_eq!(ids, ["policy0", "policy1"]);
        assert_eq!(compiled.warnings.len(), 2, "{:?}", compiled.warnings);
    }

    #[test]
    fn revision_changes_with_content() {
        let a = compile("permit(principal, action, resource);").unwrap();
        let b = compile("forbid(principal, action, resource);").unwrap();
        let a_again = compile("permit(principal, action, resource);").unwrap();
        assert_ne!(a.pack.revision(), b.pack.revision());
        assert_eq!(a.pack.revision(), a_again.pack.revision());
        assert_eq!(a.pack.revision().as_str().len(), 16);
    }

    #[test]
    fn cross_tenant_needs_a_reason() {
        let error =
            compile("@id(\"x\")\n@cross_tenant(\"\")\npermit(principal, action, resource);")
                .unwrap_err();
        assert!(error.to_string().contains("needs a reason"), "{error}");
    }
}
