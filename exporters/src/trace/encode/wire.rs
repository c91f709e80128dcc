//! Protobuf's wire format: varints, tags, length-delimited and fixed-width fields,
//! each writer beside the function that gives its length, and a reader of the fields
//! of a message that never panics on what it is given.

pub(super) const VARINT: u8 = 0;
pub(super) const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

pub(super) fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(super) fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

pub(super) fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

pub(super) fn tag_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

/// A message field's tag and length; its body follows.
pub(super) fn message(out: &mut Vec<u8>, field: u32, len: usize) {
    tag(out, field, LEN);
    varint(out, len as u64);
}

pub(super) fn message_len(field: u32, len: usize) -> usize {
    tag_len(field) + varint_len(len as u64) + len
}

pub(super) fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        message(out, field, value.len());
        out.extend_from_slice(value);
    }
}

pub(super) fn bytes_len(field: u32, value: &[u8]) -> usize {
    if value.is_empty() {
        0
    } else {
        message_len(field, value.len())
    }
}

pub(super) fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes());
}

pub(super) fn string_len(field: u32, value: &str) -> usize {
    bytes_len(field, value.as_bytes())
}

pub(super) fn varint_field(out: &mut Vec<u8>, field: u32, n: u64) {
    if n != 0 {
        tag(out, field, VARINT);
        varint(out, n);
    }
}

pub(super) fn varint_len_field(field: u32, n: u64) -> usize {
    if n == 0 {
        0
    } else {
        tag_len(field) + varint_len(n)
    }
}

pub(super) fn fixed64(out: &mut Vec<u8>, field: u32, n: u64) {
    if n != 0 {
        tag(out, field, I64);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

pub(super) fn fixed64_len(field: u32, n: u64) -> usize {
    if n == 0 { 0 } else { tag_len(field) + 8 }
}

pub(super) fn fixed32(out: &mut Vec<u8>, field: u32, n: u32) {
    if n != 0 {
        tag(out, field, I32);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

pub(super) fn fixed32_len(field: u32, n: u32) -> usize {
    if n == 0 { 0 } else { tag_len(field) + 4 }
}

/// A field's value as read: a varint, a length-delimited body, or a fixed-size
/// value (skipped).
pub(super) enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

/// The fields of a message's bytes, in order: each its number and its value, the
/// value `None` where it cannot be read (and nothing after it is read).
pub(super) struct Fields<'a>(pub(super) &'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Option<Wire<'a>>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let key = self.read_varint();
        let Some(key) = key else {
            self.0 = &[];
            return Some((0, None));
        };
        let value = match key & 7 {
            0 => self.read_varint().map(Wire::Varint),
            1 => self.skip(8),
            2 => self
                .read_varint()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| {
                    let (body, rest) = (self.0.get(..n)?, self.0.get(n..)?);
                    self.0 = rest;
                    Some(Wire::Len(body))
                }),
            5 => self.skip(4),
            _ => None,
        };
        if value.is_none() {
            self.0 = &[];
        }
        Some((key >> 3, value))
    }
}

impl<'a> Fields<'a> {
    fn read_varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            n |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(n);
            }
        }
        None
    }

    fn skip(&mut self, n: usize) -> Option<Wire<'a>> {
        self.0 = self.0.get(n..)?;
        Some(Wire::Fixed)
    }
}
