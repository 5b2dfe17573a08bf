//! mpc-node's `config.yaml` as it may be on a home: any YAML. The accounts
//! and the contract set once and written out leave nothing to change on the
//! next boot.
#![no_main]

use entrypoint::config::Chain;
use entrypoint::homes::config_yaml::{MpcConfigInputs, to_yaml, update};
use libfuzzer_sys::fuzz_target;
use serde_yaml::{Mapping, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Mapping(mut config)) = serde_yaml::from_slice::<Value>(data) else {
        return;
    };
    let inputs = MpcConfigInputs {
        chain: Chain::Testnet,
        account_id: "node0.testnet".parse().expect("a valid account id"),
        responder_id: "responder.node0.testnet"
            .parse()
            .expect("a valid account id"),
        contract_id: "v1.signer-prod.testnet"
            .parse()
            .expect("a valid account id"),
    };
    if update(&mut config, &inputs).is_err() {
        return;
    }
    // What cannot be written back is refused by name, as the agent refuses it.
    let Ok(written) = to_yaml(&Value::Mapping(config)) else {
        return;
    };
    let mut again: Mapping = serde_yaml::from_str(&written).unwrap_or_else(|e| {
        panic!("the updated config.yaml does not parse again ({e}): {written}")
    });
    let edits = update(&mut again, &inputs).expect("updated once, it updates again");
    assert!(
        edits.is_empty(),
        "a second boot would edit again: {edits:?}"
    );
});
