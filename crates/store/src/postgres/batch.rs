//! How a batch becomes SQL: the pure part of [`PostgresStore::commit`], testable without a
//! database.
//!
//! A commit is one transaction in three steps:
//!
//! 1. **Lock** the batch's records that exist (`SELECT ... ORDER BY name FOR UPDATE`):
//!    their versions can no longer change under us.
//! 2. **Claim** the records the batch creates (its first write to a name that does not
//!    exist has base `None`): insert that write's record, `ON CONFLICT DO NOTHING`, in
//!    name order. A name another node created meanwhile is not claimed, and every write
//!    of the batch to it conflicts.
//! 3. **Apply**: [`plan`] replays the batch in order against those versions, exactly as
//!    the in-memory store does (base checks, in-batch chaining, conflict fencing), and
//!    gives the outcomes and the net effect per record, written with one statement per
//!    kind of change (journal wipes, record deletes, record upserts, journal inserts).
//!
//! Every transaction takes its row locks in one global order — existing records by
//! name, then new records by name — and step 3 only touches rows it already holds, so
//! two nodes committing overlapping batches wait for each other but never deadlock.
//!
//! [`PostgresStore::commit`]: super::PostgresStore

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::store::{JournalEntry, StoredRecord, Write, WriteOutcome};

/// The distinct names of a batch, sorted (the order locks are taken in).
pub(super) fn names(batch: &[Write]) -> Vec<&str> {
    let mut names: Vec<&str> = batch.iter().map(Write::name).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The records step 2 inserts: for each name absent from `existing` whose first write
/// in the batch is a create (`Put` with base `None`), that write's record; sorted by name.
pub(super) fn claims<'a>(
    batch: &'a [Write],
    existing: &HashMap<String, u64>,
) -> Vec<&'a StoredRecord> {
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
            claims.push(record);
        }
    }
    claims.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    claims
}

/// What step 3 writes.
#[derive(Debug, Default)]
pub(super) struct Plan<'a> {
    /// One per write of the batch, in order.
    pub outcomes: Vec<WriteOutcome>,
    /// Records whose journal is cleared (a delete was committed).
    pub wipe_journals: Vec<&'a str>,
    /// Records to remove.
    pub delete_records: Vec<&'a str>,
    /// Records to insert or overwrite with this final state.
    pub upsert_records: Vec<&'a StoredRecord>,
    /// Journal entries to insert (after the wipes), at most one per (name, version).
    pub journal: Vec<(&'a str, &'a JournalEntry)>,
}

impl Plan<'_> {
    /// Whether the transaction changed anything (if not, it is rolled back: no fsync).
    pub fn changes(&self, claimed: usize) -> bool {
        claimed > 0
            || !self.wipe_journals.is_empty()
            || !self.delete_records.is_empty()
            || !self.upsert_records.is_empty()
            || !self.journal.is_empty()
    }
}

/// Where one record stands while the batch is replayed.
struct State<'a> {
    /// Its version now (`None`: does not exist).
    current: Option<u64>,
    /// Whether a row for it is in the table now (existing, or claimed in step 2).
    in_table: bool,
    /// Whether it had journal rows in the table before this transaction.
    had_journal: bool,
    /// The final record, if it must be written.
    write: Option<&'a StoredRecord>,
    /// A delete was committed: clear the journal in the table.
    wipe: bool,
    /// Journal entries to insert, by version (a later one replaces an earlier one).
    entries: BTreeMap<u64, &'a JournalEntry>,
    /// Set once a write conflicted: every later write conflicts with this `current`.
    failed: Option<Option<u64>>,
}

