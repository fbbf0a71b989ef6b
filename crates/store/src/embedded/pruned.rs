//! Journal entries a prune let go, deleted later and in key order.
//!
//! A prune (`prune` in `embedded.rs`) moves a record's history start and makes the oldest
//! kept entry link to 0, so that no walk reaches the entries below it. Deleting those
//! entries right there, one `log` delete each down their links, made the commit that
//! pruned do a hundred scattered deletes (the default retention prunes each record once
//! every `History::prune_step` writes): each one copied a `log` page that no other write
//! of the commit touched, since a record's old entries lie among every other record's.
//!
//! So a prune only notes the chain it cut off, one row in `pruned_chains` (the `log` key
//! of the chain's newest entry → the record's name and its new history start), in the
//! commit's own transaction. [`sweep`] deletes many noted chains in one transaction: it
//! walks each one and deletes its entries in key order, so that the pages that entries of
//! many records share are copied once, and pages emptied whole are freed. The checkpoint
//! thread sweeps after each checkpoint while commits go on, in slices of about
//! [`SLICE_ENTRIES`] entries: each slice is walked without the writer, in a read
//! transaction ([`plan`]), and only its deletions, in key order and in one pass where the
//! entries lie close together, are made under it ([`apply`]), so commits wait for a
//! short slice at most (sweeping a checkpoint's worth of prunes in one transaction made
//! commits wait tens of milliseconds; walking under the writer, even giving way after
//! each chain, put the sweep on the durable p99: `bench/NOTES.md`); the next checkpoint
//! makes them durable.
//! Opening sweeps everything, after the replay and in the reclaim, whose counts of
//! deleted entries decide whether to compact.
//!
//! **Invariants.** A noted chain is unreachable from every record (its top's newer
//! neighbour links to 0), so reads never see a noted entry, and deleting it changes no
//! answer. The row and the relink are in one transaction, so a crash leaves both or
//! neither; the write-ahead log replays a lost commit's prune, which notes the chain
//! again, and a lost sweep leaves its rows, which the next one finds. Chains are disjoint: a later prune of the same record cuts above the entry the
//! earlier one relinked. Until swept, a chain takes space in the file, at most one
//! checkpoint's worth.
//!
//! **Safety.** Every entry is checked before it is deleted: it must be the noted
//! record's, below the history start, with versions falling along the links, so that a
//! damaged row or link never deletes another record's entry. A damaged entry ends its
//! chain's deletion with a warning rather than failing the checkpoint: what lies below it
//! is unreachable and only takes space (it was unreadable before too).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::{LOG, Tables, codec, db_error};
use crate::error::StoreError;

/// Entries the checkpoint thread deletes per transaction, about (whole chains: the one
/// that reaches it is finished).
pub(super) const SLICE_ENTRIES: u64 = 2_000;

/// `log` key of a pruned chain's newest entry → its record's history start (8 bytes,
/// little-endian) and name (UTF-8).
pub(super) const PRUNED_CHAINS: TableDefinition<u64, &[u8]> = TableDefinition::new("pruned_chains");

/// Notes that `name`'s entries from `top` down its links are to be deleted, the record's
/// history now starting at `start`.
pub(super) fn note(
    t: &mut Tables<'_>,
    dir: &Path,
    name: &str,
    top: u64,
    start: u64,
) -> Result<(), StoreError> {
    let mut value = Vec::with_capacity(8 + name.len());
    value.extend_from_slice(&start.to_le_bytes());
    value.extend_from_slice(name.as_bytes());
    t.pruned_chains
        .insert(top, value.as_slice())
        .map_err(|e| db_error(dir, "pruning history", Some(name), e))?;
    Ok(())
}

/// What [`sweep`] did.
#[derive(Debug, Default)]
pub(super) struct Swept {
    /// Entries deleted.
    pub entries: u64,
    /// Rows of noted chains deleted (with their entries, or left in the file if damaged).
    pub chains: u64,
    /// Whether noted chains are left.
    pub more: bool,
}

