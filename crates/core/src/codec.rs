//! The one binary encoding Concord uses for bytes it stores or sends to peers.
//!
//! Log entries, the vote, state-machine records, snapshot records and Raft RPCs all
//! go through `encode`/`decode`, so there is exactly one format to reason about and
//! to fuzz. It is `postcard` (serde, varint integers, no field names): compact and
//! fast, and unlike JSON it needs no escaping of binary values. Decoding is strict:
//! trailing bytes are an error, because they mean the frame is not what we think.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value could not be encoded or the bytes are not a valid encoding.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encode failed: {0}")]
    Encode(postcard::Error),
    #[error("malformed frame: {0}")]
    Decode(postcard::Error),
    #[error("malformed frame: {0} trailing bytes after the value")]
    Trailing(usize),
}

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_allocvec(value).map_err(CodecError::Encode)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(CodecError::Decode)?;
    if !rest.is_empty() {
        return Err(CodecError::Trailing(rest.len()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject_garbage() {
        let value = (7u64, String::from("key"), vec![0u8, 255, 1]);
        let bytes = encode(&value).unwrap();
        let back: (u64, String, Vec<u8>) = decode(&bytes).unwrap();
        assert_eq!(back, value);

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(decode::<(u64, String, Vec<u8>)>(&trailing), Err(CodecError::Trailing(1))));
        assert!(decode::<(u64, String, Vec<u8>)>(&bytes[..bytes.len() - 1]).is_err());
        // A length prefix claiming far more bytes than the frame holds is rejected, not allocated.
        assert!(decode::<Vec<u8>>(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
