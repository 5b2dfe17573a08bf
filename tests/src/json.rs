//! Reading the agent's JSON documents (`/status`, `/config`, `--json`).

use serde_json::Value;

/// The element of the array `doc[list]` whose `key` is `value`; panics
/// naming what is missing.
pub fn item<'a>(doc: &'a Value, list: &str, key: &str, value: &str) -> &'a Value {
    doc[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} array in {doc:#}"))
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no {list} entry with {key} {value} in {doc:#}"))
}

/// The check `id` of a report's `checks`.
pub fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    item(doc, "checks", "id", id)
}
