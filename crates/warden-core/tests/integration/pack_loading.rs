//! Loading packs: every problem at once, each with file:line:col; ids unique; warnings for
//! what the author should look at; the example pack loads clean.

use warden_core::pack::{PackSources, SourceFile};
use warden_core::{Pack, Severity};

use crate::support::{example_pack, fixture, pack_from, repo_root};

#[test]
fn an_invalid_pack_reports_every_error_with_its_position() {
    let sources = warden_packdir::read_pack(&fixture("broken_pack")).unwrap();
    let error = Pack::compile(&sources).unwrap_err();
    let errors: Vec<String> = error.errors().map(ToString::to_string).collect();
    // A parse error in one file, a type error in another, a duplicate id in a third.
    let expect = [
        ("a_parse_error.cedar:3:", "parse"),
        ("b_type_error.cedar:5:", "secret"),
        ("c_duplicate.cedar:1:1:", "duplicate policy id `typo`"),
    ];
    for (position, words) in expect {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(position) && e.contains(words)),
            "no error at {position} mentioning {words:?} in {errors:#?}"
        );
    }
    for diagnostic in error.errors() {
        assert!(
            diagnostic.file.is_some() && diagnostic.line.is_some() && diagnostic.column.is_some(),
            "{diagnostic}"
        );
    }
}

#[test]
fn two_policies_with_the_same_id_are_rejected() {
    let result = pack_from(
        None,
        None,
        &[
            (
                "a.cedar",
                "@id(\"read\")\npermit (principal, action, resource);",
            ),
            (
                "b.cedar",
                "@id(\"read\")\nforbid (principal, action, resource);",
            ),
        ],
    );
    let error = result.unwrap_err();
    assert_eq!(
        error.errors().map(ToString::to_string).collect::<Vec<_>>(),
        ["b.cedar:1:1: error: duplicate policy id `read` (first used at a.cedar:1)"]
    );
}

#[test]
fn a_default_id_cannot_be_claimed_twice() {
    let error = pack_from(
        None,
        None,
        &[("a.cedar", "permit (principal, action, resource);\n@id(\"policy0\")\nforbid (principal, action, resource);")],
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("duplicate policy id `policy0`"),
        "{error}"
    );
}

#[test]
fn schema_errors_are_located() {
    let error = pack_from(
        Some("entity User {\n  name: Strin,\n};"),
        None,
        &[(
            "a.cedar",
            "@id(\"a\") permit (principal, action, resource);",
        )],
    )
    .unwrap_err();
    let first = error.errors().next().unwrap();
    assert_eq!(first.file.as_deref(), Some("schema.cedarschema"));
    assert!(first.message.contains("Strin"), "{first}");
}

#[test]
fn manifest_typos_are_errors_naming_the_key() {
    let error = pack_from(
        None,
        Some("[tenancy]\natribute = \"tenant\"\n"),
        &[(
            "a.cedar",
            "@id(\"a\") permit (principal, action, resource);",
        )],
    )
    .unwrap_err();
    let first = error.errors().next().unwrap();
    assert_eq!(first.file.as_deref(), Some("pack.toml"));
    assert!(first.message.contains("atribute"), "{first}");
    assert_eq!(first.line, Some(2));
}

#[test]
fn templates_are_refused() {
    let error = pack_from(
        None,
        None,
        &[(
            "a.cedar",
            "@id(\"t\") permit (principal == ?principal, action, resource);",
        )],
    )
    .unwrap_err();
    assert!(error.to_string().contains("template"), "{error}");
}

#[test]
fn missing_ids_are_warnings_and_default_to_cedars_numbering() {
    let sources =
        PackSources::from_policy_text("only.cedar", "permit (principal, action, resource);");
    let compiled = Pack::compile(&sources).unwrap();
    assert_eq!(compiled.pack.policies()[0].id.to_string(), "policy0");
    assert_eq!(compiled.warnings.len(), 1);
    assert_eq!(compiled.warnings[0].severity, Severity::Warning);
    assert!(compiled.warnings[0].message.contains("no @id"));
}

#[test]
fn the_example_pack_loads_without_warnings() {
    let sources = warden_packdir::read_pack(&repo_root().join("examples/saas")).unwrap();
    let compiled = Pack::compile(&sources).unwrap();
    assert!(compiled.warnings.is_empty(), "{:#?}", compiled.warnings);
    let pack = example_pack();
    assert_eq!(pack.name(), Some("saas-documents"));
    assert!(pack.tenancy().is_some());
    let info = pack
        .policy_info(&"support-read-with-ticket".parse().unwrap())
        .unwrap();
    assert_eq!(
        info.cross_tenant.as_deref(),
        Some("vendor support under an open ticket")
    );
    assert_eq!(&*info.file, "cross-tenant.cedar");
    assert_eq!(info.line, 4);
}

#[test]
fn the_revision_is_a_hash_of_every_file() {
    let base = vec![SourceFile::new(
        "a.cedar",
        "@id(\"a\") permit (principal, action, resource);",
    )];
    let one = Pack::compile(&PackSources {
        policy_files: base.clone(),
        ..Default::default()
    })
    .unwrap();
    let same = Pack::compile(&PackSources {
        policy_files: base.clone(),
        ..Default::default()
    })
    .unwrap();
    let with_manifest = Pack::compile(&PackSources {
        policy_files: base,
        manifest: Some(SourceFile::new("pack.toml", "name = \"x\"")),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(one.pack.revision(), same.pack.revision());
    assert_ne!(one.pack.revision(), with_manifest.pack.revision());
}
