//! The stand-in `mpc-node` keeps the real one's CLI for keyshares:
//! `import-keyshare [--home-dir] <KEYSHARE_JSON> <LOCAL_ENCRYPTION_KEY_HEX>`
//! stores the share encrypted and never overwrites one; `export-keyshare
//! [--home-dir] <LOCAL_ENCRYPTION_KEY_HEX>` reads it back; both refuse a key
//! that is not 16 bytes of hex.

use std::process::Command;

use agent_tests::harness::{standin_node_bin, store_key};

fn node(args: &[&str]) -> std::process::Output {
    Command::new(standin_node_bin())
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

#[test]
fn a_keyshare_is_imported_once_and_exported_with_its_key() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().to_str().unwrap();
    let key = store_key();
    let share = r#"{"epoch":3,"private_share":"00","public_key":"secp256k1:x"}"#;
    let imported = node(&["import-keyshare", "--home-dir", dir, share, &key]);
    assert!(imported.status.success(), "{imported:?}");
    assert!(home.path().join("key").exists());
    let again = node(&["import-keyshare", "--home-dir", dir, share, &key]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("Refusing to overwrite"));

    let exported = node(&["export-keyshare", "--home-dir", dir, &key]);
    assert!(exported.status.success(), "{exported:?}");
    assert!(String::from_utf8_lossy(&exported.stdout).contains("epoch 3 successfully exported"));
    let wrong = node(&["export-keyshare", "--home-dir", dir, &store_key()]);
    assert_eq!(wrong.status.code(), Some(1));
    let short = node(&["export-keyshare", "--home-dir", dir, "0011"]);
    assert!(String::from_utf8_lossy(&short.stderr).contains("must be 32 hex characters"));
    let no_home = node(&["export-keyshare", &key]);
    assert_eq!(
        no_home.status.code(),
        Some(2),
        "MPC_HOME_DIR or --home-dir is required"
    );
}
