//! The fast path of reading an event: a cursor over one JSON object as this tracer writes it
//! (plain strings, integers, booleans, arrays of strings), with no intermediate tokens or
//! visitors. It reads only what it can read exactly as serde_json would, and gives up
//! (`None`) on anything else: an escape or a control character in a string, a fraction or an
//! exponent, an unknown key. The caller then reads the same text with serde_json, which also
//! words every error, so a document reads the same either way (the tests in `read` hold the
//! two together). On a million-event trace serde_json's reading was most of a report's work.

use serde::de::DeserializeOwned;

/// A position in one event's JSON text.
pub(super) struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

/// A value the cursor reads directly.
pub(super) trait Fast: Sized {
    fn fast(c: &mut Cursor) -> Option<Self>;
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` below `n` (`n` ≤ 128), as their high bits: exact for the lowest such
/// byte, which is all that is used (a borrow can mark bytes above it).
fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

fn equal(w: u64, b: u8) -> u64 {
    below(w ^ (ONES * u64::from(b)), 1)
}

/// Whether the eight bytes of `w` are all ASCII digits.
fn eight_digits(w: u64) -> bool {
    // A byte below '0' borrows in the subtraction, one above '9' carries in the addition.
    (w.wrapping_sub(ONES * u64::from(b'0')) | w.wrapping_add(ONES * 0x46)) & HIGHS == 0
}

/// The value of eight ASCII digits, the first in the lowest byte: pairs, then fours, then
/// the eight, each step one multiplication.
fn eight_digit_value(w: u64) -> u64 {
    let v = w - ONES * u64::from(b'0');
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    (v * 10_000 + (v >> 32)) & 0xFFFF_FFFF
}

/// The length of a string's text up to its closing quote; `None` when it holds an escape
/// or a control character first (or never ends). Eight bytes at a time.
fn plain_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let special = equal(w, b'"') | equal(w, b'\\') | below(w, 0x20);
        if special != 0 {
            let at = i + special.trailing_zeros() as usize / 8;
            return (b[at] == b'"').then_some(at);
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => return Some(i),
            b'\\' | 0..0x20 => return None,
            _ => i += 1,
        }
    }
    None
}

impl<'a> Cursor<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next token is `c`: taken.
    pub(super) fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let yes = self.bytes().get(self.at) == Some(&c);
        self.at += usize::from(yes);
        yes
    }

    /// Only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.ws();
        self.at == self.text.len()
    }

    /// A string without escapes, as it is in the text.
    pub(super) fn plain_str(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let len = plain_len(&self.bytes()[start..])?;
        self.at = start + len + 1;
        let text = &self.bytes()[start..start + len];
        // SAFETY: `text` lies in a str between two ASCII quotes, so it is whole characters:
        // valid UTF-8 (checking again was a tenth of the reading).
        Some(unsafe { std::str::from_utf8_unchecked(text) })
    }

    /// A literal (`true`, `false`).
    fn word(&mut self, w: &str) -> bool {
        self.ws();
        let yes = self.text[self.at..].starts_with(w);
        self.at += if yes { w.len() } else { 0 };
        yes
    }

    /// An integer's magnitude as JSON writes it: no leading zeros, no fraction or exponent
    /// (those are for serde_json to judge), not past `u64`.
    fn magnitude(&mut self) -> Option<u64> {
        let b = &self.bytes()[self.at..];
        let mut v: u64 = 0;
        let mut n = 0;
        // Eight digits at a time while they last (a time has 13, an inode 10), then one by
        // one; nineteen digits cannot overflow, so only a twentieth is checked.
        while let Some(chunk) = b.get(n..n + 8).filter(|_| n + 8 <= 19) {
            let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if !eight_digits(w) {
                break;
            }
            v = v * 100_000_000 + eight_digit_value(w);
            n += 8;
        }
        while n < 19 {
            match b.get(n) {
                Some(&d @ b'0'..=b'9') => v = v * 10 + u64::from(d - b'0'),
                _ => break,
            }
            n += 1;
        }
        if let Some(&d @ b'0'..=b'9') = b.get(n) {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            n += 1;
        }
        if n == 0
            || (n > 1 && b[0] == b'0')
            || matches!(b.get(n), Some(b'0'..=b'9' | b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.at += n;
        Some(v)
    }

    fn unsigned(&mut self) -> Option<u64> {
        self.ws();
        self.magnitude()
    }

    fn signed(&mut self) -> Option<i64> {
        self.ws();
        if self.bytes().get(self.at) == Some(&b'-') {
            self.at += 1;
            let m = self.magnitude()?;
            // -0 is 0; i64::MIN's magnitude is one past i64::MAX.
            0i64.checked_sub_unsigned(m)
        } else {
            i64::try_from(self.magnitude()?).ok()
        }
    }

    /// A value of a type read rarely (an object, an enum's name) by serde_json itself, from
    /// where the cursor is; the cursor moves past it.
    pub(super) fn by_serde<T: DeserializeOwned>(&mut self) -> Option<T> {
        self.ws();
        let mut values = serde_json::Deserializer::from_str(&self.text[self.at..]).into_iter();
        let v = values.next()?.ok()?;
        self.at += values.byte_offset();
        Some(v)
    }
}

impl Fast for u64 {
    fn fast(c: &mut Cursor) -> Option<Self> {
        c.unsigned()
    }
}

impl Fast for u32 {
    fn fast(c: &mut Cursor) -> Option<Self> {
        u32::try_from(c.unsigned()?).ok()
    }
}

impl Fast for i64 {
    fn fast(c: &mut Cursor) -> Option<Self> {
        c.signed()
    }
}

impl Fast for i32 {
    fn fast(c: &mut Cursor) -> Option<Self> {
        i32::try_from(c.signed()?).ok()
    }
}

impl Fast for bool {
    fn fast(c: &mut Cursor) -> Option<Self> {
        if c.word("true") {
            Some(true)
        } else if c.word("false") {
            Some(false)
        } else {
            None
        }
    }
}

impl Fast for String {
    fn fast(c: &mut Cursor) -> Option<Self> {
        c.plain_str().map(str::to_string)
    }
}

impl Fast for Vec<String> {
    fn fast(c: &mut Cursor) -> Option<Self> {
        if !c.eat(b'[') {
            return None;
        }
        let mut v = Vec::new();
        if c.eat(b']') {
            return Some(v);
        }
        loop {
            v.push(String::fast(c)?);
            if c.eat(b']') {
                return Some(v);
            }
            if !c.eat(b',') {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_with_escapes_or_controls_are_left_to_serde() {
        for (text, plain) in [
            (r#""abc""#, Some("abc")),
            (r#""""#, Some("")),
            (
                r#""a long string past eight bytes, é and ☃""#,
                Some("a long string past eight bytes, é and ☃"),
            ),
            (r#""tab\tinside""#, None),
            ("\"raw\ttab\"", None),
            ("\"raw control \u{1} long enough to be in a word\"", None),
            (r#""never ends"#, None),
        ] {
            assert_eq!(Cursor::new(text).plain_str(), plain, "{text}");
        }
    }

    #[test]
    fn eight_digits_at_a_time() {
        let word = |t: &[u8; 8]| u64::from_le_bytes(*t);
        assert!(eight_digits(word(b"01234567")));
        assert_eq!(eight_digit_value(word(b"01234567")), 1_234_567);
        assert_eq!(eight_digit_value(word(b"99999999")), 99_999_999);
        for bad in [
            b"0123456/",
            b"0123456:",
            b"a1234567",
            b"1234 678",
            b"\x801234567",
        ] {
            assert!(!eight_digits(word(bad)), "{bad:?}");
        }
        // Every byte value in every position: only digits pass.
        for pos in 0..8 {
            for byte in 0..=255u8 {
                let mut t = *b"55555555";
                t[pos] = byte;
                assert_eq!(eight_digits(word(&t)), byte.is_ascii_digit(), "{t:?}");
            }
        }
    }

    #[test]
    fn integers_as_json_writes_them() {
        for (text, v) in [
            ("0", Some(0)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("99999999999999999999", None),
            ("1234567890123,", Some(1_234_567_890_123)),
            ("12345678", Some(12_345_678)),
            ("123456789012345678901", None),
            ("01", None),
            ("1.0", None),
            ("1e3", None),
            ("-1", None),
        ] {
            assert_eq!(Cursor::new(text).unsigned(), v, "{text}");
        }
        for (text, v) in [
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775808", None),
            ("-0", Some(0)),
            ("-", None),
            ("-x", None),
        ] {
            assert_eq!(Cursor::new(text).signed(), v, "{text}");
        }
    }
}