/// Deletes noted chains (see the module doc), whole ones, until it has deleted at least
/// `budget` entries (`None`: every chain) or `yield_now` says to stop (asked after each
/// chain, so at least one is deleted per call).
///
/// Each chain's entries are deleted in key order as soon as it is walked, and its row
/// with them, so that a call stopped between chains leaves only whole chains noted. The
/// pages that the chains of one call share are still copied once, since they are all in
/// one transaction.
pub(super) fn sweep(
    t: &mut Tables<'_>,
    dir: &Path,
    budget: Option<u64>,
    yield_now: &dyn Fn() -> bool,
) -> Result<Swept, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "deleting pruned history", None, e);
    let budget = budget.unwrap_or(u64::MAX);
    let mut swept = Swept::default();
    let mut doomed = Vec::new();
    loop {
        let Some((top, row)) = t
            .pruned_chains
            .first()
            .map_err(|e| fail(e.into()))?
            .map(|(key, value)| (key.value(), value.value().to_vec()))
        else {
            return Ok(swept);
        };
        if swept.chains > 0 && (swept.entries >= budget || yield_now()) {
            swept.more = true;
            return Ok(swept);
        }
        doomed.clear();
        match decode_row(top, &row) {
            Ok((name, start)) => collect_chain(&t.log, dir, name, top, start, &mut doomed)?,
            Err(reason) => tracing::warn!(
                dir = %dir.display(),
                chain = top,
                %reason,
                "pruning: a noted chain of old journal entries is damaged; its entries stay \
                 in the file, unreachable"
            ),
        }
        doomed.sort_unstable();
        for (seq, _) in &doomed {
            t.log.remove(*seq).map_err(|e| fail(e.into()))?;
        }
        t.pruned_chains.remove(top).map_err(|e| fail(e.into()))?;
        swept.entries += doomed.len() as u64;
        swept.chains += 1;
    }
}

/// A sweep walked outside the writer ([`plan`]), to be carried out by [`apply`] under it.
///
/// Why: the checkpoint thread sweeps while commits come in, and everything it does under
/// the writer delays them. Walking the chains (a `log` read per entry, down the links) is
/// most of the work and needs no writer: entries below a record's history start never
/// change and nothing but a sweep removes a noted row, so what a read transaction sees of
/// them still holds when the writer is taken. Under the writer, the planned entries of
/// many chains are then deleted together in key order, in one pass over their key range
/// where they lie close together (so that each page the chains share is rewritten once),
/// and their rows with them.
pub(super) struct Plan {
    chains: Vec<PlannedChain>,
    /// (log key, version, index into `chains`), in key order.
    doomed: Vec<(u64, u64, usize)>,
}

struct PlannedChain {
    top: u64,
    /// The row as the plan read it; [`apply`] refuses a plan whose rows changed.
    row: Vec<u8>,
    /// The record's name (empty for a damaged row, whose entries stay).
    name: String,
}

/// A planned sweep's entries are deleted in one pass over their key range when at most
/// this many keys of the range lie between two of them on average (the pass reads every
/// entry of the range); otherwise one by one.
const DENSE_SPAN: u64 = 4;

/// Reads noted chains in key order of their rows, whole chains, until at least `budget`
/// entries are planned; `None` when nothing is noted. Runs in a read transaction: the
/// writer is not needed (see [`Plan`]).
pub(super) fn plan(db: &Database, dir: &Path, budget: u64) -> Result<Option<Plan>, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "deleting pruned history", None, e);
    let txn = db.begin_read().map_err(|e| fail(e.into()))?;
    let rows = match txn.open_table(PRUNED_CHAINS) {
        Ok(rows) => rows,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(fail(e.into())),
    };
    let log = txn.open_table(LOG).map_err(|e| fail(e.into()))?;
    let mut plan = Plan {
        chains: Vec::new(),
        doomed: Vec::new(),
    };
    let mut entries = Vec::new();
    for row in rows.iter().map_err(|e| fail(e.into()))? {
        if plan.doomed.len() as u64 >= budget {
            break;
        }
        let (key, value) = row.map_err(|e| fail(e.into()))?;
        let (top, row) = (key.value(), value.value().to_vec());
        entries.clear();
        let name = match decode_row(top, &row) {
            Ok((name, start)) => {
                collect_chain(&log, dir, name, top, start, &mut entries)?;
                name.to_owned()
            }
            Err(reason) => {
                tracing::warn!(
                    dir = %dir.display(),
                    chain = top,
                    %reason,
                    "pruning: a noted chain of old journal entries is damaged; its entries \
                     stay in the file, unreachable"
                );
                String::new()
            }
        };
        let index = plan.chains.len();
        plan.doomed
            .extend(entries.iter().map(|&(seq, version)| (seq, version, index)));
        plan.chains.push(PlannedChain { top, row, name });
    }
    if plan.chains.is_empty() {
        return Ok(None);
    }
    plan.doomed.sort_unstable();
    Ok(Some(plan))
}

