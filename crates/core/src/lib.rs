//! recordsync's core: everything about records that needs no I/O.
//!
//! Being free of sockets, disks and clocks, this crate is where record semantics are
//! tested exhaustively and fuzzed. The engine (`recordsync-engine`) drives it.
//!
//! Crate map (the public surface is the `pub use` block below, plus the public
//! modules, each a namespace of its own):
//! - [`json`]    — how deeply client JSON may nest, and parsing it within that bound
//!   ([`JsonError`]).
//! - [`json0`]   — ShareDB's JSON OT type as npm `ot-json0` defines it: typed ops (`na`,
//!   `si`/`sd`, `li`/`ld`/`lm`, `oi`/`od`, subtypes such as `text0`), apply, transform,
//!   compose, invert, normalize; string offsets in UTF-16 code units.
//! - `js_number` — numbers as JavaScript reads, adds and writes them (json0's `na`).
//! - `name`      — which record names are acceptable: [`validate_name`], [`NameError`].
//! - [`path`]    — deepstream paths (`pets[1].fur.color`): parse ([`Path`],
//!   [`PathError`]), get, set, erase.
//! - `op`        — deepstream's write operations ([`WriteOp`], [`PathWrite`],
//!   [`OpError`]), and how they change a value.
//! - `path_json0` — each of those writes as the json0 op with the same effect
//!   ([`WriteOp::to_json0`]), so a ShareDB client can replay what a deepstream client
//!   wrote.
//! - `journal_op` — what one journal entry holds ([`JournalOp`]): a record's create, a
//!   path write, a json0 op, or its delete; its journal text, and how a ShareDB client
//!   replays it ([`ReplayOp`]); [`JournalError`].
//! - `version`   — deepstream's version rules: which write version is accepted
//!   ([`check_version`]).
//! - `record`    — a record's state ([`Record`]) and applying a write to it
//!   ([`WriteError`]).
//! - [`query`]   — ShareDB's Mongo-style queries: parsing into a typed filter
//!   ([`query::Query`], [`query::QueryError`]), matching documents (dotted paths, array
//!   membership, type-bracketed comparison, metadata fields `_id _v _type _m`), sorting in
//!   MongoDB's type order, skip, limit, count.
//! - [`listen`]  — listen patterns and the provider registry (active data providers).
//! - [`valve`]   — permission rules (deepstream's Valve): parsing, bounded evaluation,
//!   permissions files.
//! - `testing` (feature `testing`) — property-test generators other crates share: JSON
//!   documents whose numbers must come back exactly as written.

// The public modules are namespaces whose items read best qualified, or would collide
// if flattened here:
// - `json` holds `parse`, `parse_within`, `depth` and `MAX_DEPTH` (`json::parse` says
//   what a bare `parse` would not);
// - `path` holds `get`, `set`, `erase`, `Segment` and its bounds (`path::get`);
// - `json0` is a whole OT type, with its own `Op`, `apply`, `transform`, ... and `MAX_INDEX`
//   (which differs from `path::MAX_INDEX`);
// - `listen` and `valve` each have their own `Limits` and a vocabulary of a dozen types
//   that only their users need;
// - `query` has its own `Filter`, `Cond`, `Doc`, `compare` and `equal`, which read as
//   query things only when qualified;
// - `testing` is a toolbox for other crates' property tests, and only with its feature.
pub mod json;
pub mod json0;
pub mod listen;
pub mod path;
pub mod query;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod valve;

mod journal_op;
mod js_number;
mod name;
mod op;
mod path_json0;
mod record;
mod version;

pub use journal_op::{JournalError, JournalOp, ReplayOp};
pub use json::JsonError;
pub use name::{MAX_NAME_LEN, NameError, validate_name};
pub use op::{OpError, PathWrite, WriteOp};
pub use path::{Path, PathError};
pub use record::{Record, Version, WriteError};
pub use version::{VersionCheck, check_version};
