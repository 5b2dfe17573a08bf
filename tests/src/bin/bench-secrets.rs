//! `bench-secrets`: the secrets stage's fetch of the node's four secrets,
//! concurrent (as the stage does it) against one-after-another against a single
//! fetch — straight to a loopback moto, and through a proxy that adds a 20 ms
//! round trip as the network to the real service would. Prints figures, no pass/fail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agent_tests::faults::Proxy;
use agent_tests::harness::{backup_key, keypair, store_key};
use agent_tests::moto::{Moto, Value};
use entrypoint::secrets::{SecretRef, SecretsManager};

const RUNS: usize = 50;

fn main() {
    let moto = Moto::start();
    let (account, _) = keypair();
    let (p2p, _) = keypair();
    let values = [account, p2p, store_key(), backup_key()];
    let refs: Vec<SecretRef> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = format!("bench-{i}");
            moto.create_secret(&name, Value::Text(v));
            SecretRef::parse(&name).unwrap()
        })
        .collect();
    let proxy = Proxy::delaying(moto.addr, Duration::from_millis(20));
    for (k, v) in moto.env() {
        // SAFETY: single-threaded here, before any runtime starts.
        unsafe { std::env::set_var(k, v) };
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (label, endpoint) in [
        ("loopback moto", moto.endpoint()),
        (
            "moto behind a 20 ms round trip",
            format!("http://{}", proxy.addr),
        ),
    ] {
        // SAFETY: single-threaded between runs; the SDK reads it when connecting.
        unsafe { std::env::set_var("AWS_ENDPOINT_URL", &endpoint) };
        runtime.block_on(measure(label, &endpoint, &refs));
    }
}

async fn measure(label: &str, endpoint: &str, refs: &[SecretRef]) {
    {
        let env = BTreeMap::from([("AWS_ENDPOINT_URL".to_string(), endpoint.to_string())]);
        let manager = SecretsManager::connect(&env, Duration::from_secs(5)).await;
        // Warm the connection pool and moto.
        for r in refs {
            manager.get(r, None).await.expect("fetch");
        }
        let single = median(RUNS, || async {
            manager.get(&refs[0], None).await.expect("fetch")
        })
        .await;
        let sequential = median(RUNS, || async {
            for r in refs {
                manager.get(r, None).await.expect("fetch");
            }
        })
        .await;
        let concurrent = median(RUNS, || async {
            futures::future::join_all(refs.iter().map(|r| manager.get(r, None))).await
        })
        .await;
        println!(
            "4 secrets, {label}: single fetch {:.2} ms, one after another {:.2} ms, concurrent {:.2} ms; concurrent / single = {:.2}",
            ms(single),
            ms(sequential),
            ms(concurrent),
            concurrent.as_secs_f64() / single.as_secs_f64()
        );
    }
}

async fn median<F, Fut, T>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await;
        samples.push(started.elapsed());
    }
    samples.sort();
    samples[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
