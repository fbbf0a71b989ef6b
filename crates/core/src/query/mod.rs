//! ShareDB's Mongo-style queries: the filter language ShareDB's database adapters accept
//! (`sharedb-mongo`, and `sharedb-mingo-memory` in ShareDB's own tests), parsed into a
//! typed form and evaluated over JSON values.
//!
//! A query is a JSON object (ShareDB's `q`): field conditions on dotted paths, the
//! logical operators `$and $or $nor`, and the result controls `$sort $skip $limit
//! $count`. [`Query::parse`] checks it completely, so a query either runs or is refused
//! with a [`QueryError`] naming the operator or operand at fault; evaluation never fails.
//!
//! Files, one concept each:
//! - `error.rs`  — [`QueryError`].
//! - `number.rs` — JSON numbers compared exactly as decimals (`1 == 1.0`), whatever
//!   their spelling; as PostgreSQL's `numeric` compares them.
//! - `order.rs`  — the total order of JSON values (MongoDB's BSON type order, then
//!   values), and equality consistent with it.
//! - `path.rs`   — [`FieldPath`]: a dotted path, and what it reaches in a document
//!   (through arrays, as MongoDB does).
//! - `doc.rs`    — [`Doc`]: a document as a query sees it: its data plus the metadata
//!   fields ShareDB's adapters expose (`_id`, `_v`, `_type`, `_m.ctime`, `_m.mtime`).
//! - `filter.rs` — the filter's typed form ([`Filter`], [`Cond`], [`ElemMatch`]) and its
//!   parsing.
//! - `eval.rs`   — whether a document matches a filter.
//! - `spec.rs`   — [`Query`]: filter plus sort, skip, limit and count; parsing, and
//!   selecting, ordering and windowing candidates ([`Query::select`], [`Selection`]).
//!
//! # Semantics (MongoDB's, as far as JSON goes)
//!
//! - A path reaches every value it names: through objects by key and through arrays
//!   into each element that is an object (one level), and by index where a segment is
//!   a number. A condition holds if it holds for one of those values, or, where the value
//!   is an array, for one of its elements: `{tags: "x"}` matches `{"tags": ["x", "y"]}`.
//! - Comparisons (`$gt $gte $lt $lte`) are type-bracketed: a number operand matches
//!   numbers only, a string operand strings only (by UTF-8 bytes), and so on.
//! - Equality is deep; numbers equal by value (`1 == 1.0`), objects equal whatever
//!   their key order (as mingo's `isEqual`; PostgreSQL's jsonb forgets key order too).
//! - `null` matches a missing field (`{a: null}`, `$in: [null]`), and `$ne`/`$nin`
//!   match documents without the field.
//! - Sorting uses MongoDB's BSON type order (null and missing < numbers < strings <
//!   objects < arrays < booleans); an array sorts by its smallest element ascending, its
//!   largest descending; ties are broken by document id, so results are deterministic.
//!
//! Known differences from ShareDB's in-memory reference (`sharedb-mingo-memory` on npm
//! `mingo`): it sorts on top-level fields only, with JavaScript's `<` (no dotted paths,
//! no type order), keeping insertion order on ties; numbers beyond JavaScript's
//! precision compare exactly here; a path through an array of objects some of which
//! lack the field finds only the others (MongoDB would also see a `null`).

mod doc;
mod error;
mod eval;
mod filter;
mod number;
mod order;
mod path;
mod spec;

pub use doc::{Doc, JSON0_TYPE_URI};
pub use error::QueryError;
pub use filter::{Cond, ElemMatch, Filter};
pub use order::{compare, equal, type_rank};
pub use path::FieldPath;
pub use spec::{Query, Selection, SortKey};
