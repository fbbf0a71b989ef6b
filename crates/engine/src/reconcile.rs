//! Reconciliation with other nodes: applying their announced writes to this node's
//! copies, and refetching from the store whatever cannot be applied (a gap, writes of
//! this node in flight, a resync after the bus lost messages). The bus side is
//! `crate::cluster`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use recordsync_core::{JournalOp, Record};
use recordsync_store::{Origin, StoreError};

use crate::cell::{CellState, Head, Visible};
use crate::event::{EventKind, RecordEvent};
use crate::write::{apply_op, created_event, value_json};
use crate::{Engine, EngineError, cluster, now_ms};

impl Engine {
    /// Applies another node's announced change to this node's copy, if it holds one, then
    /// tells the collection's watchers (after the record's subscribers, as for this node's
    /// own commits).
    pub(crate) fn apply_remote(&self, a: &cluster::Announcement<'_>) {
        self.apply_announcement(a);
        self.watchers.notify(&a.name);
    }

    fn apply_announcement(&self, a: &cluster::Announcement<'_>) {
        let name: &str = &a.name;
        let Some(cell) = self.shard(name).lock().get(name).cloned() else {
            return; // not cached here: the next use loads it from the store
        };
        let mut st = cell.state.lock();
        if !st.loaded {
            // Being (re)loaded, or waiting to be: make sure that happens, so subscribers
            // here catch up even if nothing else touches the record. A load reading now
            // may have read before this change was committed: it does not count.
            st.invalidate();
            drop(st);
            self.refetch(&cell.name);
            return;
        }
        // Engine versions never go back, across deletes too: anything at or below what
        // this node has seen is old news.
        let known = st.visible.as_ref().map(|v| v.version.version).or(st.tomb);
        let settled = st.in_flight() == 0;
        if known.is_some_and(|k| a.version <= k) {
            return;
        }
        if a.deleted {
            if settled {
                let had = st.visible.is_some();
                st.head = None;
                st.visible = None;
                st.tomb = Some(a.version);
                if had {
                    let origin = a.origin.as_ref().map(cluster::AnnouncedOrigin::to_origin);
                    self.deleted_elsewhere(&cell.name, &mut st, Some(a.version), origin);
                }
                return;
            }
        } else if a.version == a.created {
            // Created elsewhere: empty (deepstream), or with the data of its create op.
            let data = match a.op.map(|op| JournalOp::from_journal(op.get())) {
                None => Some(None),
                Some(Ok(JournalOp::Create { data })) => Some(Some(data)),
                Some(_) => None,
            };
            if let (true, true, Some(data)) = (settled, st.head.is_none(), data) {
                let now = now_ms();
                let mut record = Record::empty(now);
                let created = data.map(|data| {
                    let json: Arc<str> = Arc::from(data.to_string());
                    record.data = data.clone();
                    (data, json)
                });
                let json = created
                    .as_ref()
                    .map_or_else(|| Arc::from("{}"), |(_, json)| json.clone());
                let head = Head {
                    record,
                    created: a.created,
                    json: json.clone(),
                    stored: true,
                };
                let version = head.version();
                st.visible = Some(Visible { version, json });
                st.head = Some(head);
                st.tomb = None;
                let origin = a.origin.as_ref().map(cluster::AnnouncedOrigin::to_origin);
                st.publish(&created_event(&cell.name, version, created, origin), None);
                return;
            }
        } else if let (true, Some(k), Some(op_text), Some(head)) =
            (settled, known, a.op, st.head.as_mut())
            && k + 1 == a.version
            && head.version().version == k
            && head.created == a.created
            && let Ok(op) = JournalOp::from_journal(op_text.get())
            && let Ok(requested) = i64::try_from(a.version - a.created)
            && apply_op(&mut head.record, &op, requested, now_ms()).is_ok()
        {
            let json: Arc<str> = value_json(&op, &head.record.data);
            let before = std::mem::replace(&mut head.json, json.clone());
            let version = head.version();

            st.visible = Some(Visible {
                version,
                json: json.clone(),
            });
            let kind = EventKind::Changed {
                version,
                op: Some(Arc::new(op)),
                value: json,
                before: Some(before),
            };
            let origin = a.origin.as_ref().map(cluster::AnnouncedOrigin::to_origin);
            let event = RecordEvent::with_origin(cell.name.clone(), kind, origin);
            st.publish(&event, None);
            return;
        }
        // A gap, local writes in flight, or an op that does not apply: refetch.
        st.invalidate();
        drop(st);
        self.refetch(&cell.name);
    }

