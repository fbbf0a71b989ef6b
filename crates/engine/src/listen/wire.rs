//! What nodes say to each other about listening, on the bus topic [`TOPIC`].
//!
//! Every node sends its listen inputs to the coordinator (the lowest live node id), which
//! alone runs the registry and tells the owning nodes what to send their providers.

use serde::{Deserialize, Serialize};

/// The bus topic of listening; separate from record announcements so that neither
/// stream's volume delays the other.
pub const TOPIC: &str = "recordsync.listen";

/// The bus topic of listening on events: a registry of its own, as on one node.
pub const EVENT_TOPIC: &str = "recordsync.listen.event";

/// One connection of one node: the registry's notion of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    pub node: u64,
    pub conn: u64,
}

/// Something that happened on a node and that the coordinator must hear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Input {
    Listen {
        conn: u64,
        pattern: String,
    },
    Unlisten {
        conn: u64,
        pattern: String,
    },
    Accept {
        conn: u64,
        pattern: String,
        name: String,
    },
    Reject {
        conn: u64,
        pattern: String,
        name: String,
    },
    /// The connection is gone.
    Closed {
        conn: u64,
    },
    /// `name` gained its first subscriber on the node.
    Subscribed {
        name: String,
    },
    /// `name` lost its last subscriber on the node.
    Unsubscribed {
        name: String,
    },
}

/// Everything a node knows of its own listening: what it sends a new coordinator, which
/// rebuilds the cluster's registry from these reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// (connection, pattern) for every LISTEN in force.
    pub listens: Vec<(u64, String)>,
    /// (connection, pattern, record) for every record a connection believes it provides.
    pub provides: Vec<(u64, String, String)>,
    /// Every record with a subscriber on the node.
    pub subscribed: Vec<String>,
}

/// What a coordinator tells the node that owns a provider connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ProviderCall {
    Offer { pattern: String, name: String },
    Stop { pattern: String, name: String },
    TimedOut { name: String },
}

/// One message on [`TOPIC`]. `from` is the sending node; nodes ignore their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// "I am alive." `hello` (a node that has just joined) asks everyone to answer with a
    /// heartbeat at once, so the newcomer learns the coordinator before it serves.
    Heartbeat {
        from: u64,
        #[serde(default)]
        hello: bool,
    },
    /// A node's input, addressed to the node it believes coordinates.
    Input { from: u64, to: u64, input: Input },
    /// A node's whole listening state, addressed to the node it believes coordinates.
    Report {
        from: u64,
        to: u64,
        report: NodeReport,
    },
    /// A node that has just become coordinator asks every node for its report.
    ReportRequest { from: u64 },
    /// The coordinator's instruction for one provider connection of node `to`.
    Call {
        from: u64,
        to: u64,
        conn: u64,
        call: ProviderCall,
    },
    /// The coordinator's word, once its registry has settled, on which subscribed
    /// records have a provider: every other subscribed record has none.
    Providers { from: u64, provided: Vec<String> },
    /// The coordinator's word that `name` gained or lost its provider: the node `to`, or
    /// every node, tells its own subscribers of `name`.
    ProviderChanged {
        from: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<u64>,
        name: String,
        has_provider: bool,
    },
}

impl Message {
    pub fn from(&self) -> u64 {
        match self {
            Message::Heartbeat { from, .. }
            | Message::Input { from, .. }
            | Message::Report { from, .. }
            | Message::ReportRequest { from }
            | Message::Call { from, .. }
            | Message::Providers { from, .. }
            | Message::ProviderChanged { from, .. } => *from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json() {
        let messages = [
            Message::Heartbeat {
                from: 1,
                hello: true,
            },
            Message::Input {
                from: 1,
                to: 2,
                input: Input::Accept {
                    conn: 7,
                    pattern: "a/.*".into(),
                    name: "a/1".into(),
                },
            },
            Message::Report {
                from: 3,
                to: 1,
                report: NodeReport {
                    listens: vec![(7, "a/.*".into())],
                    provides: vec![(7, "a/.*".into(), "a/1".into())],
                    subscribed: vec!["a/1".into()],
                },
            },
            Message::Call {
                from: 1,
                to: 3,
                conn: 7,
                call: ProviderCall::Stop {
                    pattern: "a/.*".into(),
                    name: "a/1".into(),
                },
            },
        ];
        for m in messages {
            let bytes = serde_json::to_vec(&m).unwrap();
            assert_eq!(serde_json::from_slice::<Message>(&bytes).unwrap(), m);
        }
    }
}
