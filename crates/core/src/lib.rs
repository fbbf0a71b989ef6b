//! recordsync's core: everything about records that needs no I/O.
//!
//! Being free of sockets, disks and clocks, this crate is where record semantics are
//! tested exhaustively and fuzzed. The engine (`recordsync-engine`) drives it.
//!
//! Module map:
//! - [`json`]    — how deeply client JSON may nest, and parsing it within that bound.
//! - [`json0`]   — ShareDB's JSON OT type as npm `ot-json0` defines it: typed ops (`na`,
//!   `si`/`sd`, `li`/`ld`/`lm`, `oi`/`od`, subtypes such as `text0`), apply, transform,
//!   compose, invert, normalize; string offsets in UTF-16 code units.
//! - [`js_number`] — numbers as JavaScript reads, adds and writes them.
//! - [`name`]    — which record names are acceptable.
//! - [`path`]    — deepstream paths (`pets[1].fur.color`): parse, get, set, erase.
//! - [`op`]      — deepstream's write operations (path writes, whole-value updates), and
//!   how they change a value.
//! - [`path_json0`] — each of those writes as the json0 op with the same effect, so a
//!   ShareDB client can replay what a deepstream client wrote.
//! - [`journal_op`] — what one journal entry holds: a record's create, a path write, a
//!   json0 op, or its delete; its journal text, and how a ShareDB client replays it.
//! - [`version`] — deepstream's version rules: which write version is accepted.
//! - [`record`]  — a record's state (version, data, timestamps) and applying a write to it.
//! - [`listen`]  — listen patterns and the provider registry (active data providers).
//! - [`valve`]   — permission rules (deepstream's Valve): parsing, bounded evaluation,
//!   permissions files.
//! - `testing` (feature `testing`) — property-test generators other crates share: JSON
//!   documents whose numbers must come back exactly as written.

pub mod journal_op;
pub mod js_number;
pub mod json;
pub mod json0;
pub mod listen;
pub mod name;
pub mod op;
pub mod path;
pub mod path_json0;
pub mod record;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod valve;
pub mod version;

pub use journal_op::{JournalError, JournalOp, ReplayOp};
pub use op::{OpError, PathWrite, WriteOp};
pub use path::{Path, PathError};
pub use record::{Record, Version};
pub use version::{VersionCheck, check_version};
