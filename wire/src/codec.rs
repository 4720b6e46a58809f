//! How messages become bytes: the [`Codec`] trait, and [`MsgPack`] (MessagePack with named
//! fields, through rmp-serde), the codec livepeer-rs nodes speak to each other.
//!
//! Code that sends or reads a message names the codec once; a protobuf codec for go-livepeer's
//! `lp_rpc.proto` can implement the same trait for the same message types.

use serde::{Deserialize, Serialize};

use crate::limits::MAX_DEPTH;

/// Errors decoding a wire message.
#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct DecodeError(String);

/// A wire encoding of the messages in this crate.
pub trait Codec {
    /// The HTTP content type of bodies in this encoding.
    const CONTENT_TYPE: &'static str;

    /// Encodes a message. The messages are plain data, so this cannot fail.
    fn encode<T: Serialize>(msg: &T) -> Vec<u8>;

    /// Decodes a message; garbage is an error, never a panic.
    fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError>;
}

/// MessagePack with named fields, nesting bounded by [`MAX_DEPTH`]. Unknown fields are skipped,
/// so a newer peer may add fields.
pub struct MsgPack;

impl Codec for MsgPack {
    const CONTENT_TYPE: &'static str = crate::headers::MSGPACK;

    fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
        // Serializing these plain structs into a Vec cannot fail.
        rmp_serde::to_vec_named(msg).expect("wire messages serialize")
    }

    fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
        let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
        de.set_max_depth(MAX_DEPTH);
        T::deserialize(&mut de).map_err(|e| DecodeError(e.to_string()))
    }
}

/// [`MsgPack::encode`].
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    MsgPack::encode(msg)
}

/// [`MsgPack::decode`].
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    MsgPack::decode(bytes)
}
