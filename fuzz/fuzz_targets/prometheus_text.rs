//! The node's `/metrics` as the agent scrapes it for the indexer's height,
//! block time and job state: any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = agent::read_node_metrics("http://127.0.0.1:8080/metrics", &text);
});
