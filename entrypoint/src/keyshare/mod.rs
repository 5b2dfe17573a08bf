//! The node's keyshare files: their names ([`KeyshareName`]), their sealed
//! bytes ([`open`]), what their plaintext says of itself ([`contents`]: the
//! epoch and the key ids, never a share), and where a vault keeps them
//! ([`VaultLocation`]: `s3://BUCKET/PREFIX`, an object per file). No I/O:
//! `homes::keyshares` looks at the home's, `vault` at the bucket's.

mod contents;
mod location;
mod name;
mod sealed;

pub use contents::{ContentsError, KeyId, KeyshareContents, KeyshareFormat, contents};
pub use location::{VaultLocation, location};
pub use name::KeyshareName;
pub use sealed::{OpenError, check_store_key, open};
