//! Upgrading a data file to schema 4 (history across deletes), in place, on opening.
//!
//! `init_schema` brings files of schema 1 and 2 to schema 3 (it gives them their
//! write-ahead log); a file of schema 3 may have frames of schema 3 to replay, which
//! `recovery.rs` applies with schema 3's meaning first. Then this, in one durable redb
//! transaction, for every record whose value predates format V3:
//!
//! - its value is rewritten as V3: `created` 0 (every record of schema 3 was created at
//!   version 0), not deleted (schema 3 removed deleted records), history from version 0;
//! - a create entry `{"op":"create","data":{}}` at version 0, with the record's ctime and
//!   no author nor origin, goes to `journal` (which sorts before the log's entries): the
//!   record's journal then starts with its create, as every journal does from schema 4
//!   on. Its other entries keep their versions and their place;
//! - a milestone of its current value at its current version (time: its mtime);
//! - if its journal is longer than retention keeps (`History::may_prune` from version
//!   0), the milestones retention needs: its journal is replayed from that create, entry
//!   by entry in version order (`history::Replay`), and the value at every multiple of
//!   `milestone_every` from the version its history may start at is stored as a
//!   milestone. Only if the replay reaches the stored value at the current version:
//!   otherwise (an entry missing or damaged, an op that does not read or apply, another
//!   value at the end) those milestones are removed again, a warning names the record
//!   and why, and the record keeps its whole history (nothing of it is pruned until
//!   retention finds milestones below its limit, after `keep_ops` more writes). The
//!   sweep that follows (`reclaim.rs`) then prunes what the settings do not keep and
//!   compacts the file, in the same opening. Memory: one record at a time, holding its
//!   value, and the keys of its log entries (8 bytes each: the log links them newest
//!   first, and the replay goes oldest first); each entry is read twice. Records whose
//!   journal is within the bound are not replayed (the cost, `bench/NOTES.md`);
//! - its flag `milestone_at_head` set where it has that milestone, so that its next
//!   write indexes the entry after it (`after_milestone`); its older milestones have no
//!   such row, and the first prune to one of them walks down from the newest entry
//!   instead (`prune` in `embedded.rs`);
//!
//! and `meta` says schema 4. A crash before that commit leaves the file of schema 3, and
//! the next opening does it all again.

use std::path::Path;

use redb::{Database, ReadableTable, Table};

use super::{
    JOURNAL, LOG, META, MILESTONES, RECORDS, SCHEMA_KEY, SCHEMA_VERSION, codec, journal_bounds,
    log_step,
};
use crate::error::{Cause, StoreError};
use crate::history::{History, Replay};
use crate::store::{JournalEntry, StoredRecord};

/// The journal op of the create added for records older than schema 4.
pub const CREATE_OP: &str = r#"{"op":"create","data":{}}"#;

/// What [`upgrade`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Upgraded {
    /// Records rewritten.
    pub records: u64,
    /// Records whose journal was replayed and given milestones.
    pub replayed: u64,
    /// Journal entries those replays applied.
    pub entries: u64,
    /// Records whose journal was replayed but did not lead to their value (each logged).
    pub refused: u64,
}

