//! How a batch becomes SQL: the pure part of [`PostgresStore::commit`], testable without a
//! database.
//!
//! A commit is one transaction in four steps:
//!
//! 1. **Lock** the batch's records that have a row, tombstones included (`SELECT ... ORDER
//!    BY name FOR UPDATE`): their versions and history starts can no longer change under
//!    us.
//! 2. **Claim** the records the batch creates (its first write to a name without a row has
//!    base `None`): insert that write's record, `ON CONFLICT DO NOTHING`, in name order. A
//!    name another node created meanwhile is not claimed, and every write of the batch to
//!    it conflicts.
//! 3. **Milestones** of the records that may prune (see [`History::may_prune`]) are read,
//!    versions and times only.
//! 4. **Apply**: [`plan`] replays the batch in order against those versions, exactly as
//!    the in-memory store does (base checks, in-batch chaining, conflict fencing,
//!    milestones where due, retention), and gives the outcomes and the net effect, written
//!    with one statement per kind of change (record upserts, journal and milestone
//!    inserts, then the prunes of journal rows and milestones below the new starts).
//!
//! Every transaction takes its row locks in one global order — existing records by
//! name, then new records by name — and step 4 only touches rows of records it already
//! holds, so two nodes committing overlapping batches wait for each other but never
//! deadlock.
//!
//! [`PostgresStore::commit`]: super::PostgresStore

use std::collections::{HashMap, HashSet};

use crate::history::History;
use crate::store::{JournalEntry, StoredRecord, Write, WriteOutcome};

/// A record's row as step 1 found (and locked) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Existing {
    pub version: u64,
    pub history_start: u64,
}

/// The distinct names of a batch, sorted (the order locks are taken in).
pub(super) fn names(batch: &[Write]) -> Vec<&str> {
    let mut names: Vec<&str> = batch.iter().map(Write::name).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The history start of a record created by `write` (base `None`): its first entry.
pub(super) fn new_start(write: &Write) -> u64 {
    let Write::Put {
        record, entries, ..
    } = write;
    entries.first().map_or(record.version, |e| e.version)
}

/// The records step 2 inserts, with their history starts: for each name absent from
/// `existing` whose first write in the batch is a create (`Put` with base `None`), that
/// write's record; sorted by name.
pub(super) fn claims<'a>(
    batch: &'a [Write],
    existing: &HashMap<String, Existing>,
) -> Vec<(&'a StoredRecord, u64)> {
    let mut seen = HashSet::new();
    let mut claims = Vec::new();
    for write in batch {
        let name = write.name();
        if !seen.insert(name) || existing.contains_key(name) {
            continue;
        }
        if let Write::Put {
            record,
            base_version: None,
            ..
        } = write
        {
            claims.push((record, new_start(write)));
        }
    }
    claims.sort_unstable_by(|a, b| a.0.name.cmp(&b.0.name));
    claims
}

