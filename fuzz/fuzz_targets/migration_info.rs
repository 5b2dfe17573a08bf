//! The signer contract's `migration_info()` view as an RPC returns it: the
//! map of accounts to their backup service and destination node, or anything else.
#![no_main]

use entrypoint::keys::MigrationFinding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let account = "node0.test.near".parse().expect("a valid account id");
    let finding = MigrationFinding::read(data, &account);
    if let Some(destination) = finding.destination() {
        assert!(
            destination.url.chars().count() <= 300,
            "an unbounded url kept"
        );
    }
});
