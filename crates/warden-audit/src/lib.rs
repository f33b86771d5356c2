//! The decision log: every decision and admin action as one record, chained by hash, with
//! periodic signed checkpoints, written off the request path to a JSON-lines file or a
//! PostgreSQL table, and checked by `warden audit verify`.
//!
//! - [`record`]: the record and its line format (the hash covers the line's exact bytes).
//! - [`signing`]: the Ed25519 checkpoint key.
//! - [`log`]: the bounded queue and writer thread, durability and failure modes.
//! - [`file_sink`], [`pg_sink`]: where records go.
//! - [`verify`]: finds the first edited, deleted, inserted or reordered record.
//! - [`query`]: filters for `warden audit query` and `GET /v1/decisions/{id}`.

pub mod file_sink;
pub mod log;
pub mod pg_sink;
pub mod query;
pub mod record;
pub mod signing;
pub mod verify;

pub use log::{
    AuditLog, Durability, Explainer, LogSettings, OnFailure, Sink, Unavailable, WriterHandle,
};
pub use record::{EntityRef, Explanation, Kind, PolicyRef, Record, StoredRecord, TokenRef};
pub use signing::{PublicKey, SigningKey};
