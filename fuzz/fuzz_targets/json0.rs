//! Fuzzes json0 (`recordsync_core::json0`): arbitrary documents and op pairs through
//! apply, transform (both sides, and transformX), compose, invert and normalize.
//!
//! The input is JSON text `[doc, a, b]` (anything else is skipped; the dictionary
//! `dicts/json0.dict` has the op fields). Checks, beyond "never panics":
//! - every op that reads writes back as JSON that reads to the same op;
//! - a transform against nothing changes nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recordsync_core::json0::{self, Side, op_from_json, op_to_json};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let [doc, a, b] = items.as_slice() else {
        return;
    };
    let _ = json0::normalize(a);
    let (Ok(a), Ok(b)) = (op_from_json(a), op_from_json(b)) else {
        return;
    };
    for op in [&a, &b] {
        let again = op_from_json(&op_to_json(op)).expect("an op's JSON form reads back");
        assert_eq!(&again, op);
    }
    if let Ok(same) = json0::transform(&a, &[], Side::Left) {
        assert_eq!(same, a);
    }

    let after_a = json0::apply(doc, &a);
    let _ = json0::apply(doc, &b);
    let left = json0::transform(&a, &b, Side::Left);
    let right = json0::transform(&b, &a, Side::Right);
    if let (Ok(after_a), Ok(right)) = (&after_a, &right) {
        let _ = json0::apply(after_a, right);
    }
    if let Ok(left) = &left {
        let _ = json0::apply(doc, left);
    }
    let _ = json0::Json0::new().transform_x(&a, &b);
    if let Ok(composed) = json0::compose(&a, &b) {
        let _ = json0::apply(doc, &composed);
    }
    if let (Ok(after_a), Ok(inverse)) = (&after_a, json0::invert(&a)) {
        let _ = json0::apply(after_a, &inverse);
    }
});
