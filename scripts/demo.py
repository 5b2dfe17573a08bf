"""Helpers of scripts/demo: the demo chain and keys, the secrets and the
keyshare vault in the local AWS API, the stand-in nodes' indexer following the
chain, and watching the agents' /status as their phases pass."""

import datetime
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request

CONTRACT = "v1.signer.test.near"
# The keyshare vault: a bucket with Object Lock, encrypted under a KMS key by default.
VAULT_BUCKET = "mpc-demo-vault"
VAULT_PREFIX = "demo"
# The keyset the contract holds: epoch 1, one domain, its key made at the first attempt.
EPOCH = 1


def b58(data):
    """Base58 (Bitcoin's alphabet, as NEAR keys use): each leading zero byte is a leading `1`."""
    import base58

    return base58.b58encode(data).decode("ascii")


def keypair():
    """An ed25519 key pair as NEAR writes it: the secret is `ed25519:` and the
    base58 of the 32-byte seed and the 32-byte public key, the public key the
    base58 of its 32 bytes. Each is decoded back and checked before it is used."""
    import base58
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    sk = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pk = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pair = {"secret": "ed25519:" + b58(sk + pk), "public": "ed25519:" + b58(pk)}
    for name, want, size in (("secret", sk + pk, 64), ("public", pk, 32)):
        body = base58.b58decode(pair[name].removeprefix("ed25519:"))
        assert len(body) == size and body == want, f"the {name} key does not decode back to its {size} bytes"
    return pair


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
    keyset = {"epoch_id": EPOCH, "domains": [{"domain_id": 0, "attempt": 0, "key": {"Secp256k1": {
        "near_public_key": "secp256k1:" + b58(os.urandom(64))}}}]}
    json.dump({
        "chain_id": "mpc-localnet", "latest_block_height": 1000, "latest_block_time": "2026-11-01T00:00:00Z",
        "accounts": accounts,
        "contracts": {CONTRACT: {"Running": {"parameters": {
            "participants": {"next_id": 3, "participants": participants}, "threshold": 2}, "keyset": keyset}}},
    }, open(f"{out}/chain.json", "w"), indent=2)


def store_key(out, node):
    """The store key of `node`, for the stand-in node that writes its keyshare."""
    print(json.load(open(f"{out}/keys.json"))[node]["store_key"])


def secrets_manager(endpoint):
    return aws("secretsmanager", endpoint)


def secrets(out, endpoint):
    """Each node's secrets in Secrets Manager, under node<N>-<NAME>."""
    sm = secrets_manager(endpoint)
    for name, node in json.load(open(f"{out}/keys.json")).items():
        if name == "stranger":
            continue
        for secret, value in [("MPC_ACCOUNT_SK", node["signer"]["secret"]), ("MPC_P2P_PRIVATE_KEY", node["p2p"]["secret"]),
                              ("MPC_SECRET_STORE_KEY", node["store_key"])]:
            sm.create_secret(Name=f"{name}-{secret}", SecretString=value)


def aws(service, endpoint):
    import boto3
    return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1",
                        aws_access_key_id="demo", aws_secret_access_key="demo")


def vault(endpoint):
    """The keyshare vault: a bucket with Object Lock (GOVERNANCE, 1 day) and
    versioning, encrypted by default under a customer-managed KMS key."""
    key = aws("kms", endpoint).create_key(Description="mpc demo keyshare vault")["KeyMetadata"]["Arn"]
    s3 = aws("s3", endpoint)
    s3.create_bucket(Bucket=VAULT_BUCKET, ObjectLockEnabledForBucket=True,
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object_lock_configuration(Bucket=VAULT_BUCKET, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    s3.put_bucket_encryption(Bucket=VAULT_BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
        "BucketKeyEnabled": True}]})
    print(f"  s3://{VAULT_BUCKET}/{VAULT_PREFIX} (Object Lock, versioning, SSE-KMS under {key})")