/// Upgrades the file to [`SCHEMA_VERSION`] (see the module doc), giving records whose
/// journal exceeds `history`'s bound the milestones it needs.
pub(super) fn upgrade(
    db: &Database,
    file: &Path,
    history: &History,
) -> Result<Upgraded, StoreError> {
    let fail = |e: redb::Error| StoreError::Open {
        path: file.display().to_string(),
        reason: Cause::with_source(
            format!("upgrading the data file to schema {SCHEMA_VERSION}: {e}"),
            e,
        ),
    };
    let started = std::time::Instant::now();
    let now = crate::now_ms();
    let txn = db.begin_write().map_err(|e| fail(e.into()))?;
    let mut done = Upgraded::default();
    {
        let mut records = txn.open_table(RECORDS).map_err(|e| fail(e.into()))?;
        let mut journal = txn.open_table(JOURNAL).map_err(|e| fail(e.into()))?;
        let log = txn.open_table(LOG).map_err(|e| fail(e.into()))?;
        let mut milestones = txn.open_table(MILESTONES).map_err(|e| fail(e.into()))?;
        // Names first: the table cannot change while it is iterated.
        let mut old = Vec::new();
        for item in records.iter().map_err(|e| fail(e.into()))? {
            let (key, value) = item.map_err(|e| fail(e.into()))?;
            let name = std::str::from_utf8(key.value()).map_err(|e| {
                codec::corrupt(
                    &String::from_utf8_lossy(key.value()),
                    format!("a record name is not UTF-8: {e}"),
                )
            })?;
            if codec::record_format(name, value.value())? < codec::FORMAT_V3 {
                old.push(name.to_owned());
            }
        }
        for name in &old {
            let (record, head) = {
                let guard = records
                    .get(codec::record_key(name))
                    .map_err(|e| fail(e.into()))?
                    .ok_or_else(|| codec::corrupt(name, "vanished during the upgrade"))?;
                (
                    codec::decode_record(name, guard.value())?,
                    codec::decode_record_head(name, guard.value())?,
                )
            };
            let record = StoredRecord {
                created: 0,
                deleted: false,
                ..record
            };
            let (key, value) = codec::encode_journal(
                name,
                &JournalEntry {
                    version: 0,
                    time: record.ctime,
                    op: CREATE_OP.to_owned(),
                    author: None,
                    origin: None,
                },
            );
            // Schema 3 never journaled version 0 (a record was created empty, without an
            // entry); should one be there, it is kept.
            if journal
                .get(key.as_slice())
                .map_err(|e| fail(e.into()))?
                .is_none()
            {
                journal
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(|e| fail(e.into()))?;
            }
            if record.version > 0 && history.may_prune(record.version, 0) {
                let mut tables = Tables {
                    journal: &journal,
                    log: &log,
                    milestones: &mut milestones,
                };
                match replay(&mut tables, name, &record, head.log_head, history, now)
                    .map_err(fail)?
                {
                    Outcome::NotNeeded => {}
                    Outcome::Replayed { entries } => {
                        done.replayed += 1;
                        done.entries += entries;
                    }
                    Outcome::Refused(why) => {
                        done.refused += 1;
                        tracing::warn!(
                            file = %file.display(),
                            record = %name,
                            version = record.version,
                            reason = %why,
                            "upgrading: the record's journal does not replay to its value, \
                             so its whole history is kept (retention prunes it only after \
                             history.keepOps more writes); its current value is unchanged"
                        );
                    }
                }
            }
            if record.version > 0 {
                let (key, value) =
                    codec::encode_milestone(name, record.version, record.mtime, &record.data);
                milestones
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(|e| fail(e.into()))?;
            }
            let head = codec::Head {
                version: record.version,
                log_head: head.log_head,
                start: 0,
                milestone_at_head: record.version > 0,
            };
            let value = codec::encode_record(&record, &head);
            records
                .insert(codec::record_key(name), value.as_slice())
                .map_err(|e| fail(e.into()))?;
            done.records += 1;
        }
        txn.open_table(META)
            .map_err(|e| fail(e.into()))?
            .insert(SCHEMA_KEY, SCHEMA_VERSION)
            .map_err(|e| fail(e.into()))?;
    }
    txn.commit().map_err(|e| fail(e.into()))?;
    tracing::info!(
        file = %file.display(),
        records = done.records,
        replayed = done.replayed,
        replayed_entries = done.entries,
        refused = done.refused,
        millis = started.elapsed().as_millis() as u64,
        schema = SCHEMA_VERSION,
        "upgraded the data file: every record keeps its versions and journal, and has a \
         create entry at version 0; records with more history than retention keeps were \
         replayed to give them milestones"
    );
    Ok(done)
}

/// The tables a replay reads and writes.
struct Tables<'a, 'txn> {
    journal: &'a Table<'txn, &'static [u8], &'static [u8]>,
    log: &'a Table<'txn, u64, &'static [u8]>,
    milestones: &'a mut Table<'txn, &'static [u8], &'static [u8]>,
}

/// What [`replay`] made of a record.
#[derive(Debug)]
enum Outcome {
    /// Retention would not move its history start: no milestones needed.
    NotNeeded,
    /// Its milestones are stored; it replayed this many entries.
    Replayed { entries: u64 },
    /// Its journal does not lead to its value, for this reason; nothing was stored.
    Refused(String),
}

