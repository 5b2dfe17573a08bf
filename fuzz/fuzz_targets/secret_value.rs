//! A secret as Secrets Manager, the environment or a file hands it over:
//! its JSON field selected (plain text, an object, anything else), then every
//! rule a secret must keep. None may panic, whatever the text.
#![no_main]

use entrypoint::secrets::validate::{ed25519_key, hex_key, placeholder};
use entrypoint::secrets::{Secret, SecretName, select_field};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line may name a JSON key, as a secret id's `:json-key:` does.
    let (json_key, value) = match text.split_once('\n') {
        Some((key, rest)) if key.starts_with('#') => (Some(&key[1..]), rest),
        _ => (None, text),
    };
    for name in SecretName::ALL {
        if let Ok(selected) = select_field(Secret::new(value), json_key, name) {
            check(selected.expose());
        }
    }
    check(value);
});

fn check(value: &str) {
    let _ = placeholder(value);
    let _ = ed25519_key(value);
    let _ = hex_key(value, 16, "secret store key");
    let _ = hex_key(value, 32, "backup encryption key");
}