def vaulted(endpoint, account, limit):
    """Waits up to `limit` seconds for the keyshare of `account` in the vault
    (the agent copies it there once the node commits it); exit 1 if none comes."""
    s3 = aws("s3", endpoint)
    key = f"{VAULT_PREFIX}/{account}/epoch_{EPOCH}_with_1_domains"
    deadline = time.time() + float(limit)
    while time.time() < deadline:
        try:
            head = s3.head_object(Bucket=VAULT_BUCKET, Key=key, ChecksumMode="ENABLED")
        except Exception:
            time.sleep(0.5)
            continue
        print(f"  s3://{VAULT_BUCKET}/{key}: {head['ContentLength']} bytes, version {head.get('VersionId')}, "
              f"SHA-256 {head.get('Metadata', {}).get('sha256', '?')}, {head.get('ServerSideEncryption')}")
        return
    sys.exit(1)


def follow_chain(mode, where, *nodes):
    """The stand-in nodes' indexer, following the chain: every second each
    node's `standin-indexer.json` (what its /metrics shows) gets the chain's
    head and a block a second old, so their agents see them synced. `mode`
    `local`: WHERE is the directory of the homes; `docker`: the compose
    project, the file written in each running container. Runs until killed."""
    while True:
        head = json.load(open(os.environ["DEMO_CHAIN"]))["latest_block_height"]
        indexer = json.dumps({"height": head, "block_timestamp_seconds": int(time.time()) - 1, "job": "Running"})
        for node in nodes:
            if mode == "local":
                path = f"{where}/{node}/standin-indexer.json"
                if os.path.isdir(os.path.dirname(path)):
                    with open(path + ".tmp", "w") as f:
                        f.write(indexer)
                    os.replace(path + ".tmp", path)
                continue
            found = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={where}",
                                    "--filter", f"label=com.docker.compose.service={node}",
                                    "--filter", "status=running"], capture_output=True, text=True).stdout.split()
            for container in found[:1]:
                subprocess.run(["docker", "exec", "-i", container, "sh", "-c",
                                "cat > /data/standin-indexer.json.tmp && mv /data/standin-indexer.json.tmp /data/standin-indexer.json"],
                               input=indexer, text=True, capture_output=True)
        time.sleep(1)


def check(url, *ids):
    """The checks `ids` of the agent at `url`, one line each."""
    s = status(url) or {}
    for c in s.get("checks", []):
        if c["id"] in ids:
            mark = {"ok": "✔", "warn": "!", "fail": "✖"}.get(c["status"], "–")
            print(f"  {mark} {c['id']}  {c['cause']}")


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


# What the agent's log says (`AGENT_LOG_FORMAT=plain`): a stage done, a wait for
# the home's lock, a restart of the node. Phases are read from /status.
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT[0-9:.]+Z)\s+\w+\s+[\w:]+: (.*)$")
STAGE = re.compile(r'stage done stage="?(\w+)"? status="?(\w+)"? took_ms=(\d+)')
# The phases the boot stages do not show in the log.
PHASES_FROM_STATUS = ("running", "ready", "holding", "waiting-for-lock", "restarting", "failed", "stopping")


def log_event(text):
    """The event one line of the agent's log tells, or None."""
    m = STAGE.search(text)
    if m:
        stage, status, took = m.groups()
        return f"{stage:<9} {status} ({took} ms)"
    if "waiting for the home's lock" in text:
        return "waiting for the home's lock (another agent holds it)"
    if "starting the node again through the boot stages" in text:
        return "starting the node again through the boot stages"
    return None


def parse_time(stamp):
    day, _, rest = stamp.rstrip("Z").partition("T")
    whole, _, fraction = rest.partition(".")
    return datetime.datetime.fromisoformat(f"{day}T{whole}.{(fraction + '000000')[:6]}+00:00").timestamp()


