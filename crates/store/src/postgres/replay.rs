//! Giving the records of migration 2 the milestones retention needs, on connect.
//!
//! Migration 3 gave every record one milestone, at its current version, so retention
//! could not move the history start of a record written more than `keep_ops` times
//! (the greatest milestone at or below `version - keep_ops` is what it moves to) until
//! `keep_ops` more writes: an upgraded data set kept its whole history. Migration 4
//! lists those records in `history_replay`; on connect, after migrating, each node
//! works through the list ([`replay_pending`]), in transactions of at most
//! [`BATCH_RECORDS`] records and about [`BATCH_ENTRIES`] replayed journal rows:
//!
//! - a record within the retention bound (or deleted, re-created or already pruned
//!   since, or with milestones of its own below its version) needs nothing;
//! - any other is locked (`FOR UPDATE`, as a commit locks it: writes to it wait), its
//!   journal replayed from its create at version 0 (`history::Replay`), read through a
//!   portal [`FETCH_ROWS`] rows at a time, so that only its value and the milestones to
//!   store are in memory; if the replay reaches the stored value at its version, the
//!   milestones from the version retention may start its history at are stored, and
//!   the record pruned as a commit would prune it; if not (a row missing, an op that
//!   does not read or apply, another value), a warning names the record and why, and it
//!   keeps its whole history;
//! - either way its name leaves the list, in the same transaction.
//!
//! Nodes connecting at once share the work (`FOR UPDATE SKIP LOCKED` on the list); a
//! crash or a failure leaves the rest listed for the next connect, and what was
//! committed is a state a commit could have left. A failure here is logged and the
//! store connects without it.

use tokio_postgres::{Client, Transaction};

use super::batch;
use crate::history::{History, Replay};

/// Records taken from the list per transaction, at most.
pub(super) const BATCH_RECORDS: i64 = 100;
/// Journal rows replayed per transaction, about (the record that reaches it is whole).
pub(super) const BATCH_ENTRIES: u64 = 100_000;
/// Journal rows read per round trip of a replay.
pub(super) const FETCH_ROWS: i32 = 1_000;

/// What [`replay_pending`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Replayed {
    /// Names taken off the list.
    pub listed: u64,
    /// Records replayed and pruned.
    pub pruned: u64,
    /// Journal rows those replays applied.
    pub entries: u64,
    /// Journal rows pruned.
    pub deleted: u64,
    /// Records whose journal does not lead to their value (each logged).
    pub refused: u64,
}

