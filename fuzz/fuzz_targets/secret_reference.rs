//! Secret ids as an operator writes them: a name, an ARN, ECS's `valueFrom`
//! form, or a template with `{name}` / `{name_lower}`.
#![no_main]

use entrypoint::secrets::SecretRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = SecretRef::parse(text) {
        let _ = reference.describe();
    }
    let _ = SecretRef::check(text);
    let _ = SecretRef::check_template(text);
    if let Ok(reference) = SecretRef::from_template(text, "MPC_ACCOUNT_SK") {
        let _ = reference.describe();
    }
});
