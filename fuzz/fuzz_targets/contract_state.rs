//! The signer contract's `state()` view as an RPC returns it: every shape
//! (`NotInitialized`, `Initializing`, `Running`, `Resharing`), or anything else.
#![no_main]

use entrypoint::keys::ContractState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = ContractState::parse(data) else {
        return;
    };
    let _ = state.name();
    let _ = state.working_set();
    let account = "node0.test.near".parse().expect("a valid account id");
    let _ = state.standing_of(&account);
    let _ = state.working_set().and_then(|set| set.find(&account));
});
