//! A running agent's `/config` as `agent doctor --from` reads it: any bytes
//! an HTTP server may answer; this environment must win over what it shows.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env: BTreeMap<String, String> = [
        ("MPC_HOME_DIR", "/data"),
        ("AGENT_NEAR_RPC_URL", "https://rpc.example/v3/key"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Ok(remote) = agent::remote_config(data, &env) {
        for (name, value) in &env {
            assert_eq!(
                remote.env.get(name),
                Some(value),
                "{name} from /config overrode this environment"
            );
        }
    }
});