/// The names whose milestones step 3 reads: those whose writes in the batch may prune
/// (assuming every write commits; a conflict only makes the read unnecessary).
pub(super) fn may_prune<'a>(
    batch: &'a [Write],
    existing: &HashMap<String, Existing>,
    history: &History,
) -> Vec<&'a str> {
    let mut starts: HashMap<&str, u64> = HashMap::new();
    let mut names = Vec::new();
    for write in batch {
        let name = write.name();
        let start = *starts.entry(name).or_insert_with(|| {
            existing
                .get(name)
                .map_or_else(|| new_start(write), |e| e.history_start)
        });
        let Write::Put { record, .. } = write;
        if history.may_prune(record.version, start) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// What step 4 writes.
#[derive(Debug, Default)]
pub(super) struct Plan<'a> {
    /// One per write of the batch, in order.
    pub outcomes: Vec<WriteOutcome>,
    /// Records to insert or overwrite with this final state and history start.
    pub upsert_records: Vec<(&'a StoredRecord, u64)>,
    /// Journal entries to insert, at most one per (name, version).
    pub journal: Vec<(&'a str, &'a JournalEntry)>,
    /// Milestones to insert: name, version, time of its entry, data.
    pub milestones: Vec<(&'a str, u64, u64, &'a str)>,
    /// Records whose history start moved: journal rows at or below it and milestones
    /// below it are deleted (after the inserts).
    pub prune: Vec<(&'a str, u64)>,
}

impl Plan<'_> {
    /// Whether the transaction changed anything (if not, it is rolled back: no fsync).
    pub fn changes(&self, claimed: usize) -> bool {
        claimed > 0
            || !self.upsert_records.is_empty()
            || !self.journal.is_empty()
            || !self.milestones.is_empty()
            || !self.prune.is_empty()
    }
}

/// Where one record stands while the batch is replayed.
struct State<'a> {
    /// Its version now (`None`: no row).
    current: Option<u64>,
    /// Its history start now (for a name without a row: unknown yet).
    start: Option<u64>,
    /// Whether a row for it is in the table now (existing, or claimed in step 2).
    in_table: bool,
    /// The final record, if it must be written.
    write: Option<&'a StoredRecord>,
    /// Journal entries to insert, in version order.
    entries: Vec<&'a JournalEntry>,
    /// Its milestones (version, time), those in the table and those of this batch.
    milestones: Vec<(u64, u64)>,
    /// Milestones of this batch: version, time, data.
    new_milestones: Vec<(u64, u64, &'a str)>,
    /// Whether its history start moved.
    pruned: bool,
    /// Set once a write conflicted: every later write conflicts with this `current`.
    failed: Option<Option<u64>>,
}

/// Replays `batch` against the locked rows. `existing`: the rows found (and locked) in
/// step 1. `claimed`: names whose claim succeeded. `lost`: names whose claim failed, with
/// the version another writer stored. `milestones`: what step 3 read, (version, time)
/// ascending per name. `now`: for retention by age.
pub(super) fn plan<'a>(
    batch: &'a [Write],
    existing: &HashMap<String, Existing>,
    claimed: &HashSet<String>,
    lost: &HashMap<String, Option<u64>>,
    milestones: &HashMap<String, Vec<(u64, u64)>>,
    history: &History,
    now: u64,
) -> Plan<'a> {
    let mut states: HashMap<&'a str, State<'a>> = HashMap::new();
    // Names in order of first appearance, so that the plan's lists are deterministic.
    let mut order: Vec<&'a str> = Vec::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    for write in batch {
        let name = write.name();
        let state = states.entry(name).or_insert_with(|| {
            order.push(name);
            let found = existing.get(name);
            State {
                current: found.map(|e| e.version),
                start: found.map(|e| e.history_start),
                in_table: found.is_some(),
                write: None,
                entries: Vec::new(),
                milestones: milestones.get(name).cloned().unwrap_or_default(),
                new_milestones: Vec::new(),
                pruned: false,
                failed: lost.get(name).copied(),
            }
        });
        if let Some(current) = state.failed {
            outcomes.push(WriteOutcome::Conflict { current });
            continue;
        }
        let Write::Put {
            record,
            base_version,
            entries,
        } = write;
        if state.current != *base_version {
            state.failed = Some(state.current);
            outcomes.push(WriteOutcome::Conflict {
                current: state.current,
            });
            continue;
        }
        if !state.in_table && claimed.contains(name) {
            // The claim stored exactly this record, with this start, already.
            state.in_table = true;
            state.write = None;
        } else {
            state.write = Some(record);
        }
        let start = *state.start.get_or_insert_with(|| new_start(write));
        state.current = Some(record.version);
        state.entries.extend(entries);
        if history.milestone_due(*base_version, record.version) {
            let time = entries.last().map_or(record.mtime, |e| e.time);
            state.milestones.push((record.version, time));
            state
                .new_milestones
                .push((record.version, time, record.data.as_str()));
        }
        if let Some(start) = history.prune_start(record.version, start, &state.milestones, now) {
            state.start = Some(start);
            state.milestones.retain(|&(m, _)| m >= start);
            state.pruned = true;
            // The row must carry the new start, claimed or not.
            state.write = Some(record);
        }
        outcomes.push(WriteOutcome::Committed);
    }

    let mut plan = Plan {
        outcomes,
        ..Plan::default()
    };
    for name in order {
        let state = &states[name];
        let start = state.start.unwrap_or(0);
        if let Some(record) = state.write {
            plan.upsert_records.push((record, start));
        }
        // What the prune would delete again is not inserted at all.
        let kept = |version: u64| !state.pruned || version > start;
        plan.journal.extend(
            state
                .entries
                .iter()
                .filter(|e| kept(e.version))
                .map(|&entry| (name, entry)),
        );
        plan.milestones.extend(
            state
                .new_milestones
                .iter()
                .filter(|&&(m, _, _)| !state.pruned || m >= start)
                .map(|&(m, time, data)| (name, m, time, data)),
        );
        if state.pruned {
            plan.prune.push((name, start));
        }
    }
    plan
}