/// Carries out `plan` in the writer's transaction: deletes its entries and its rows;
/// `false` (and nothing changed) if a row is no longer as planned. An entry that is no
/// longer the planned record's planned version is kept, with a warning.
pub(super) fn apply(t: &mut Tables<'_>, dir: &Path, plan: &Plan) -> Result<bool, StoreError> {
    let fail = |e: redb::Error| db_error(dir, "deleting pruned history", None, e);
    for chain in &plan.chains {
        let row = t.pruned_chains.get(chain.top).map_err(|e| fail(e.into()))?;
        if row.as_ref().map(|row| row.value()) != Some(chain.row.as_slice()) {
            return Ok(false);
        }
    }
    let planned = |seq: u64, value: &[u8], &(_, version, chain): &(u64, u64, usize)| {
        matches!(codec::log_link(&plan.chains[chain].name, seq, value),
            Ok((found, _)) if found == version)
    };
    let mut kept = 0u64;
    if let (Some(first), Some(last)) = (plan.doomed.first(), plan.doomed.last()) {
        let span = last.0 - first.0 + 1;
        if span <= DENSE_SPAN.saturating_mul(plan.doomed.len() as u64) {
            t.log
                .retain_in(first.0..=last.0, |seq, value| {
                    match plan.doomed.binary_search_by_key(&seq, |d| d.0) {
                        Ok(i) if planned(seq, value, &plan.doomed[i]) => false,
                        Ok(_) => {
                            kept += 1;
                            true
                        }
                        Err(_) => true,
                    }
                })
                .map_err(|e| fail(e.into()))?;
        } else {
            for doomed in &plan.doomed {
                let matches = {
                    let entry = t.log.get(doomed.0).map_err(|e| fail(e.into()))?;
                    entry.is_some_and(|entry| planned(doomed.0, entry.value(), doomed))
                };
                if matches {
                    t.log.remove(doomed.0).map_err(|e| fail(e.into()))?;
                } else {
                    kept += 1;
                }
            }
        }
    }
    if kept > 0 {
        tracing::warn!(
            dir = %dir.display(),
            kept,
            "pruning: journal entries planned for deletion changed before the deletion; \
             they are kept"
        );
    }
    for chain in &plan.chains {
        t.pruned_chains
            .remove(chain.top)
            .map_err(|e| fail(e.into()))?;
    }
    Ok(true)
}

/// A row's record name and history start.
fn decode_row(top: u64, row: &[u8]) -> Result<(&str, u64), String> {
    let (start, name) = row
        .split_first_chunk::<8>()
        .ok_or_else(|| format!("its row ({} bytes) is cut short", row.len()))?;
    let name = std::str::from_utf8(name)
        .map_err(|e| format!("the record name in its row (chain {top}) is not UTF-8: {e}"))?;
    Ok((name, u64::from_le_bytes(*start)))
}

/// Adds `name`'s entries from `seq` down its links to `doomed`, checking each (module
/// doc, "Safety").
fn collect_chain(
    log: &impl ReadableTable<u64, &'static [u8]>,
    dir: &Path,
    name: &str,
    mut seq: u64,
    start: u64,
    doomed: &mut Vec<(u64, u64)>,
) -> Result<(), StoreError> {
    let mut above = start.saturating_add(1);
    while seq != 0 {
        let guard = log
            .get(seq)
            .map_err(|e| db_error(dir, "deleting pruned history", Some(name), e))?;
        let link = match guard {
            Some(value) => codec::log_link(name, seq, value.value()),
            None => Err(codec::corrupt(
                name,
                format!("journal entry {seq} is missing from the log"),
            )),
        };
        let link = match link {
            Ok((version, prev)) if version < above => Ok((version, prev)),
            Ok((version, _)) => Err(codec::corrupt(
                name,
                format!(
                    "journal entry {seq} is version {version}, not below {above} as its \
                     place in the chain says"
                ),
            )),
            Err(e @ StoreError::Corrupt { .. }) => Err(e),
            Err(e) => return Err(e),
        };
        match link {
            Ok((version, prev)) => {
                doomed.push((seq, version));
                above = version;
                seq = prev;
            }
            Err(e) => {
                tracing::warn!(
                    dir = %dir.display(),
                    record = %name,
                    reason = %e,
                    "pruning: the record's old journal is damaged below its new history \
                     start; the entries from the damage down stay in the file, unreachable"
                );
                break;
            }
        }
    }
    Ok(())
}