    /// Tells the record's subscribers that another node deleted it, and ends their
    /// subscriptions (deleting ends every subscription, as in deepstream).
    pub(crate) fn deleted_elsewhere(
        &self,
        name: &Arc<str>,
        st: &mut CellState,
        tomb: Option<u64>,
        origin: Option<Origin>,
    ) {
        st.publish(
            &RecordEvent::with_origin(name.clone(), EventKind::Deleted { tomb }, origin),
            None,
        );
        if !st.subscribers.is_empty() {
            st.subscribers.retain(|s| s.survives_delete());
            if st.subscribers.is_empty() {
                self.listening.unsubscribed(name);
            }
        }
    }

    /// Reloads `name` if this node holds it (another node could not announce a change).
    pub(crate) fn refetch_cached(&self, name: &str) {
        self.watchers.notify(name);
        let Some(cell) = self.shard(name).lock().get(name).cloned() else {
            return; // not cached here: the next use loads it from the store
        };
        cell.state.lock().invalidate();
        self.refetch(&cell.name);
    }

    /// Tells subscribers on every node of records that changed in the store without
    /// recordsync (deepstream's record `notify`: someone edited the database): each record
    /// this node holds is reloaded now, publishing whatever changed (as a jump: no journal
    /// entry says how), and the other nodes are asked to do the same. Returns once this
    /// node's subscribers were told; records no node holds need nothing (their next use
    /// reads the store).
    pub async fn reload_changed(&self, names: &[String]) -> Result<(), EngineError> {
        for name in names {
            recordsync_core::validate_name(name)?;
        }
        if let Some(cluster) = self.cluster.get() {
            for name in names {
                cluster.ask_refetch(name);
            }
        }
        for name in names {
            self.watchers.notify(name);
            let cached = self.shard(name).lock().get(name.as_str()).cloned();
            if let Some(cell) = cached {
                cell.state.lock().invalidate();
                drop(self.acquire_loaded(name).await?);
            }
        }
        Ok(())
    }

    /// Reloads every cached record from the store (after the bus lost messages); those
    /// with subscribers are reloaded now, so that their subscribers catch up.
    pub(crate) fn resync(&self) {
        metrics::counter!("recordsync_bus_resyncs_total").increment(1);
        self.watchers.resync();
        let mut subscribed = Vec::new();
        for shard in self.shards.iter() {
            for (name, cell) in shard.lock().iter() {
                let mut st = cell.state.lock();
                st.invalidate();
                if !st.subscribers.is_empty() {
                    subscribed.push(name.clone());
                }
            }
        }
        for name in subscribed {
            self.refetch(&name);
        }
    }

    /// Reloads `name` in the background; the load publishes whatever changed.
    pub(crate) fn refetch(&self, name: &Arc<str>) {
        let Some(engine) = self.self_ref() else {
            return;
        };
        let name = name.clone();
        tokio::spawn(async move {
            match engine.acquire_loaded(&name).await {
                Ok(_) => {}
                Err(EngineError::Storage(
                    StoreError::Unavailable(_) | StoreError::Io(_) | StoreError::Full { .. },
                )) => {
                    engine.refetch_later(name);
                }
                Err(e) => tracing::warn!(record = %name, "refetching failed: {e}"),
            }
        });
    }

    /// Refetches `name` once the store answers again: otherwise a node whose refetch
    /// failed (the database down while the bus came back, say) would leave its
    /// subscribers behind until something else touched the record. One task waits for
    /// the store, however many records wait.
    pub(crate) fn refetch_later(&self, name: Arc<str>) {
        self.unfetched.lock().insert(name);
        if self.retrying_refetches.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!("refetching records failed: the store cannot be reached; retrying");
        let engine = self.me.clone();
        tokio::spawn(async move {
            let mut attempt = 0u32;
            loop {
                tokio::time::sleep(Duration::from_millis((100u64 << attempt.min(6)).min(5000)))
                    .await;
                attempt += 1;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                if engine.store.ping().await.is_err() {
                    continue;
                }
                let names = std::mem::take(&mut *engine.unfetched.lock());
                for name in &names {
                    engine.refetch(name);
                }
                // Refetches that fail again come back through refetch_later.
                engine.retrying_refetches.store(false, Ordering::Release);
                if engine.unfetched.lock().is_empty()
                    || engine.retrying_refetches.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
        });
    }
}
