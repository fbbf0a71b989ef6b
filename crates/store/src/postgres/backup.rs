//! Backups on PostgreSQL ([`Store::export`](crate::Store::export),
//! [`Store::restore`](crate::Store::restore)).
//!
//! An export reads in one `REPEATABLE READ READ ONLY` transaction, so every page of
//! records and their histories comes from the same snapshot, whatever nodes write
//! meanwhile; pages go by name (the primary key), 500 records and then their journals
//! and milestones with one query each. A restore is one transaction: it claims every
//! name (`ON CONFLICT DO NOTHING`), and fails whole if one was taken.

use deadpool_postgres::Object;
use tokio::sync::mpsc;
use tokio_postgres::Row;

use super::{JournalRows, PostgresStore, RecordRows, batch, errors, int8, uint};
use crate::dump::{KeptHistory, KeptMilestone, RecordDump};
use crate::error::StoreError;
use crate::store::{JournalEntry, Origin, StoredRecord};

/// Records per page of an export.
const PAGE: i64 = 500;

impl PostgresStore {
    pub(super) async fn export_records(
        &self,
        prefix: &str,
        history: bool,
    ) -> Result<mpsc::Receiver<Result<RecordDump, StoreError>>, StoreError> {
        let (tx, rx) = mpsc::channel(2 * PAGE as usize);
        if prefix.contains('\0') {
            return Ok(rx);
        }
        let conn = self.connection("exporting records").await?;
        let exporter = Exporter {
            target: self.target.clone(),
            schema: self.schema.clone(),
            prefix: prefix.to_owned(),
            history,
        };
        tokio::spawn(async move {
            let mut conn = conn;
            if let Err(e) = exporter.run(&mut conn, &tx).await {
                // Its transaction may still be open: not fit for the pool.
                drop(Object::take(conn));
                let _ = tx
                    .send(Err(errors::store_error(
                        &exporter.target,
                        "exporting records",
                        e,
                    )))
                    .await;
            }
        });
        Ok(rx)
    }