/// Works through `schema`'s `history_replay` list (see the module doc) with `history`'s
/// settings, as of `now` (for `keep_age`).
pub(super) async fn replay_pending(
    client: &mut Client,
    schema: &str,
    history: &History,
    now: u64,
) -> Result<Replayed, tokio_postgres::Error> {
    let mut done = Replayed::default();
    if history.keep_ops.is_none() && history.keep_age.is_none() {
        // Nothing is pruned: the list waits for settings that prune.
        return Ok(done);
    }
    loop {
        let tx = client.transaction().await?;
        let names: Vec<String> = tx
            .query(
                &format!(
                    "SELECT name FROM {schema}.history_replay ORDER BY name \
                     LIMIT $1 FOR UPDATE SKIP LOCKED"
                ),
                &[&BATCH_RECORDS],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if names.is_empty() {
            tx.commit().await?;
            return Ok(done);
        }
        let mut entries = 0;
        for name in &names {
            entries += replay_one(&tx, schema, name, history, now, &mut done).await?;
            tx.execute(
                &format!("DELETE FROM {schema}.history_replay WHERE name = $1"),
                &[name],
            )
            .await?;
            done.listed += 1;
            if entries >= BATCH_ENTRIES {
                break;
            }
        }
        tx.commit().await?;
    }
}

/// Replays and prunes `name` if it needs it (see the module doc); returns how many
/// journal rows it replayed.
async fn replay_one(
    tx: &Transaction<'_>,
    schema: &str,
    name: &str,
    history: &History,
    now: u64,
    done: &mut Replayed,
) -> Result<u64, tokio_postgres::Error> {
    let Some(row) = tx
        .query_opt(
            &format!(
                "SELECT version, history_start, created, deleted, data_json::text, mtime \
                 FROM {schema}.records WHERE name = $1 FOR UPDATE"
            ),
            &[&name],
        )
        .await?
    else {
        return Ok(0);
    };
    let version = row.get::<_, i64>(0).max(0) as u64;
    let start: i64 = row.get(1);
    let created: i64 = row.get(2);
    let deleted: bool = row.get(3);
    let data: String = row.get(4);
    let mtime = row.get::<_, i64>(5).max(0) as u64;
    if start != 0 || created != 0 || deleted || !history.may_prune(version, 0) {
        return Ok(0);
    }
    let own: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {schema}.milestones WHERE name = $1 AND version < $2"),
            &[&name, &(version as i64)],
        )
        .await?
        .get(0);
    if own > 0 {
        // Written with milestones since migration 3: commits prune it.
        return Ok(0);
    }
    let every = history.milestone_every.max(1);
    let mut candidates: Vec<(u64, u64)> = tx
        .query(
            &format!(
                "SELECT version, time FROM {schema}.journal \
                 WHERE name = $1 AND version > 0 AND version % $2 = 0 ORDER BY version"
            ),
            &[&name, &(every as i64)],
        )
        .await?
        .iter()
        .map(|r| {
            (
                r.get::<_, i64>(0).max(0) as u64,
                r.get::<_, i64>(1).max(0) as u64,
            )
        })
        .collect();
    candidates.push((version, mtime));
    let Some(target) = history.prune_start(version, 0, &candidates, now) else {
        return Ok(0);
    };
    drop(candidates);

    let mut replay = Replay::new(history, target);
    let mut milestones: Vec<(i64, i64, String)> = Vec::new();
    let mut entries = 0;
    let mut refused = None;
    let stmt = tx
        .prepare(&format!(
            "SELECT version, time, op_json::text FROM {schema}.journal \
             WHERE name = $1 ORDER BY version"
        ))
        .await?;
    let portal = tx.bind(&stmt, &[&name]).await?;
    'rows: loop {
        let rows = tx.query_portal(&portal, FETCH_ROWS).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            entries += 1;
            let (v, time, op): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
            match replay.apply(v.max(0) as u64, &op) {
                Ok(Some(data)) if (v as u64) < version => milestones.push((v, time, data)),
                Ok(_) => {}
                Err(why) => {
                    refused = Some(why);
                    break 'rows;
                }
            }
        }
    }
    if let Some(why) = refused.or_else(|| replay.finish(version, &data).err()) {
        done.refused += 1;
        tracing::warn!(
            schema,
            record = %name,
            version,
            reason = %why,
            "the record's journal does not replay to its value, so its whole history is \
             kept (retention prunes it only after history.keepOps more writes); its \
             current value is unchanged"
        );
        return Ok(entries);
    }
    let names: Vec<&str> = milestones.iter().map(|_| name).collect();
    let versions: Vec<i64> = milestones.iter().map(|m| m.0).collect();
    let times: Vec<i64> = milestones.iter().map(|m| m.1).collect();
    let datas: Vec<&str> = milestones.iter().map(|m| m.2.as_str()).collect();
    let jsonb: Vec<bool> = datas.iter().map(|d| batch::jsonb_can_hold(d)).collect();
    tx.execute(
        &format!(
            "INSERT INTO {schema}.milestones (name, version, time, data, data_json) \
             SELECT n, v, t, CASE WHEN j THEN d::jsonb END, d::json \
             FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::bool[]) \
             AS x(n, v, t, d, j) \
             ON CONFLICT (name, version) DO UPDATE SET time = excluded.time, \
             data = excluded.data, data_json = excluded.data_json"
        ),
        &[&names, &versions, &times, &datas, &jsonb],
    )
    .await?;
    let target = target as i64;
    done.deleted += tx
        .execute(
            &format!("DELETE FROM {schema}.journal WHERE name = $1 AND version <= $2"),
            &[&name, &target],
        )
        .await?;
    tx.execute(
        &format!("DELETE FROM {schema}.milestones WHERE name = $1 AND version < $2"),
        &[&name, &target],
    )
    .await?;
    tx.execute(
        &format!("UPDATE {schema}.records SET history_start = $2 WHERE name = $1"),
        &[&name, &target],
    )
    .await?;
    done.pruned += 1;
    done.entries += entries;
    Ok(entries)
}
