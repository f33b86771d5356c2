//! The baseline of the uncached-path benchmark (issue #19): the least an axum server can do to
//! answer AuthZEN evaluations with Cedar on the same pack and entities. It parses the body,
//! builds a Cedar request (context typed by the schema), evaluates every policy of the pack
//! against entities parsed once at start, and answers `{"decision": bool}`: no
//! authentication, tenant guard, decision ids, logs, metrics or cache. Same allocator as
//! `warden` (mimalloc), so the comparison is of the work each does per request.
//!
//! Run: `cargo run --release -p warden-server --example bare_cedar -- PACK_DIR ENTITIES PORT`
//! (`bench/load.sh` starts it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark baseline"
)]

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use warden_core::Pack;
use warden_core::cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request, Schema,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Loaded {
    policies: PolicySet,
    schema: Schema,
    entities: Entities,
}

fn uid(entity_type: &str, id: &str) -> Option<EntityUid> {
    Some(EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(entity_type).ok()?,
        EntityId::new(id),
    ))
}

fn decide(loaded: &Loaded, body: &Value) -> Option<bool> {
    let principal = uid(
        body.pointer("/subject/type")?.as_str()?,
        body.pointer("/subject/id")?.as_str()?,
    )?;
    let action = uid("Action", body.pointer("/action/name")?.as_str()?)?;
    let resource = uid(
        body.pointer("/resource/type")?.as_str()?,
        body.pointer("/resource/id")?.as_str()?,
    )?;
    let context = match body.get("context") {
        Some(context) => {
            Context::from_json_value(context.clone(), Some((&loaded.schema, &action))).ok()?
        }
        None => Context::empty(),
    };
    let request = Request::new(principal, action, resource, context, Some(&loaded.schema)).ok()?;
    let response = Authorizer::new().is_authorized(&request, &loaded.policies, &loaded.entities);
    Some(response.decision() == Decision::Allow)
}

async fn evaluation(State(loaded): State<Arc<Loaded>>, Json(body): Json<Value>) -> Json<Value> {
    Json(json!({ "decision": decide(&loaded, &body).unwrap_or(false) }))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (pack_dir, entities_file, port) = (
        args.next().expect("PACK_DIR"),
        args.next().expect("ENTITIES"),
        args.next().expect("PORT"),
    );
    let pack = Pack::compile(&warden_packdir::read_pack(std::path::Path::new(&pack_dir)).unwrap())
        .unwrap()
        .pack;
    let schema = pack.schema().expect("the pack has a schema").clone();
    let entities = Entities::from_json_str(
        &std::fs::read_to_string(entities_file).unwrap(),
        Some(&schema),
    )
    .unwrap();
    let loaded = Arc::new(Loaded {
        policies: pack.policy_set().clone(),
        schema,
        entities,
    });
    let app = Router::new()
        .route("/access/v1/evaluation", post(evaluation))
        .with_state(loaded);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}
