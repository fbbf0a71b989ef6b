//! Arbitrary bytes through both deepstream decoders: never a panic, and whatever decodes
//! re-encodes to something that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recordsync_deepstream_protocol::{binary, json};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = binary::decode(data, LIMIT) {
        let again = binary::decode(&binary::encode(&message), usize::MAX).expect("re-encoded frame decodes");
        assert_eq!(again, message);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(message) = json::decode(text, LIMIT) {
            let again = json::decode(&json::encode(&message), usize::MAX).expect("re-encoded JSON decodes");
            assert_eq!(again, message);
        }
    }
});
