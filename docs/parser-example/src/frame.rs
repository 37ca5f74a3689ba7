//! The LenProto wire format: the frame header and the frame kinds.

/// Bytes in a frame header: version, kind, 2-byte big-endian body length.
pub const HEADER_LEN: usize = 4;
/// The only protocol version there is.
pub const VERSION: u8 = 1;
/// Kind byte of a hello frame (body: the client name, UTF-8).
pub const KIND_HELLO: u8 = 1;
/// Kind byte of a data frame (opaque body).
pub const KIND_DATA: u8 = 2;
/// Kind byte of a bye frame (opaque body).
pub const KIND_BYE: u8 = 3;

/// A decoded frame header, not yet checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) version: u8,
    pub(crate) kind: u8,
    pub(crate) body_len: u16,
}

impl FrameHeader {
    /// Splits the four header bytes into their fields. Taking an array, not
    /// a slice, makes the length a type fact: nothing here can fail.
    pub(crate) const fn decode(bytes: [u8; HEADER_LEN]) -> Self {
        let [version, kind, len_hi, len_lo] = bytes;
        FrameHeader {
            version,
            kind,
            body_len: u16::from_be_bytes([len_hi, len_lo]),
        }
    }
}

/// The kinds this parser knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Hello,
    Data,
    Bye,
}

impl Kind {
    /// The kind of a kind byte; `None` for kinds this parser does not know.
    pub(crate) const fn from_code(code: u8) -> Option<Kind> {
        match code {
            KIND_HELLO => Some(Kind::Hello),
            KIND_DATA => Some(Kind::Data),
            KIND_BYE => Some(Kind::Bye),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_big_endian_length() {
        // 0x01 0x02 0x12 0x34: version 1, kind 2, length 0x1234 = 4660.
        let h = FrameHeader::decode([1, 2, 0x12, 0x34]);
        assert_eq!(
            h,
            FrameHeader {
                version: 1,
                kind: 2,
                body_len: 4660
            }
        );
    }

    #[test]
    fn kind_codes() {
        assert_eq!(Kind::from_code(1), Some(Kind::Hello));
        assert_eq!(Kind::from_code(2), Some(Kind::Data));
        assert_eq!(Kind::from_code(3), Some(Kind::Bye));
        assert_eq!(Kind::from_code(0), None);
        assert_eq!(Kind::from_code(4), None);
        assert_eq!(Kind::from_code(255), None);
    }
}