/// Replays `batch` against the locked versions. `existing`: name → version of the
/// records found (and locked) in step 1. `claimed`: names whose claim succeeded.
/// `lost`: names whose claim failed, with the version another writer stored.
pub(super) fn plan<'a>(
    batch: &'a [Write],
    existing: &HashMap<String, u64>,
    claimed: &HashSet<String>,
    lost: &HashMap<String, Option<u64>>,
) -> Plan<'a> {
    let mut states: HashMap<&'a str, State<'a>> = HashMap::new();
    // Names in order of first appearance, so that the plan's lists are deterministic.
    let mut order: Vec<&'a str> = Vec::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    for write in batch {
        let name = write.name();
        let state = states.entry(name).or_insert_with(|| {
            order.push(name);
            let current = existing.get(name).copied();
            State {
                current,
                in_table: current.is_some(),
                had_journal: current.is_some(),
                write: None,
                wipe: false,
                entries: BTreeMap::new(),
                failed: lost.get(name).copied(),
            }
        });
        if let Some(current) = state.failed {
            outcomes.push(WriteOutcome::Conflict { current });
            continue;
        }
        match write {
            Write::Put {
                record,
                base_version,
                entry,
            } => {
                if state.current != *base_version {
                    state.failed = Some(state.current);
                    outcomes.push(WriteOutcome::Conflict {
                        current: state.current,
                    });
                    continue;
                }
                if !state.in_table && claimed.contains(name) {
                    // The claim stored exactly this record already.
                    state.in_table = true;
                    state.write = None;
                } else {
                    state.write = Some(record);
                }
                state.current = Some(record.version);
                if let Some(entry) = entry {
                    state.entries.insert(entry.version, entry);
                }
            }
            Write::Delete { base_version, .. } => {
                if state.current != Some(*base_version) {
                    state.failed = Some(state.current);
                    outcomes.push(WriteOutcome::Conflict {
                        current: state.current,
                    });
                    continue;
                }
                state.current = None;
                state.write = None;
                state.wipe |= state.had_journal;
                state.entries.clear();
            }
        }
        outcomes.push(WriteOutcome::Committed);
    }

    let mut plan = Plan {
        outcomes,
        ..Plan::default()
    };
    for name in order {
        let state = &states[name];
        if state.wipe {
            plan.wipe_journals.push(name);
        }
        match (state.current, state.write) {
            (None, _) if state.in_table => plan.delete_records.push(name),
            (Some(_), Some(record)) => plan.upsert_records.push(record),
            _ => {}
        }
        plan.journal
            .extend(state.entries.values().map(|&entry| (name, entry)));
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
            data: "{}".into(),
            ctime: 0,
            mtime: 0,
        }
    }

    fn entry(version: u64) -> JournalEntry {
        JournalEntry {
            version,
            time: 0,
            op: "{}".into(),
        }
    }

    fn put(name: &str, version: u64, base: Option<u64>) -> Write {
        Write::Put {
            record: record(name, version),
            base_version: base,
            entry: Some(entry(version)),
        }
    }

    fn delete(name: &str, base: u64) -> Write {
        Write::Delete {
            name: name.into(),
            base_version: base,
        }
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
        let existing = HashMap::from([("e".to_owned(), 2)]);
        let names: Vec<&str> = claims(&batch, &existing)
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        // c's first write is not a create (it conflicts); e exists.
        assert_eq!(names, ["a", "b"]);
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
        let plan = super::plan(&batch, &HashMap::new(), &claimed, &HashMap::new());
        assert_eq!(plan.outcomes, vec![WriteOutcome::Committed; 3]);
        assert_eq!(plan.upsert_records.len(), 1);
        assert_eq!(plan.upsert_records[0].version, 3);
        assert_eq!(
            plan.journal
                .iter()
                .map(|(_, e)| e.version)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(plan.delete_records.is_empty() && plan.wipe_journals.is_empty());

        // A lone create is stored by its claim alone.
        let batch = vec![put("m", 1, None)];
        let claimed = HashSet::from(["m".to_owned()]);
        let plan = super::plan(&batch, &HashMap::new(), &claimed, &HashMap::new());
        assert!(plan.upsert_records.is_empty());
        assert_eq!(plan.journal.len(), 1);
        assert!(plan.changes(1));
    }

    #[test]
    fn a_lost_claim_fails_every_write_to_that_name() {
        let batch = vec![put("x", 1, None), put("y", 1, None), put("x", 2, Some(1))];
        let claimed = HashSet::from(["y".to_owned()]);
        let lost = HashMap::from([("x".to_owned(), Some(7))]);
        let plan = super::plan(&batch, &HashMap::new(), &claimed, &lost);
        let conflict = WriteOutcome::Conflict { current: Some(7) };
        assert_eq!(
            plan.outcomes,
            vec![conflict, WriteOutcome::Committed, conflict]
        );
        assert_eq!(plan.journal.len(), 1);
    }

    #[test]
    fn delete_then_recreate_wipes_the_old_journal_and_keeps_the_new() {
        let existing = HashMap::from([("r".to_owned(), 3)]);
        let batch = vec![
            put("r", 4, Some(3)),
            delete("r", 4),
            put("r", 1, None),
            put("r", 2, Some(1)),
        ];
        let plan = super::plan(&batch, &existing, &HashSet::new(), &HashMap::new());
        assert_eq!(plan.outcomes, vec![WriteOutcome::Committed; 4]);
        assert_eq!(plan.wipe_journals, ["r"]);
        assert!(plan.delete_records.is_empty(), "overwritten, not deleted");
        assert_eq!(plan.upsert_records[0].version, 2);
        assert_eq!(
            plan.journal
                .iter()
                .map(|(_, e)| e.version)
                .collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn create_then_delete_of_a_claimed_name_removes_the_claim() {
        let batch = vec![put("t", 1, None), delete("t", 1)];
        let claimed = HashSet::from(["t".to_owned()]);
        let plan = super::plan(&batch, &HashMap::new(), &claimed, &HashMap::new());
        assert_eq!(plan.delete_records, ["t"]);
        assert!(plan.wipe_journals.is_empty(), "it had no journal rows");
        assert!(plan.journal.is_empty());
    }

    #[test]
    fn only_conflicts_change_nothing() {
        let existing = HashMap::from([("a".to_owned(), 2)]);
        let batch = vec![put("a", 2, Some(1)), put("a", 3, Some(2)), delete("b", 0)];
        let plan = super::plan(&batch, &existing, &HashSet::new(), &HashMap::new());
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
