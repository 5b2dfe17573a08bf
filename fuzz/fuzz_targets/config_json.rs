//! nearcore's `config.json` as it may be on a home: any JSON. The first byte
//! chooses the chain and whether a tier3 address and nearcore's listen
//! addresses are set; the edits (with a fresh init's), applied once and
//! written out, must leave nothing to change on the next boot.
#![no_main]

use entrypoint::config::Chain;
use entrypoint::homes::config_json::{NearConfigInputs, patch, patch_fresh_init};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, text)) = data.split_first() else {
        return;
    };
    let Ok(Value::Object(mut config)) = serde_json::from_slice::<Value>(text) else {
        return;
    };
    let inputs = NearConfigInputs {
        chain: [Chain::Localnet, Chain::Testnet, Chain::Mainnet][usize::from(choice % 3)],
        contract_id: "v1.signer-prod.testnet"
            .parse()
            .expect("a valid account id"),
        tier3_public_addr: (choice & 0x80 != 0).then(|| "203.0.113.5:24567".parse().unwrap()),
        rpc_addr: (choice & 0x40 != 0).then(|| "0.0.0.0:3031".parse().unwrap()),
        network_addr: (choice & 0x20 != 0).then(|| "0.0.0.0:24568".parse().unwrap()),
    };
    if choice & 0x10 != 0 {
        patch_fresh_init(&mut config, inputs.chain);
    }
    patch(&mut config, &inputs);
    let written = serde_json::to_string_pretty(&Value::Object(config)).expect("JSON serializes");
    let Ok(Value::Object(mut again)) = serde_json::from_str::<Value>(&written) else {
        panic!("the patched config.json does not parse again: {written}");
    };
    let edits = patch(&mut again, &inputs);
    assert!(
        edits.is_empty(),
        "a second boot would edit again: {edits:?}"
    );
});