def follow(source, since, events, name, stop):
    """Puts (time, node, text) into `events` for each event of the agent's log
    at `source` from `since` on: `file:PATH` (waited for, followed through a
    truncation), or `compose:PROJECT:SERVICE` (the service's container, waited
    for and followed again after each restart)."""
    kind, _, where = source.partition(":")
    for line in tail(where, stop) if kind == "file" else container_lines(where, since, stop):
        m = LINE.match(ANSI.sub("", line.rstrip("\n")))
        if not m:
            continue
        at = parse_time(m.group(1))
        event = log_event(m.group(2))
        if event and at >= since:
            events.put((at, name, event))


def container_lines(service, since, stop):
    project, _, service = service.partition(":")
    labels = ["--filter", f"label=com.docker.compose.project={project}",
              "--filter", f"label=com.docker.compose.service={service}", "--filter", "status=running"]
    while not stop:
        found = subprocess.run(["docker", "ps", "-q", *labels], capture_output=True, text=True).stdout.split()
        if not found:
            time.sleep(0.1)
            continue
        proc = subprocess.Popen(["docker", "logs", "-f", "--since", f"{since:.6f}", found[0]],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        stop_procs.append(proc)
        yield from proc.stdout
        proc.wait()


stop_procs = []


def tail(path, stop):
    while not os.path.exists(path) and not stop:
        time.sleep(0.05)
    with open(path, errors="replace") as f:
        while not stop:
            line = f.readline()
            if line:
                yield line
                continue
            if os.path.getsize(path) < f.tell():
                f.seek(0)
            time.sleep(0.05)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def watch(until, limit, since, *nodes):
    """Prints every phase each node passes, from `since` (a Unix time, taken
    before the nodes started) on: the boot stages from its log, the phases
    after them from its /status; until every node is in phase `until`
    (`ready`: running and ready). NODE is name=URL=LOG (see `follow`). It may
    start before the nodes do: it waits for their logs and their answers."""
    since, limit = float(since), float(limit)
    specs = [n.split("=", 2) for n in nodes]
    events, stop = queue.Queue(), []
    for name, _, source in specs:
        threading.Thread(target=follow, args=(source, since, events, name, stop), daemon=True).start()
    phase = {name: None for name, _, _ in specs}
    pending, seen, done_at, polled = [], set(), None, False
    # Events are printed in time order, a little late: a log line may reach
    # the watcher after the /status poll that comes after it.
    delay = 0.4
    while True:
        now = time.time()
        if done_at is None:
            for name, url, _ in specs:
                s = status(url)
                # After the answer: later than the log lines before it. What the
                # first poll finds is the phase the node was in when watching began.
                seen_at = time.time() if polled else since
                p = s["phase"] if s else None
                if s and p == "running" and s["ready"]["ready"]:
                    p = "ready"
                if p == phase[name]:
                    continue
                if p in PHASES_FROM_STATUS:
                    text = p
                    if s.get("reason") and p in ("holding", "waiting-for-lock", "restarting", "failed"):
                        text += f": {s['reason']['cause']}"
                    if p == "running":
                        text += f" (node pid {((s.get('child') or {}).get('running') or {}).get('pid', '?')})"
                    pending.append((seen_at, name, text))
                phase[name] = p
            if not polled and os.environ.get("WATCHING"):
                open(os.environ["WATCHING"], "w").close()  # scripts/demo acts once the watcher has looked
            polled = True
            if all(p == until for p in phase.values()):
                done_at = time.time()
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                break
            if event not in seen:
                seen.add(event)
                pending.append(event)
        pending.sort()
        cut = min(time.time() - delay, done_at if done_at else float("inf"))
        while pending and pending[0][0] <= cut:
            at, name, text = pending.pop(0)
            print(f"  {at - since:5.1f}s  {name:<6} {text}", flush=True)
        if done_at and time.time() - done_at > delay:
            break
        if now - since > limit:
            sys.exit(f"not every node reached {until} within {limit:.0f}s (phases now: {phase})")
        time.sleep(0.05)
    stop.append(True)
    for proc in stop_procs:
        proc.kill()


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