    pub(super) async fn restore_records(&self, dumps: &[RecordDump]) -> Result<(), StoreError> {
        crate::dump::check_restore(dumps)?;
        check_restorable(dumps)?;
        if dumps.is_empty() {
            return Ok(());
        }
        let histories: Vec<KeptHistory> =
            dumps.iter().map(RecordDump::history_or_current).collect();
        let what = "restoring records";
        let fail = |e| errors::store_error(&self.target, what, e);
        let mut conn = self.connection(what).await?;
        let result = async {
            let tx = conn.transaction().await?;
            let records: Vec<(&StoredRecord, u64)> = dumps
                .iter()
                .zip(&histories)
                .map(|(d, h)| (&d.record, h.start))
                .collect();
            let rows = RecordRows::new(&records);
            let claimed = tx.query(&self.sql.claim, &rows.params()).await?;
            if claimed.len() < dumps.len() {
                let claimed: std::collections::HashSet<String> =
                    claimed.iter().map(|r| r.get(0)).collect();
                let taken = dumps
                    .iter()
                    .find(|d| !claimed.contains(&d.record.name))
                    .map(|d| d.record.name.clone())
                    .unwrap_or_default();
                return Ok(Err(StoreError::Exists { name: taken }));
            }
            let entries: Vec<(&str, &JournalEntry)> = dumps
                .iter()
                .zip(&histories)
                .flat_map(|(d, h)| h.entries.iter().map(|e| (d.record.name.as_str(), e)))
                .collect();
            if !entries.is_empty() {
                let j = JournalRows::new(&entries);
                tx.execute(
                    &self.sql.insert_journal,
                    &[
                        &j.names,
                        &j.versions,
                        &j.times,
                        &j.ops,
                        &j.jsonb_ok,
                        &j.authors,
                        &j.srcs,
                        &j.seqs,
                    ],
                )
                .await?;
            }
            let milestones: Vec<(&str, &KeptMilestone)> = dumps
                .iter()
                .zip(&histories)
                .flat_map(|(d, h)| h.milestones.iter().map(|m| (d.record.name.as_str(), m)))
                .collect();
            if !milestones.is_empty() {
                let names: Vec<&str> = milestones.iter().map(|m| m.0).collect();
                let versions: Vec<i64> = milestones.iter().map(|m| m.1.version as i64).collect();
                let times: Vec<i64> = milestones.iter().map(|m| m.1.time as i64).collect();
                let data: Vec<&str> = milestones.iter().map(|m| m.1.data.as_str()).collect();
                let jsonb: Vec<bool> = data.iter().map(|d| batch::jsonb_can_hold(d)).collect();
                tx.execute(
                    &self.sql.insert_milestones,
                    &[&names, &versions, &times, &data, &jsonb],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(Ok(()))
        }
        .await;
        match result {
            Ok(done) => done,
            Err(e) => {
                drop(Object::take(conn));
                Err(fail(e))
            }
        }
    }
}

/// What PostgreSQL cannot hold (U+0000 in text, numbers above `i64::MAX`), found before
/// anything is written.
fn check_restorable(dumps: &[RecordDump]) -> Result<(), StoreError> {
    for d in dumps {
        let r = &d.record;
        let name = r.name.as_str();
        let nul = |s: &str| s.contains('\0');
        let h = d.history_or_current();
        if nul(name)
            || nul(&r.data)
            || h.entries.iter().any(|e| {
                nul(&e.op)
                    || e.author.as_deref().is_some_and(nul)
                    || e.origin.as_ref().is_some_and(|o| nul(&o.src))
            })
            || h.milestones.iter().any(|m| nul(&m.data))
        {
            return Err(StoreError::Unstorable {
                name: name.to_owned(),
                reason: "PostgreSQL text cannot hold the character U+0000".into(),
            });
        }
        for n in [r.version, r.created, r.ctime, r.mtime, h.start] {
            int8(name, "version or time", n)?;
        }
        for e in &h.entries {
            int8(name, "journal version", e.version)?;
            int8(name, "journal time", e.time)?;
            if let Some(o) = &e.origin {
                int8(name, "origin seq", o.seq)?;
            }
        }
        for m in &h.milestones {
            int8(name, "milestone time", m.time)?;
        }
    }
    Ok(())
}

/// An export's settings, moved into the task that reads.
struct Exporter {
    target: String,
    schema: String,
    prefix: String,
    history: bool,
}

impl Exporter {
    async fn run(
        &self,
        conn: &mut Object,
        tx: &mpsc::Sender<Result<RecordDump, StoreError>>,
    ) -> Result<(), tokio_postgres::Error> {
        let schema = &self.schema;
        let t = conn.transaction().await?;
        t.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let end = crate::listing::prefix_end(&self.prefix);
        let upper = if end.is_some() { " AND name < $2" } else { "" };
        let columns =
            "name, version, data_json::text, ctime, mtime, created, deleted, history_start";
        let first = format!(
            "SELECT {columns} FROM {schema}.records WHERE name >= $1{upper} ORDER BY name LIMIT {PAGE}"
        );
        let next = format!(
            "SELECT {columns} FROM {schema}.records WHERE name > $1{upper} ORDER BY name LIMIT {PAGE}"
        );
        let journal = format!(
            "SELECT name, version, time, op_json::text, author, origin_src, origin_seq \
             FROM {schema}.journal WHERE name = ANY($1::text[]) ORDER BY name, version"
        );
        let milestones = format!(
            "SELECT name, version, time, data_json::text FROM {schema}.milestones \
             WHERE name = ANY($1::text[]) ORDER BY name, version"
        );
        let mut after: Option<String> = None;
        loop {
            let start = after.clone().unwrap_or_else(|| self.prefix.clone());
            let rows = match &end {
                Some(end) => {
                    let sql = if after.is_some() { &next } else { &first };
                    t.query(sql.as_str(), &[&start, end]).await?
                }
                None => {
                    let sql = if after.is_some() { &next } else { &first };
                    t.query(sql.as_str(), &[&start]).await?
                }
            };
            let full = rows.len() as i64 == PAGE;
            let mut dumps = Vec::with_capacity(rows.len());
            for row in &rows {
                match record_of(row) {
                    Ok(dump) => dumps.push(dump),
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return Ok(());
                    }
                }
            }
            if self.history && !dumps.is_empty() {
                let names: Vec<&str> = dumps.iter().map(|d| d.0.name.as_str()).collect();
                let entries = t.query(journal.as_str(), &[&names]).await?;
                let kept = t.query(milestones.as_str(), &[&names]).await?;
                if let Err(e) = attach_history(&mut dumps, &entries, &kept) {
                    let _ = tx.send(Err(e)).await;
                    return Ok(());
                }
            }
            after = dumps.last().map(|d| d.0.name.clone());
            for (record, _, history) in dumps {
                if tx.send(Ok(RecordDump { record, history })).await.is_err() {
                    return Ok(());
                }
            }
            if !full {
                break;
            }
        }
        t.commit().await?;
        Ok(())
    }
}

/// A record row of an export, with its history start and (later) its history.
fn record_of(row: &Row) -> Result<(StoredRecord, u64, Option<KeptHistory>), StoreError> {
    let name: String = row.get(0);
    let start = uint(&name, "history start", row.get(7))?;
    Ok((
        StoredRecord {
            version: uint(&name, "version", row.get(1))?,
            data: row.get(2),
            ctime: uint(&name, "ctime", row.get(3))?,
            mtime: uint(&name, "mtime", row.get(4))?,
            created: uint(&name, "created", row.get(5))?,
            deleted: row.get(6),
            name,
        },
        start,
        None,
    ))
}

/// Gives each record of a page its journal and milestones (rows ordered by name, then
/// version).
fn attach_history(
    dumps: &mut [(StoredRecord, u64, Option<KeptHistory>)],
    entries: &[Row],
    milestones: &[Row],
) -> Result<(), StoreError> {
    let mut by_name: std::collections::HashMap<String, KeptHistory> = dumps
        .iter()
        .map(|(r, start, _)| {
            (
                r.name.clone(),
                KeptHistory {
                    start: *start,
                    milestones: Vec::new(),
                    entries: Vec::new(),
                },
            )
        })
        .collect();
    for row in entries {
        let name: String = row.get(0);
        let origin = match (row.get::<_, Option<String>>(5), row.get(6)) {
            (Some(src), Some(seq)) => Some(Origin {
                src,
                seq: uint(&name, "origin seq", seq)?,
            }),
            _ => None,
        };
        let entry = JournalEntry {
            version: uint(&name, "journal version", row.get(1))?,
            time: uint(&name, "journal time", row.get(2))?,
            op: row.get(3),
            author: row.get(4),
            origin,
        };
        if let Some(h) = by_name.get_mut(&name) {
            h.entries.push(entry);
        }
    }
    for row in milestones {
        let name: String = row.get(0);
        let milestone = KeptMilestone {
            version: uint(&name, "milestone version", row.get(1))?,
            time: uint(&name, "milestone time", row.get(2))?,
            data: row.get(3),
        };
        if let Some(h) = by_name.get_mut(&name) {
            h.milestones.push(milestone);
        }
    }
    for (record, _, history) in dumps.iter_mut() {
        *history = by_name.remove(&record.name);
    }
    Ok(())
}
