//! The ShareDB front door: ShareDB's protocol 1.2 over WebSocket (`/sharedb` by default,
//! the `sharedb` endpoint's `urlPath`), as the npm `sharedb` 7 client speaks it, one JSON
//! message per text frame. The wire types are `recordsync_sharedb_protocol`'s.
//!
//! - [`auth`]       — who a connection is: its upgrade request's token or credentials.
//! - [`connection`] — ShareDB's [`crate::net::connection::FrontDoor`]: decoding frames,
//!   the `init` message, dispatch of each request to its file below, pings.
//! - [`handshake`]  — `hs`: the protocol, json0 as the default type, the stable `src`.
//! - [`fetch`]      — `f`, `bf`: snapshots, or the ops since a version.
//! - [`subscribe`]  — `s`, `bs`, `u`, `bu`: the same, then every op as it commits.
//! - [`submit`]     — `op`: create, json0 edit, delete; transformed if stale, acknowledged
//!   once.
//! - [`snapshot`]   — `nf`, `nt`: a document at a version, at a time.
//! - [`query`]      — `qf`, `qs`, `qu`: Mongo-style queries, fetched or live; with
//!   [`query_fetch`] (a query run once, permissions, bounds), [`query_live`] (live
//!   queries), [`query_feed`] (a collection's changes read once for all its live
//!   queries), [`query_diff`] (arraydiff's result
//!   diffs) and [`query_holds`] (documents followed for subscriptions and live queries).
//! - [`presence`]   — `p`, `ps`, `pu`, `pr`: channel presence, in memory, cluster-wide;
//!   document presence refused as json0 has none. With [`presence_state`] (a
//!   connection's), [`presence_hub`] (the node's channels) and [`presence_bus`] (the
//!   other nodes').
//! - [`ops`]        — a document's history read back as ShareDB ops.
//! - [`session`]    — a connection as an engine subscriber: events encoded as `op`
//!   messages, once per event.
//! - [`doc`]        — documents as records: `(collection, id)` is record `collection/id`,
//!   and ShareDB's versions on the engine's.
//! - [`errors`]     — engine failures as ShareDB's error codes and messages.
//! - [`permission`] — the permission checks of each request, and ShareDB-style refusals.
//!
//! # Documents on records
//!
//! Document `(c, d)` is record `c/d` (a collection holds no `/`, so the record name
//! splits back at its first). Versions are ShareDB's over the engine's history
//! (`recordsync_engine::EngineVersion`): a document never created is version 0 with type
//! null; its create is engine version `c` and makes ShareDB version `c + 1`; every op
//! after that adds one; a delete adds one and leaves type null, and a re-create carries
//! on from there. An op's `v` on the wire is the version it applies to, so the op that
//! the engine journaled as version `e` is sent with `v = e`. Records written through
//! deepstream are documents too: their path writes are sent as the json0 op with the same
//! effect, their creates (`{}`) as creates, their deletes as deletes.
//!
//! Only json0 documents exist here: a create of another type is refused
//! (`ERR_DOC_TYPE_NOT_RECOGNIZED`). A create without data (json0 would make `null`) is
//! refused too: a record holds a JSON value other than null.
//!
//! # Permissions
//!
//! The Valve rules of the permissions file (its `record` section) decide ShareDB's
//! requests through the neutral [`crate::permission::Action`]s, against the record name
//! `c/d`:
//!
//! | request | checks | a rule sees |
//! |---|---|---|
//! | `f`, `s`, `bf`, `bs`, `nf`, `nt` | read | `data` null, `oldData` the record now |
//! | `op` with `create` | create | `data` null (as deepstream's create checks) |
//! | `op` with a json0 `op` | write | `data` the record after the op, `oldData` the record now |
//! | `op` with `del` | delete | `oldData` the record now |
//!
//! For a json0 op, `data` is the op applied to the record's current value, as the client
//! sent it: a stale op is checked before it is transformed onto the versions it missed,
//! so a rule sees what the client meant against the newest value. An op that does not
//! apply to the current value fails the rule (the client hears of it as a refused op).
//! Rules read `action` as no number (ShareDB's messages have none).
//!
//! The user is the one the WebSocket upgrade request was authenticated as ([`auth`]: a
//! bearer token or Basic credentials in the `Authorization` header, or `?access_token=`
//! in the URL), as a ShareDB server's app authenticates the request it passes to
//! `backend.listen`; the anonymous user only when no credentials were sent and the auth
//! types admit anonymous users.

pub mod auth;
pub mod connection;
pub mod doc;
pub mod errors;
pub mod fetch;
pub mod handshake;
pub mod ops;
pub mod permission;
pub mod presence;
pub mod presence_bus;
pub mod presence_hub;
pub mod presence_state;
pub mod query;
pub mod query_diff;
pub mod query_feed;
pub mod query_fetch;
pub mod query_holds;
pub mod query_live;
pub mod session;
pub mod snapshot;
pub mod submit;
pub mod subscribe;
