//! Fuzzes journal ops (`recordsync_core::JournalOp`): reading journal text, and a path
//! write's json0 form (`WriteOp::to_json0`) against the write itself.
//!
//! The input is any text, read as a journal op; and when it is JSON `[doc, op]`, the op
//! (a journal op's JSON) is applied to `doc` (the dictionary `dicts/journal_op.dict` has
//! the ops' tags and fields). Checks, beyond "never panics":
//! - a journal op that reads writes back as text that reads to the same op;
//! - a valid path write's json0 form applies to `doc` and gives exactly what the write
//!   gives (same text: key order and numbers), and its inverse gives `doc` back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recordsync_core::JournalOp;
use recordsync_core::json0;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(op) = JournalOp::from_journal(text) {
        let again =
            JournalOp::from_journal(&op.to_journal()).expect("a journal op's text reads back");
        assert_eq!(again, op);
    }

    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let [doc, op] = items.as_slice() else {
        return;
    };
    let Ok(op) = JournalOp::from_journal(&op.to_string()) else {
        return;
    };
    if op.validate().is_err() {
        return;
    }
    let mut record = Some(doc.clone());
    let applied = op.apply(&mut record);
    if let (JournalOp::Write(write), Ok(()), Some(after)) = (&op, &applied, &record) {
        let json0_op = write.to_json0(doc);
        let got = json0::apply(doc, &json0_op).expect("the json0 form of a write applies");
        assert_eq!(got.to_string(), after.to_string());
        let inverse = json0::invert(&json0_op).expect("the json0 form of a write inverts");
        let back = json0::apply(&got, &inverse).expect("its inverse applies");
        assert_eq!(&back, doc);
    }
});
