"""Helpers of scripts/demo: the demo chain and keys, the secrets in the local
AWS API, and watching the agents' /status as their phases pass."""

import json
import os
import sys
import time
import urllib.request

A = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CONTRACT = "v1.signer.test.near"


def b58(data):
    n, s = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        s = A[r] + s
    return s


def keypair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    sk = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pk = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"secret": "ed25519:" + b58(sk + pk), "public": "ed25519:" + b58(pk)}


def chain(out):
    """Keys for three nodes, and a localnet whose contract runs with them as participants."""
    nodes = {
        f"node{i}": {"account": f"node{i}.test.near", "signer": keypair(), "p2p": keypair(), "store_key": os.urandom(16).hex()}
        for i in (1, 2, 3)
    }
    nodes["stranger"] = {"signer": keypair()}
    json.dump(nodes, open(f"{out}/keys.json", "w"), indent=2)
    participants = [
        [n["account"], i, {"url": f"https://{name}:80", "tls_public_key": n["p2p"]["public"]}]
        for i, (name, n) in enumerate(list(nodes.items())[:3])
    ]
    accounts = {
        n["account"]: {"keys": [{"public_key": n["signer"]["public"], "permission": {"FunctionCall": {
            "receiver_id": CONTRACT, "method_names": [], "allowance": None}}}]}
        for n in list(nodes.values())[:3]
    }
    json.dump({
        "chain_id": "mpc-localnet", "latest_block_height": 1000, "latest_block_time": "2026-11-01T00:00:00Z",
        "accounts": accounts,
        "contracts": {CONTRACT: {"Running": {"parameters": {
            "participants": {"next_id": 3, "participants": participants}, "threshold": 2}}}},
    }, open(f"{out}/chain.json", "w"), indent=2)


def secrets_manager(endpoint):
    import boto3
    return boto3.client("secretsmanager", endpoint_url=endpoint, region_name="eu-west-1",
                        aws_access_key_id="demo", aws_secret_access_key="demo")


def secrets(out, endpoint):
    """Each node's secrets in Secrets Manager, under node<N>-<NAME>."""
    sm = secrets_manager(endpoint)
    for name, node in json.load(open(f"{out}/keys.json")).items():
        if name == "stranger":
            continue
        for secret, value in [("MPC_ACCOUNT_SK", node["signer"]["secret"]), ("MPC_P2P_PRIVATE_KEY", node["p2p"]["secret"]),
                              ("MPC_SECRET_STORE_KEY", node["store_key"])]:
            sm.create_secret(Name=f"{name}-{secret}", SecretString=value)


def put(out, endpoint, node, which):
    """Puts the account key of `which` (a node, or the stranger) into `node`'s MPC_ACCOUNT_SK."""
    keys = json.load(open(f"{out}/keys.json"))
    secrets_manager(endpoint).put_secret_value(SecretId=f"{node}-MPC_ACCOUNT_SK", SecretString=keys[which]["signer"]["secret"])
    print(f"  {node}-MPC_ACCOUNT_SK now holds the key of {which} ({keys[which]['signer']['public']})")


def status(url):
    try:
        with urllib.request.urlopen(url + "/status", timeout=2) as r:
            return json.load(r)
    except Exception:
        return None


def watch(until, limit, *nodes):
    """Prints each node's phases as they pass, until every node is in phase
    `until` (`ready`: running and ready)."""
    urls = dict(n.split("=", 1) for n in nodes)
    seen = {name: [] for name in urls}
    started = time.monotonic()
    while time.monotonic() - started < float(limit):
        done = True
        for name, url in urls.items():
            s = status(url)
            phase = s["phase"] if s else "(no answer yet)"
            if s and phase == "running" and s["ready"]["ready"]:
                phase = "ready"
            if not seen[name] or seen[name][-1] != phase:
                seen[name].append(phase)
                extra = ""
                if s and s.get("reason") and phase in ("holding", "waiting-for-lock", "failed"):
                    extra = f": {s['reason']['cause']}"
                if s and phase in ("running", "ready"):
                    stages = {c["id"].split(".")[0]: c for c in s.get("checks", [])}
                    extra = " after " + ", ".join(
                        f"{stage} {worst(s['checks'], stage)}" for stage in ("secrets", "keys", "homes", "launch") if stage in stages)
                print(f"  {time.monotonic() - started:5.1f}s  {name:<6} {phase}{extra}", flush=True)
            done = done and phase == until
        if done:
            return
        time.sleep(0.1)
    sys.exit(f"not every node reached {until} within {limit}s")


def worst(checks, stage):
    order = ["skipped", "ok", "warn", "fail"]
    statuses = [c["status"] for c in checks if c["id"].split(".")[0] == stage]
    return max(statuses, key=order.index) if statuses else "-"


def table(*nodes):
    """One line per node from its /status."""
    print(f"  {'node':<6} {'phase':<10} {'ready':<6} {'node pid':<9} {'restarts':<9} checks")
    for n in nodes:
        name, url = n.split("=", 1)
        s = status(url) or {}
        checks = s.get("checks", [])
        counts = {k: sum(1 for c in checks if c["status"] == k) for k in ("ok", "warn", "fail")}
        running = (s.get("child") or {}).get("running") or {}
        print(f"  {name:<6} {s.get('phase', '?'):<10} {str((s.get('ready') or {}).get('ready')):<6} "
              f"{str(running.get('pid', '-')):<9} {str((s.get('child') or {}).get('restarts', '-')):<9} "
              f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
