//! `agent keys`: fetch and validate the node's secrets, show each one's source
//! and its public key or fingerprint, then (unless `--offline`) what the chain
//! holds for them: what an operator compares with the on-chain keys and with
//! their key inventory. Exit 0 when everything matches, 1 otherwise.

use entrypoint::check::Check;
use entrypoint::config::{Command, Config, Layers};
use entrypoint::keys::{self, KeysInput, KeysVerdict};
use entrypoint::secrets::{self, NodeSecrets, SecretName};

use crate::{exit, logging, process, render};

pub fn main(layers: Layers, json: bool, offline: bool) -> i32 {
    let (config, runtime) = match process::begin(&layers, Command::Keys, logging::Output::Stderr) {
        Ok(begun) => begun,
        Err(code) => return code,
    };
    let settings = config
        .secrets
        .as_ref()
        .expect("keys reads the secret settings");
    let secrets = runtime.block_on(secrets::load(settings, &layers.env));
    let secret_reports = match &secrets {
        Ok(s) => s.report.clone(),
        Err(f) => f.report.clone(),
    };
    let chain = match (&secrets, offline) {
        (Ok(s), false) => Some(
            runtime.block_on(keys::check(
                config
                    .chain_rpc
                    .as_ref()
                    .expect("keys reads the chain settings"),
                &keys_input(&config, s),
            )),
        ),
        _ => None,
    };
    let valid = secrets.is_ok()
        && chain
            .as_ref()
            .is_none_or(|c| c.verdict() == KeysVerdict::Match);
    let secret_checks: Vec<Check> = secret_reports.iter().map(|r| r.check()).collect();
    let chain_checks = chain.as_ref().map(|c| c.checks()).unwrap_or_default();
    if json {
        let body = serde_json::json!({
            "valid": valid,
            "secrets": secret_reports,
            "chain": chain.as_ref().map(|c| serde_json::json!({
                "verdict": c.verdict(),
                "checks": chain_checks,
                "report": c,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&body).expect("JSON"));
    } else {
        render::print_section("secrets", &secret_checks);
        match (&secrets, offline) {
            (Ok(_), false) => {
                println!();
                render::print_section("chain", &chain_checks);
            }
            (Ok(_), true) => println!("\nchain: not asked (--offline)"),
            (Err(_), _) => println!("\nchain: not asked, the secrets are not valid"),
        }
        render::print_problems(secret_checks.iter().chain(&chain_checks));
    }
    if valid { 0 } else { exit::UNHEALTHY }
}

/// What the keys stage judges, from the configuration and the validated secrets.
pub fn keys_input(config: &Config, secrets: &NodeSecrets) -> KeysInput {
    let node = config
        .node
        .as_ref()
        .expect("the node settings are resolved");
    KeysInput {
        chain: node.chain,
        account_id: node.account_id.clone(),
        contract_id: node.contract_id.clone(),
        signer_public_key: secrets.account.public.clone(),
        p2p_public_key: secrets.p2p.public.clone(),
        signer_key_source: secrets.source(SecretName::AccountSk).to_string(),
        p2p_key_source: secrets.source(SecretName::P2pPrivateKey).to_string(),
    }
}
