//! `agent keys`: fetch and validate the node's secrets, show each one's source
//! and its public key or fingerprint, then (unless `--offline`) what the chain
//! holds for them: what an operator compares with the on-chain keys and with
//! their key inventory. Exit 0 when everything matches, 1 otherwise.

use entrypoint::check::Check;
use entrypoint::clients::Clients;
use entrypoint::config::{KeysConfig, Layers};
use entrypoint::keys::{self, ChainQuery, KeyReport, KeysInput, KeysVerdict};
use entrypoint::secrets::{self, SecretReport};

use crate::life::views::{KeysOnChain, KeysReport};
use crate::{exit, logging, process, render};

pub fn main(layers: Layers, json: bool, offline: bool) -> i32 {
    let (config, runtime) =
        match process::begin(&layers, KeysConfig::resolve, logging::Output::Stderr) {
            Ok(begun) => begun,
            Err(code) => return code,
        };
    // One round: the chain is read while the secrets are fetched.
    let query = ChainQuery::of(&config.node.node);
    let clients = Clients::new();
    let (secrets, reading) = runtime.block_on(async {
        let reading = async {
            match offline {
                false => Some(keys::read(&config.node.chain_rpc, &query, &clients).await),
                true => None,
            }
        };
        tokio::join!(
            secrets::load(&config.node.secrets, &layers.env, &clients),
            reading
        )
    });
    let secret_reports = match &secrets {
        Ok(staged) => staged.value.report.clone(),
        Err(stop) => stop
            .checks()
            .iter()
            .filter_map(SecretReport::from_check)
            .collect(),
    };
    let chain = match (&secrets, reading) {
        (Ok(staged), Some(reading)) => Some(KeyReport::new(
            KeysInput::new(&config.node.node, &staged.value),
            reading,
        )),
        _ => None,
    };
    let valid = secrets.is_ok()
        && chain
            .as_ref()
            .is_none_or(|c| c.verdict() == KeysVerdict::Match);
    if json {
        let report = KeysReport {
            valid,
            secrets: secret_reports,
            chain: chain.map(KeysOnChain::of),
        };
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        let secret_checks: Vec<Check> = secret_reports.iter().map(|r| r.check()).collect();
        let chain_checks = chain.as_ref().map(|c| c.checks()).unwrap_or_default();
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
