//! Flags: a 64-bit number a string key carries beside its value, for Consul's KV
//! (`Flags`), which its clients use to say how to read the value. Format 5.
//!
//! Kept in a family of their own (`Cf::KeyFlags`, only for keys whose flags are not
//! 0), so a key's record keeps its bytes. Every put sets them, as Consul's does: a put
//! that names none (any put but `KvCommand::PutWithFlags`) leaves 0; a delete, however
//! the key goes, removes them.

use super::store::{Batch, Cf, View, ViewError};

/// The flags of `key` as `view` sees them (0: none).
pub fn get(view: &View<'_>, key: &str) -> Result<u64, ViewError> {
    view.get(Cf::KeyFlags, key.as_bytes())?.map_or(Ok(0), |bytes| decode(&bytes))
}

/// The flags of `key` as `batch` sees them (0: none).
pub fn pending(batch: &Batch<'_>, key: &str) -> Result<u64, ViewError> {
    batch.get(Cf::KeyFlags, key.as_bytes())?.map_or(Ok(0), |bytes| decode(&bytes))
}

/// Gives `key` these flags (0 removes them).
pub fn set(batch: &mut Batch<'_>, key: &str, flags: u64) {
    match flags {
        0 => batch.delete(Cf::KeyFlags, key.as_bytes()),
        flags => batch.put(Cf::KeyFlags, key.as_bytes(), flags.to_be_bytes().to_vec()),
    }
}

fn decode(bytes: &[u8]) -> Result<u64, ViewError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| ViewError::Corrupt(format!("a key's flags of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(bytes))
}