/// Whether jsonb can hold the value of this JSON text. It cannot hold a string with a
/// `\u0000` escape, nor a number beyond the range of PostgreSQL's `numeric` (more than
/// 131,072 digits before the decimal point, or more than 16,383 after it: `1e+200000`,
/// `1e-20000`), which recordsync keeps as written. Such a value is stored exactly in
/// `data_json`, with `data`, the jsonb copy, NULL, rather than refused.
pub(super) fn jsonb_can_hold(json: &str) -> bool {
    let bytes = json.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        // A backslash only starts an escape; skip the escaped character so
                        // that `\\u0000` (a backslash, then the text u0000) does not count.
                        if bytes.get(i + 1..i + 6) == Some(b"u0000") {
                            return false;
                        }
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                if !numeric_can_hold(&json[start..i]) {
                    return false;
                }
            }
            _ => i += 1,
        }
    }
    true
}

/// Whether PostgreSQL's `numeric` can hold the JSON number `token`: at most 131,072
/// digits before the decimal point and 16,383 after it, once the exponent is applied.
fn numeric_can_hold(token: &str) -> bool {
    let unsigned = token.strip_prefix('-').unwrap_or(token);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    // An exponent too long for an i64 is beyond any range.
    let Ok(exponent) = exponent.parse::<i64>() else {
        return false;
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let before = whole.len() as i64 + exponent;
    let after = fraction.len() as i64 - exponent;
    before <= 131_072 && after <= 16_383
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, version: u64) -> StoredRecord {
        StoredRecord {
            name: name.into(),
            version,
            created: 0,
            deleted: false,
            data: "{}".into(),
            ctime: 0,
            mtime: 0,
        }
    }

    fn entry(version: u64) -> JournalEntry {
        JournalEntry {
            version,
            time: version,
            op: "{}".into(),
            author: None,
            origin: None,
        }
    }

    /// `name` from `base` (`None`: nothing, its create at 0) to `version`.
    fn put(name: &str, version: u64, base: Option<u64>) -> Write {
        Write::Put {
            record: record(name, version),
            base_version: base,
            entries: (base.map_or(0, |b| b + 1)..=version).map(entry).collect(),
        }
    }

    fn delete(name: &str, version: u64) -> Write {
        Write::Put {
            record: StoredRecord {
                deleted: true,
                data: "null".into(),
                ..record(name, version)
            },
            base_version: Some(version - 1),
            entries: vec![entry(version)],
        }
    }

    fn existing_rows(rows: &[(&str, u64, u64)]) -> HashMap<String, Existing> {
        rows.iter()
            .map(|&(n, version, history_start)| {
                (
                    n.to_owned(),
                    Existing {
                        version,
                        history_start,
                    },
                )
            })
            .collect()
    }

    fn replay<'a>(
        batch: &'a [Write],
        existing: &HashMap<String, Existing>,
        claimed: &HashSet<String>,
        lost: &HashMap<String, Option<u64>>,
    ) -> Plan<'a> {
        super::plan(
            batch,
            existing,
            claimed,
            lost,
            &HashMap::new(),
            &History::keep_everything(),
            0,
        )
    }

    fn versions(plan: &Plan<'_>) -> Vec<u64> {
        plan.journal.iter().map(|(_, e)| e.version).collect()
    }

    #[test]
    fn claims_are_the_first_creates_of_absent_names_sorted() {
        let batch = vec![
            put("b", 1, None),
            put("b", 2, Some(1)),
            put("a", 1, None),
            put("c", 5, Some(4)),
            put("c", 1, None),
            put("e", 3, None),
        ];
        let existing = existing_rows(&[("e", 2, 0)]);
        let claims = claims(&batch, &existing);
        let names: Vec<&str> = claims.iter().map(|(r, _)| r.name.as_str()).collect();
        // c's first write is not a create (it conflicts); e exists.
        assert_eq!(names, ["a", "b"]);
        assert!(claims.iter().all(|&(_, start)| start == 0));
        assert_eq!(super::names(&batch), ["a", "b", "c", "e"]);
    }

    #[test]
    fn a_claimed_chain_writes_only_its_final_state() {
        let batch = vec![
            put("n", 1, None),
            put("n", 2, Some(1)),
            put("n", 3, Some(2)),
        ];
        let claimed = HashSet::from(["n".to_owned()]);
        let plan = replay(&batch, &HashMap::new(), &claimed, &HashMap::new());
        assert_eq!(plan.outcomes, vec![WriteOutcome::Committed; 3]);
        assert_eq!(plan.upsert_records.len(), 1);
        assert_eq!(plan.upsert_records[0].0.version, 3);
        assert_eq!(versions(&plan), [0, 1, 2, 3]);
        assert!(plan.prune.is_empty() && plan.milestones.is_empty());

        // A lone create is stored by its claim alone.
        let batch = vec![put("m", 1, None)];
        let claimed = HashSet::from(["m".to_owned()]);
        let plan = replay(&batch, &HashMap::new(), &claimed, &HashMap::new());
        assert!(plan.upsert_records.is_empty());
        assert_eq!(plan.journal.len(), 2);
        assert!(plan.changes(1));
    }

    #[test]
    fn a_lost_claim_fails_every_write_to_that_name() {
        let batch = vec![put("x", 1, None), put("y", 1, None), put("x", 2, Some(1))];
        let claimed = HashSet::from(["y".to_owned()]);
        let lost = HashMap::from([("x".to_owned(), Some(7))]);
        let plan = replay(&batch, &HashMap::new(), &claimed, &lost);
        let conflict = WriteOutcome::Conflict { current: Some(7) };
        assert_eq!(
            plan.outcomes,
            vec![conflict, WriteOutcome::Committed, conflict]
        );
        assert_eq!(plan.journal.len(), 2);
    }

    #[test]
    fn delete_then_recreate_keeps_the_whole_journal() {
        let existing = existing_rows(&[("r", 3, 0)]);
        let mut recreate = put("r", 6, Some(5));
        let Write::Put { record, .. } = &mut recreate;
        record.created = 6;
        let batch = vec![put("r", 4, Some(3)), delete("r", 5), recreate];
        let plan = replay(&batch, &existing, &HashSet::new(), &HashMap::new());
        assert_eq!(plan.outcomes, vec![WriteOutcome::Committed; 3]);
        assert_eq!(plan.upsert_records.len(), 1);
        let (record, start) = plan.upsert_records[0];
        assert_eq!(
            (record.version, record.created, record.deleted, start),
            (6, 6, false, 0)
        );
        assert_eq!(versions(&plan), [4, 5, 6]);
    }

    #[test]
    fn a_tombstone_conflicts_with_a_write_from_nothing() {
        let existing = existing_rows(&[("t", 4, 0)]);
        let batch = vec![put("t", 1, None)];
        let plan = replay(&batch, &existing, &HashSet::new(), &HashMap::new());
        assert_eq!(
            plan.outcomes,
            vec![WriteOutcome::Conflict { current: Some(4) }]
        );
        assert!(!plan.changes(0));
    }

    #[test]
    fn only_conflicts_change_nothing() {
        let existing = existing_rows(&[("a", 2, 0)]);
        let batch = vec![put("a", 2, Some(1)), put("a", 3, Some(2)), delete("b", 1)];
        let plan = replay(&batch, &existing, &HashSet::new(), &HashMap::new());
        assert_eq!(
            plan.outcomes,
            vec![
                WriteOutcome::Conflict { current: Some(2) },
                WriteOutcome::Conflict { current: Some(2) },
                WriteOutcome::Conflict { current: None },
            ]
        );
        assert!(!plan.changes(0));
    }

    /// Milestones where writes cross a multiple, and pruning as the memory store does:
    /// what the prune deletes again is not inserted.
    #[test]
    fn milestones_and_pruning_follow_the_history_settings() {
        let history = History {
            milestone_every: 10,
            keep_ops: Some(25),
            keep_age: None,
        };
        let existing = existing_rows(&[("h", 48, 0)]);
        let batch: Vec<Write> = (49..=56).map(|v| put("h", v, Some(v - 1))).collect();
        let names = may_prune(&batch, &existing, &history);
        assert_eq!(names, ["h"]);
        let milestones =
            HashMap::from([("h".to_owned(), vec![(10, 10), (20, 20), (30, 30), (40, 40)])]);
        let plan = super::plan(
            &batch,
            &existing,
            &HashSet::new(),
            &HashMap::new(),
            &milestones,
            &history,
            0,
        );
        // At 49: 49 - 25 = 24, start 20. At 50 a milestone; 30 is not 10 past 20 until
        // 55 - 25 = 30: start 30.
        assert_eq!(plan.prune, [("h", 30)]);
        assert_eq!(plan.upsert_records[0].1, 30);
        assert_eq!(
            plan.milestones
                .iter()
                .map(|m| (m.1, m.2))
                .collect::<Vec<_>>(),
            [(50, 50)]
        );
        assert_eq!(versions(&plan), (49..=56).collect::<Vec<_>>());
        // Nothing can prune without enough versions past the start.
        let later = existing_rows(&[("h", 48, 30)]);
        assert!(may_prune(&batch, &later, &history).is_empty());
    }

    #[test]
    fn nul_escapes_are_found_exactly() {
        assert!(!jsonb_can_hold(r#"{"a":"x\u0000y"}"#));
        assert!(!jsonb_can_hold(r#"["\\\u0000"]"#));
        assert!(
            jsonb_can_hold(r#"{"a":"x\\u0000y"}"#),
            "an escaped backslash"
        );
        assert!(!jsonb_can_hold(r#"{"a":"\u00001"}"#));
        assert!(jsonb_can_hold(r#"{"a":"\u0001"}"#));
        assert!(jsonb_can_hold(r#"{"a":"\"u0000"}"#));
        assert!(jsonb_can_hold(""));
        assert!(jsonb_can_hold("\\"));
    }

    /// The limits as PostgreSQL 15 reports them (`SELECT '[N]'::jsonb`).
    #[test]
    fn numbers_beyond_numeric_are_found() {
        for held in [
            "1e+400",
            "1e131071",
            "1e-16383",
            "-0",
            "5e-324",
            "1.7976931348623157e+308",
        ] {
            assert!(jsonb_can_hold(&format!("[{held}]")), "{held}");
        }
        for beyond in [
            "1e131072",
            "1e+200000",
            "1e-16384",
            "1.5e-16383",
            "12345e-16384",
            "0.1e-16383",
            "1e99999999999999999999",
        ] {
            assert!(
                !jsonb_can_hold(&format!(r#"{{"x":[1,{beyond}]}}"#)),
                "{beyond}"
            );
        }
        // Inside a string, digits are text.
        assert!(jsonb_can_hold(r#"{"x":"1e+200000"}"#));
    }
}
