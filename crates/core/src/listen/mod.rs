//! Listening: clients that offer to provide records whose names match a pattern
//! ("active data providers"), as deepstream 7's `ListenerRegistry` does it.
//!
//! The rules, as the real server behaves (single node):
//! - A client LISTENs with a JS regex, tested unanchored against record names.
//! - When a record gets its first subscriber, one matching (connection, pattern) pair is
//!   chosen at random and sent SUBSCRIPTION_FOR_PATTERN_FOUND. It answers LISTEN_ACCEPT or
//!   LISTEN_REJECT; a reject, or no answer within `listen.responseTimeout` (the connection
//!   then gets LISTEN_RESPONSE_TIMEOUT), moves on to a random pair not yet asked in this
//!   search. Pairs that LISTEN while the search runs join it. With
//!   `listen.shuffleProviders: false` the pairs are asked in registration order instead
//!   ([`ListenRegistry::shuffle_providers`]).
//! - In a cluster, deepstream's nodes each ask their own listeners; here one registry
//!   serves the cluster, and asks the listeners in the place (node) of the record's first
//!   subscriber before the others ([`ListenRegistry::places`]).
//! - On accept, the record's subscribers are told SUBSCRIPTION_HAS_PROVIDER; later
//!   subscribers are told when they join.
//! - If every pair says no, the record stays unprovided and nobody is asked again until a
//!   matching LISTEN arrives or the periodic rematch (`listen.rematchInterval`) runs; both
//!   start a fresh search in which everybody, earlier refusers included, may be asked.
//! - When the last subscriber leaves (a provider subscribed to its own record counts), the
//!   provider gets SUBSCRIPTION_FOR_PATTERN_REMOVED, its `onStop`.
//! - When a provider unlistens or disconnects, subscribers are told
//!   SUBSCRIPTION_HAS_NO_PROVIDER and a fresh search starts.
//!
//! Where deepstream is buggy we do what it evidently means to do, and say so on the method.
//!
//! [`ListenRegistry`] holds this as a pure state machine: the runtime feeds it events and
//! carries out the [`ListenAction`]s it returns, including arming and cancelling timers.

mod pattern;
mod registry;
mod rng;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use pattern::{ListenPattern, PatternError, PatternLimits};
pub use registry::{Limits, ListenAction, ListenError, ListenRegistry, Place, TimerId};