/// Replays `record`'s journal (its entries in `journal`, the create at 0 included, then
/// its `log` entries from `log_head` down) and stores the milestones retention keeps
/// (see the module doc). Errors are redb's only: whatever is wrong with the record's
/// journal is an [`Outcome::Refused`].
fn replay(
    t: &mut Tables<'_, '_>,
    name: &str,
    record: &StoredRecord,
    log_head: u64,
    history: &History,
    now: u64,
) -> Result<Outcome, redb::Error> {
    let every = history.milestone_every.max(1);
    // 1. Where retention would start its history: the versions and times of the
    //    entries where milestones fall, and the keys of its log entries, oldest first.
    let mut candidates = Vec::new();
    let (lo, hi) = journal_bounds(name, 0, u64::MAX);
    for item in t.journal.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
        let (key, value) = item?;
        match codec::decode_journal(name, key.value(), value.value()) {
            Ok(entry) if entry.version > 0 && entry.version.is_multiple_of(every) => {
                candidates.push((entry.version, entry.time));
            }
            Ok(_) => {}
            Err(e) => return Ok(Outcome::Refused(e.to_string())),
        }
    }
    let mut seqs = Vec::new();
    let mut log_candidates = Vec::new();
    let mut seq = log_head;
    while seq != 0 {
        let step = {
            let guard = t.log.get(seq)?;
            log_step(name, seq, guard.as_ref().map(|v| v.value()))
        };
        let (entry, prev) = match step {
            Ok(step) => step,
            Err(e) => return Ok(Outcome::Refused(e.to_string())),
        };
        if entry.version > 0 && entry.version.is_multiple_of(every) {
            log_candidates.push((entry.version, entry.time));
        }
        seqs.push(seq);
        seq = prev;
    }
    candidates.extend(log_candidates.into_iter().rev());
    candidates.push((record.version, record.mtime));
    let Some(start) = history.prune_start(record.version, 0, &candidates, now) else {
        return Ok(Outcome::NotNeeded);
    };
    drop(candidates);

    // 2. The replay, storing the milestones from `start` on as it goes.
    let mut replay = Replay::new(history, start);
    let mut entries = 0;
    let journal = t.journal;
    let log = t.log;
    let mut refused = None;
    for item in journal.range::<&[u8]>(lo.as_slice()..=hi.as_slice())? {
        let (key, value) = item?;
        entries += 1;
        let verdict = match codec::decode_journal(name, key.value(), value.value()) {
            Ok(entry) => step(t.milestones, &mut replay, name, record, &entry)?,
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = verdict {
            refused = Some(why);
            break;
        }
    }
    if refused.is_none() {
        for &seq in seqs.iter().rev() {
            let decoded = {
                let guard = log.get(seq)?;
                log_step(name, seq, guard.as_ref().map(|v| v.value()))
            };
            entries += 1;
            let verdict = match decoded {
                Ok((entry, _)) => step(t.milestones, &mut replay, name, record, &entry)?,
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = verdict {
                refused = Some(why);
                break;
            }
        }
    }
    let why = match refused {
        Some(why) => why,
        None => match replay.finish(record.version, &record.data) {
            Ok(()) => return Ok(Outcome::Replayed { entries }),
            Err(why) => why,
        },
    };
    // Not one milestone of a journal that does not lead to the value.
    let (lo, hi) = journal_bounds(name, start, record.version.saturating_sub(1));
    t.milestones
        .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
    Ok(Outcome::Refused(why))
}

/// Applies `entry` to `replay` and stores the milestone due at its version (below the
/// record's version: that one is the stored value, which the caller writes). The error
/// is redb's; the verdict's error says why the journal cannot be replayed.
fn step(
    milestones: &mut Table<'_, &'static [u8], &'static [u8]>,
    replay: &mut Replay,
    name: &str,
    record: &StoredRecord,
    entry: &JournalEntry,
) -> Result<Result<(), String>, redb::Error> {
    match replay.apply(entry.version, &entry.op) {
        Ok(Some(data)) if entry.version < record.version => {
            let (key, value) = codec::encode_milestone(name, entry.version, entry.time, &data);
            milestones.insert(key.as_slice(), value.as_slice())?;
            Ok(Ok(()))
        }
        Ok(_) => Ok(Ok(())),
        Err(why) => Ok(Err(why)),
    }
}
