//! `pack.toml`: the pack's name, its tenancy settings and its principal lifecycle.
//!
//! A pack without a manifest, or with a manifest without `[tenancy]`, is plain single-tenant
//! Cedar: it decides exactly as Cedar does. Unknown keys are errors, so a typo such as
//! `[tennancy]` cannot silently switch the tenant guard off.

use serde::Deserialize;

/// The manifest as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// A human name for the pack, shown by `warden validate`.
    #[serde(default)]
    pub name: Option<String>,
    /// Turns the tenant guard on.
    #[serde(default)]
    pub tenancy: Option<TenancySettings>,
    /// How a disabled principal appears in the entity data (used by `warden test`).
    #[serde(default)]
    pub lifecycle: Option<LifecycleSettings>,
}

/// `[lifecycle]`: how the entity data marks a principal that may no longer act.
///
/// The store keeps disabled principals (their roles and history stay, so re-enabling restores
/// them) and marks them with a string attribute; anything but `"active"` is not active. The
/// policies are expected to forbid such principals, and `warden test` generates a "disabled"
/// case for every expected allow to check that they do.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSettings {
    /// The optional `String` attribute of principals that carries the status, e.g. `status`.
    pub status_attribute: String,
}

/// `[tenancy]`: which attribute carries the tenant, and of which entity type it is.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenancySettings {
    /// The attribute every principal and resource entity carries, e.g. `tenant`.
    pub attribute: String,
    /// The entity type of tenants (default `Tenant`). An entity of this type is its own tenant.
    #[serde(default = "default_tenant_type")]
    pub tenant_type: String,
}

fn default_tenant_type() -> String {
    "Tenant".to_owned()
}

impl Manifest {
    /// Parses `pack.toml` text. The error message names the offending key.
    pub fn parse(text: &str) -> Result<Self, (String, Option<usize>)> {
        match toml::from_str::<Self>(text) {
            Ok(manifest) => {
                if let Some(tenancy) = &manifest.tenancy
                    && tenancy.attribute.trim().is_empty()
                {
                    return Err(("[tenancy] attribute must not be empty".to_owned(), None));
                }
                if let Some(lifecycle) = &manifest.lifecycle
                    && lifecycle.status_attribute.trim().is_empty()
                {
                    return Err((
                        "[lifecycle] status_attribute must not be empty".to_owned(),
                        None,
                    ));
                }
                Ok(manifest)
            }
            Err(error) => Err((
                error.message().to_owned(),
                error.span().map(|span| span.start),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenancy_defaults_its_type() {
        let manifest =
            Manifest::parse("name = \"x\"\n[tenancy]\nattribute = \"tenant\"\n").unwrap();
        let tenancy = manifest.tenancy.unwrap();
        assert_eq!(tenancy.attribute, "tenant");
        assert_eq!(tenancy.tenant_type, "Tenant");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let (message, offset) =
            Manifest::parse("[tennancy]\nattribute = \"tenant\"\n").unwrap_err();
        assert!(message.contains("tennancy"), "{message}");
        assert!(offset.is_some());
    }

    #[test]
    fn lifecycle_names_the_status_attribute() {
        let manifest = Manifest::parse("[lifecycle]\nstatus_attribute = \"status\"\n").unwrap();
        assert_eq!(manifest.lifecycle.unwrap().status_attribute, "status");
        assert!(Manifest::parse("[lifecycle]\nstatus_attribute = \" \"\n").is_err());
        assert!(Manifest::parse("[lifecycle]\nstatus = \"status\"\n").is_err());
    }

    #[test]
    fn no_manifest_means_no_tenancy() {
        let manifest = Manifest::parse("").unwrap();
        assert!(manifest.tenancy.is_none());
    }
}
