//! The node's keyshare files: their names ([`KeyshareName`]), their sealed
//! bytes ([`open`]), what their plaintext says of itself ([`contents`]: the
//! epoch and the key ids, never a share), and a look at the home's
//! `permanent_keys/` ([`look`]). Nothing here writes to the home.

mod contents;
mod look;
mod name;
mod sealed;

pub use contents::{ContentsError, KeyId, KeyshareContents, KeyshareFormat, contents, read};
pub use look::{KEY_LINK, Keep, KeyLink, KeyshareFile, Look, PERMANENT_KEYS, Refused, look};
pub use name::KeyshareName;
pub use sealed::{NONCE_LEN, OpenError, TAG_LEN, check_store_key, open};
