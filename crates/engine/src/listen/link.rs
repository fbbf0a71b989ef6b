//! The bus side of listening: heartbeats, the view of who coordinates, and the messages
//! between nodes.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use recordsync_bus::{Bus, BusError, BusEvent};

use super::Listening;
use super::coordinator::{Coordinator, Directive};
use super::peers::Peers;
use super::wire::Message;
use crate::engine::Engine;

/// How often nodes say they are alive. A node silent for three intervals is taken for
/// gone: its listeners stop providing and its subscriptions end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterTiming {
    pub heartbeat: Duration,
}

impl Default for ClusterTiming {
    fn default() -> Self {
        ClusterTiming {
            heartbeat: Duration::from_secs(1),
        }
    }
}

/// How many heartbeat intervals a node may miss before it is taken for gone.
const MISSED_HEARTBEATS: u32 = 3;

/// The longest a joining node waits for the others' answer to its hello, so that it
/// knows the coordinator before its first client arrives.
const HELLO_WAIT: Duration = Duration::from_millis(250);

pub struct Link {
    outgoing: mpsc::UnboundedSender<Message>,
}

impl Link {
    /// Queues a message for the bus. Listening traffic is small and infrequent, and a
    /// failed publish is dropped at once (the reports after a reconnect repair it), so
    /// the queue does not grow while the bus is down.
    pub fn send(&self, message: Message) {
        let _ = self.outgoing.send(message);
    }
}

impl Listening {
    /// Takes part in the cluster's listening over `bus`.
    pub(crate) async fn join(
        &self,
        bus: Arc<dyn Bus>,
        engine: Weak<Engine>,
        timing: ClusterTiming,
    ) -> Result<(), BusError> {
        let topic = self.topic;
        let bus_topic = topic.bus_topic();
        let mut incoming = bus.subscribe(bus_topic).await?;
        self.state.lock().peers = Peers::new(self.me, timing.heartbeat * MISSED_HEARTBEATS);

        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                let bytes = serde_json::to_vec(&message).expect("listen messages serialise");
                if let Err(e) = bus.publish(bus_topic, Bytes::from(bytes)).await {
                    tracing::warn!("a listen message to other nodes was lost: {e}");
                }
            }
        });
        if self.link.set(Link { outgoing }).is_err() {
            return Ok(()); // joined already
        }

        let receiver = engine.clone();
        tokio::spawn(async move {
            while let Some(event) = incoming.recv().await {
                let Some(engine) = receiver.upgrade() else {
                    return;
                };
                match event {
                    BusEvent::Message(bytes) => match serde_json::from_slice::<Message>(&bytes) {
                        Ok(message) => engine.listening_of(topic).receive(&engine, message),
                        Err(e) => tracing::warn!("ignoring a malformed listen message: {e}"),
                    },
                    BusEvent::Resync => engine.listening_of(topic).report_again(),
                }
            }
        });

        tokio::spawn(async move {
            let mut tick = tokio::time::interval(timing.heartbeat);
            loop {
                tick.tick().await;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                engine.listening_of(topic).heartbeat();
            }
        });

        self.send(Message::Heartbeat {
            from: self.me,
            hello: true,
        });
        tokio::time::sleep(HELLO_WAIT.min(timing.heartbeat)).await;
        Ok(())
    }

    fn send(&self, message: Message) {
        if let Some(link) = self.link.get() {
            link.send(message);
        }
    }

    /// One message from another node.
    fn receive(&self, engine: &Engine, message: Message) {
        let from = message.from();
        if from == self.me {
            return;
        }
        self.state.lock().peers.heard(from, Instant::now());
        let mut asked_by = None;
        match message {
            Message::Heartbeat { hello: true, .. } => self.send(Message::Heartbeat {
                from: self.me,
                hello: false,
            }),
            Message::Input { to, input, .. } if to == self.me => {
                if let Some(Err(e)) = self.coordinate(|c| c.input(from, input)) {
                    tracing::warn!(
                        node = from,
                        "a listen request from another node was refused: {e}"
                    );
                }
            }
            Message::Report { to, report, .. } if to == self.me => {
                self.coordinate(|c| Ok::<_, ()>(c.report(from, report)));
            }
            Message::ReportRequest { .. } => asked_by = Some(from),
            Message::Call { to, conn, call, .. } if to == self.me => self.call_local(conn, call),
            Message::Providers { provided, .. } => {
                let provided = provided.iter().map(String::as_str).collect();
                self.providers_settled(engine, &provided);
            }
            Message::ProviderChanged {
                to,
                name,
                has_provider,
                ..
            } if to.is_none_or(|to| to == self.me) => {
                self.provider_changed(engine, &name, has_provider)
            }
            // Addressed to another node, or a plain heartbeat.
            _ => {}
        }
        self.reconsider(asked_by);
    }

    /// Every heartbeat interval: say this node is alive, let silent nodes go, and expire
    /// provider claims that found no subscriber.
    fn heartbeat(&self) {
        self.send(Message::Heartbeat {
            from: self.me,
            hello: false,
        });
        let gone = self.state.lock().peers.expire(Instant::now());
        for node in &gone {
            tracing::info!(
                node,
                "a cluster node went silent: its listeners and subscriptions end"
            );
        }
        self.coordinate(|c| {
            let mut directives = Vec::new();
            for node in gone {
                directives.extend(c.node_gone(node));
            }
            directives.extend(c.tick());
            if let Some(provided) = c.settled() {
                directives.push(Directive::Settled { provided });
            }
            Ok::<_, ()>(directives)
        });
        self.reconsider(None);
    }

    /// Acts on a change of coordinator in this node's view: a node that now coordinates
    /// starts a fresh registry from its own state and asks the others for theirs; a node
    /// that does not sends its state to the one that does. `asked_by` is a node that has
    /// asked for reports; it is answered if it is the coordinator in this node's view.
    fn reconsider(&self, asked_by: Option<u64>) {
        let mirror = self.mirror.lock();
        let mut st = self.state.lock();
        let view = st.peers.coordinator();
        if view == st.current {
            if asked_by == Some(view) {
                self.send(Message::Report {
                    from: self.me,
                    to: view,
                    report: mirror.report(),
                });
            }
            return;
        }
        tracing::info!(
            node = self.me,
            coordinator = view,
            "the node that coordinates listening changed"
        );
        st.current = view;
        st.generation += 1;
        if view == self.me {
            let mut coordinator = Coordinator::new(rand::random(), self.shuffle);
            let directives = coordinator.report(self.me, mirror.report());
            st.coordinator = Some(coordinator);
            self.enqueue(st.generation, directives);
            self.send(Message::ReportRequest { from: self.me });
        } else {
            st.coordinator = None;
            self.send(Message::Report {
                from: self.me,
                to: view,
                report: mirror.report(),
            });
        }
    }

    /// After a bus reconnect messages may have been lost: the coordinator asks for every
    /// node's state again, and the others send theirs.
    fn report_again(&self) {
        let mirror = self.mirror.lock();
        let st = self.state.lock();
        if st.coordinator.is_some() {
            self.send(Message::ReportRequest { from: self.me });
        } else {
            self.send(Message::Report {
                from: self.me,
                to: st.current,
                report: mirror.report(),
            });
        }
    }
}
