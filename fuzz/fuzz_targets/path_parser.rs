//! Fuzzes the deepstream path parser, then get/set/erase with every path it accepts.
//!
//! Checks, beyond "never panics": an accepted path stays within the limits, prints as
//! text that parses back to it, and behaves on a few small values as documented in
//! `recordsync_core::path`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recordsync_core::path::{self, MAX_INDEX, MAX_SEGMENTS, Path, Segment};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = match Path::parse(text) {
        Ok(path) => path,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };

    let segments = path.segments();
    assert!(!segments.is_empty() && segments.len() <= MAX_SEGMENTS);
    let index_total: usize = segments
        .iter()
        .map(|s| match s {
            Segment::Index(i) => *i,
            Segment::Key(_) => 0,
        })
        .sum();
    assert!(index_total <= MAX_INDEX);
    assert_eq!(Path::parse(&path.to_string()).as_ref(), Ok(&path));
    assert_eq!(Path::from_segments(segments.to_vec()).as_ref(), Ok(&path));

    let marker = json!({"fuzz": true});

    // On an empty record every path lands (a path starts with a key, so nothing can
    // block it), and erasing it leaves nothing, or null in an array.
    let mut record = json!({});
    path::set(&mut record, &path, marker.clone());
    assert_eq!(path::get(&record, &path), Some(&marker));
    path::erase(&mut record, &path);
    assert!(matches!(
        path::get(&record, &path),
        None | Some(Value::Null)
    ));

    // On other values: either the set lands, or (a key into an existing array that is
    // no array index) it changes nothing.
    for root in [
        json!({"a": [1, {"b": null}, [true]], "0": "x", "pets": [{"fur": {}}], "1": {"2": []}}),
        json!([[], {"a": 1}, null]),
        json!("scalar"),
        Value::Null,
    ] {
        let mut value = root.clone();
        let _ = path::get(&value, &path);
        path::set(&mut value, &path, marker.clone());
        match path::get(&value, &path) {
            Some(found) => assert_eq!(found, &marker),
            None => assert_eq!(value, root),
        }
        path::erase(&mut value, &path);
        assert_ne!(path::get(&value, &path), Some(&marker));
    }
});
