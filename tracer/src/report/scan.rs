//! Splits JSON read from a stream into whole values without parsing them: the fields of the
//! trace document, and the elements of its events array, each handed over as one slice to
//! be parsed on its own. Only strings and bracket depth are tracked, so the scan looks at
//! quotes, backslashes and brackets only, and a bad element spoils only itself.

use std::io::{self, Read};

/// Why the input is not JSON the scanner can split.
#[derive(Debug)]
pub(super) enum ScanError {
    /// The input ended inside a value.
    Truncated {
        line: u64,
        column: u64,
    },
    Syntax {
        expected: &'static str,
        line: u64,
        column: u64,
    },
    Io(io::Error),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Truncated { line, column } => write!(
                f,
                "the trace is truncated: the JSON ends early (line {line}, column {column})"
            ),
            ScanError::Syntax {
                expected,
                line,
                column,
            } => write!(
                f,
                "not valid JSON: expected {expected} at line {line} column {column}"
            ),
            ScanError::Io(e) => write!(f, "reading the trace: {e}"),
        }
    }
}

impl std::error::Error for ScanError {}

pub(super) struct Scanner<R> {
    input: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Lines and bytes dropped from the front of `buf` (for positions in errors).
    lines_before: u64,
    /// Bytes since the last newline dropped, for the column.
    column_before: u64,
}

const CHUNK: usize = 1 << 16;

impl<R: Read> Scanner<R> {
    pub(super) fn new(input: R) -> Self {
        Self {
            input,
            buf: Vec::with_capacity(CHUNK * 2),
            pos: 0,
            eof: false,
            lines_before: 0,
            column_before: 0,
        }
    }

    /// Reads more input after what is buffered; false at the end.
    fn fill(&mut self) -> Result<bool, ScanError> {
        if self.eof {
            return Ok(false);
        }
        // read_to_end fills spare capacity without zeroing it first.
        let n = loop {
            match self
                .input
                .by_ref()
                .take(CHUNK as u64)
                .read_to_end(&mut self.buf)
            {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ScanError::Io(e)),
            }
        };
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// Drops what was consumed, so the buffer holds at most the value being scanned.
    fn compact(&mut self) {
        if self.pos < CHUNK {
            return;
        }
        let gone = &self.buf[..self.pos];
        // memchr: a compact document has no newline, and a byte loop over every byte read
        // cost more than the rest of the scan.
        let newlines = memchr::memchr_iter(b'\n', gone).count() as u64;
        match memchr::memrchr(b'\n', gone) {
            Some(i) => self.column_before = (gone.len() - i - 1) as u64,
            None => self.column_before += gone.len() as u64,
        }
        self.lines_before += newlines;
        self.buf.drain(..self.pos);
        self.pos = 0;
    }

    /// Line and column (from 1) of `at` in the buffer.
    fn position(&self, at: usize) -> (u64, u64) {
        let seen = &self.buf[..at.min(self.buf.len())];
        let newlines = memchr::memchr_iter(b'\n', seen).count() as u64;
        let column = match memchr::memrchr(b'\n', seen) {
            Some(i) => (seen.len() - i) as u64,
            None => self.column_before + seen.len() as u64 + 1,
        };
        (self.lines_before + newlines + 1, column)
    }

    fn truncated(&self) -> ScanError {
        let (line, column) = self.position(self.buf.len());
        ScanError::Truncated { line, column }
    }

    /// A syntax error at the current position.
    pub(super) fn error(&self, expected: &'static str) -> ScanError {
        self.syntax(expected)
    }

    fn syntax(&self, expected: &'static str) -> ScanError {
        let (line, column) = self.position(self.pos);
        ScanError::Syntax {
            expected,
            line,
            column,
        }
    }

    /// The next byte that is not whitespace (not consumed); None at the end.
    pub(super) fn peek(&mut self) -> Result<Option<u8>, ScanError> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if !b.is_ascii_whitespace() {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            self.compact();
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Consumes `byte` (after whitespace), or fails saying `expected`.
    pub(super) fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), ScanError> {
        match self.peek()? {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.syntax(expected)),
            None => Err(self.truncated()),
        }
    }

    /// Consumes one of `bytes` and says which.
    pub(super) fn one_of(&mut self, bytes: &[u8], expected: &'static str) -> Result<u8, ScanError> {
        match self.peek()? {
            Some(b) if bytes.contains(&b) => {
                self.pos += 1;
                Ok(b)
            }
            Some(_) => Err(self.syntax(expected)),
            None => Err(self.truncated()),
        }
    }

    /// The next whole value (string, number, literal, object or array), as its bytes.
    pub(super) fn value(&mut self) -> Result<&[u8], ScanError> {
        self.compact();
        let Some(first) = self.peek()? else {
            return Err(self.truncated());
        };
        let start = self.pos;
        let end = if matches!(first, b'{' | b'[' | b'"') {
            self.nested_end(start)?
        } else {
            self.scalar_end(start)?
        };
        if end == start {
            return Err(self.syntax("a value"));
        }
        self.pos = end;
        Ok(&self.buf[start..end])
    }

    /// Where the number or literal at `start` ends.
    fn scalar_end(&mut self, start: usize) -> Result<usize, ScanError> {
        let mut i = start;
        loop {
            match self.buf.get(i).copied() {
                Some(b) if !SCALAR_END[b as usize] => i += 1,
                Some(_) => return Ok(i),
                None if self.fill()? => {}
                None => return Ok(i),
            }
        }
    }

    /// Where the string, object or array at `start` ends: only quotes, escapes and brackets
    /// matter, found 64 or 16 bytes at a time ([`Structure`]).
    fn nested_end(&mut self, start: usize) -> Result<usize, ScanError> {
        // An object or array is entered here, so the block scan starts inside it (at depth
        // 0 it would take the slow path).
        let mut st = match self.buf[start] {
            b'{' | b'[' => Structure {
                at: start + 1,
                depth: 1,
                ..Structure::default()
            },
            _ => Structure {
                at: start,
                ..Structure::default()
            },
        };
        loop {
            if let Some(end) = st.scan(&self.buf) {
                return Ok(end);
            }
            if !self.fill()? {
                return Err(self.truncated());
            }
        }
    }
}

/// Where a scan of a nested value is, kept across reads: the next byte to look at, the
/// bracket depth, and whether it is inside a string (and just after a backslash there).
#[derive(Default)]
struct Structure {
    at: usize,
    depth: u64,
    in_string: bool,
    escaped: bool,
}

impl Structure {
    /// Scans `buf` from `at`: just past the value's end, or None when `buf` ends first.
    fn scan(&mut self, buf: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        {
            while self.at + 64 <= buf.len() {
                let block: &[u8; 64] = buf[self.at..self.at + 64].try_into().expect("64 bytes");
                if let Some(end) = self.block64(block) {
                    return Some(end);
                }
            }
            while self.at + 16 <= buf.len() {
                let block: &[u8; 16] = buf[self.at..self.at + 16].try_into().expect("16 bytes");
                if let Some(end) = self.block16(block) {
                    return Some(end);
                }
            }
        }
        while let Some(&b) = buf.get(self.at) {
            self.at += 1;
            if self.escaped {
                self.escaped = false;
                continue;
            }
            if !STRUCTURAL[b as usize] {
                continue;
            }
            match self.byte(b) {
                Step::End => return Some(self.at),
                Step::Escape => self.escaped = true,
                Step::On => {}
            }
        }
        None
    }

    /// 64 bytes at once, inside an object or array and without a backslash (almost every
    /// block of a trace): which bytes are in strings follows from the quotes alone (a
    /// running XOR of their bits), so only the brackets outside strings are looked at, one
    /// by one. Other blocks go 16 bytes at a time.
    #[cfg(target_arch = "x86_64")]
    fn block64(&mut self, block: &[u8; 64]) -> Option<usize> {
        let m = sse2::masks64(block);
        if self.depth == 0 || self.escaped || m.backslash != 0 {
            for k in 0..4 {
                let part: &[u8; 16] = block[k * 16..k * 16 + 16].try_into().expect("16 bytes");
                if let Some(end) = self.block16(part) {
                    return Some(end);
                }
            }
            return None;
        }
        let mut inside = prefix_xor(m.quote);
        if self.in_string {
            inside = !inside;
        }
        let mut brackets = (m.open | m.close) & !inside;
        while brackets != 0 {
            let k = brackets.trailing_zeros();
            brackets &= brackets - 1;
            if m.open >> k & 1 == 1 {
                self.depth += 1;
            } else {
                self.depth -= 1;
                if self.depth == 0 {
                    return Some(self.at + k as usize + 1);
                }
            }
        }
        self.in_string = inside >> 63 == 1;
        self.at += 64;
        None
    }

    /// 16 bytes, each quote, backslash and bracket through [`Structure::byte`].
    #[cfg(target_arch = "x86_64")]
    fn block16(&mut self, block: &[u8; 16]) -> Option<usize> {
        let mut mask = sse2::structural(block);
        // The byte after a backslash is never structural.
        if self.escaped {
            mask &= !1;
        }
        self.escaped = false;
        while mask != 0 {
            let k = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            match self.byte(block[k]) {
                Step::End => return Some(self.at + k + 1),
                // The escaped byte is not looked at (it may be past this block).
                Step::Escape if k == 15 => self.escaped = true,
                Step::Escape => mask &= !(1 << (k + 1)),
                Step::On => {}
            }
        }
        self.at += 16;
        None
    }

    /// One quote, backslash or bracket.
    fn byte(&mut self, b: u8) -> Step {
        if self.in_string {
            match b {
                b'\\' => return Step::Escape,
                b'"' => {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Step::End;
                    }
                }
                _ => {}
            }
            return Step::On;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    return Step::End;
                }
            }
            _ => {}
        }
        Step::On
    }
}

/// Bit `i` set when an odd number of bits `0..=i` of `x` are: with `x` the quotes of a
/// block (none escaped), the bytes from each opening quote up to its closing one.
#[cfg(target_arch = "x86_64")]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

enum Step {
    On,
    /// A backslash in a string: the next byte is skipped.
    Escape,
    /// The value ends here.
    End,
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// A bit for each quote, backslash and bracket among the 16 bytes (SSE2 is part of
    /// every x86_64 CPU).
    pub(super) fn structural(block: &[u8; 16]) -> u32 {
        // SAFETY: SSE2 is baseline on x86_64; the load reads exactly the 16 bytes of
        // `block` (unaligned loads are allowed).
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            // '[' and ']' differ from '{' and '}' by 0x20 only: one compare each once
            // that bit is set.
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let open = _mm_cmpeq_epi8(folded, _mm_set1_epi8(b'{' as i8));
            let close = _mm_cmpeq_epi8(folded, _mm_set1_epi8(b'}' as i8));
            let all = _mm_or_si128(_mm_or_si128(eq(b'"'), eq(b'\\')), _mm_or_si128(open, close));
            _mm_movemask_epi8(all) as u32
        }
    }

    /// The quotes, backslashes, opening and closing brackets of 64 bytes, a bit per byte.
    pub(super) struct Masks {
        pub(super) quote: u64,
        pub(super) backslash: u64,
        pub(super) open: u64,
        pub(super) close: u64,
    }

    pub(super) fn masks64(block: &[u8; 64]) -> Masks {
        let mut m = Masks {
            quote: 0,
            backslash: 0,
            open: 0,
            close: 0,
        };
        for k in 0..4 {
            // SAFETY: SSE2 is baseline on x86_64; the load reads 16 bytes inside `block`.
            unsafe {
                let v = _mm_loadu_si128(block.as_ptr().add(k * 16).cast());
                let bits = |c: u8, w: __m128i| {
                    (_mm_movemask_epi8(_mm_cmpeq_epi8(w, _mm_set1_epi8(c as i8))) as u32 as u64)
                        << (k * 16)
                };
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                m.quote |= bits(b'"', v);
                m.backslash |= bits(b'\\', v);
                m.open |= bits(b'{', folded);
                m.close |= bits(b'}', folded);
            }
        }
        m
    }
}

/// Quotes, backslashes and brackets: what the scan of a nested value looks at.
const STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    let bytes = b"\"\\{}[]";
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
};

/// Bytes that end a number or literal.
const SCALAR_END: [bool; 256] = {
    let mut t = [false; 256];
    let ends = b",}]:\"{[ \t\r\n";
    let mut i = 0;
    while i < ends.len() {
        t[ends[i] as usize] = true;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn values(s: &str) -> Vec<String> {
        let mut sc = Scanner::new(s.as_bytes());
        let mut out = Vec::new();
        while sc.peek().unwrap().is_some() {
            out.push(String::from_utf8(sc.value().unwrap().to_vec()).unwrap());
            let _ = sc.one_of(b",", ",");
        }
        out
    }

    #[test]
    fn splits_whole_values() {
        assert_eq!(
            values(r#"{"a":"}\"]","b":[1,{"c":2}]}, 12 ,"x\\",[[]],true"#),
            [
                r#"{"a":"}\"]","b":[1,{"c":2}]}"#,
                "12",
                r#""x\\""#,
                "[[]]",
                "true"
            ]
        );
    }

    #[test]
    fn errors_say_where() {
        let mut sc = Scanner::new(&b"{\"a\":\n [1, 2"[..]);
        let e = sc.value().unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains("line 2"), "{e}");
        let mut sc = Scanner::new(&b"\n  x"[..]);
        sc.expect(b'{', "an object").map(|_| ()).unwrap_err();
        let e = sc.expect(b'{', "an object").unwrap_err().to_string();
        assert_eq!(e, "not valid JSON: expected an object at line 2 column 3");
    }

    /// Escapes and brackets at every offset of the 64- and 16-byte blocks, against serde_json.
    #[test]
    fn escapes_at_every_offset() {
        for pad in 0..140 {
            for tail in [r#"\"}]"#, r#"\\"#, r#"\\\"{"#, "[{"] {
                let value = format!(
                    r#"{{"a":"{}{tail}","b":[1,{{"c":"]"}}],"d":{{}}}}"#,
                    "x".repeat(pad)
                );
                serde_json::from_str::<serde_json::Value>(&value).expect("valid JSON");
                let text = format!("{value} , 7");
                assert_eq!(values(&text), [value.as_str(), "7"], "pad {pad}");
            }
        }
    }

    /// Random values (strings full of quotes, backslashes and brackets, nested to depth 5,
    /// so every block shape of the 64-byte scan comes up) split as serde_json wrote them.
    #[test]
    fn random_values_split_as_written() {
        use serde_json::Value;
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        fn string(next: &mut impl FnMut(u64) -> u64) -> String {
            const PIECES: [&str; 10] = ["{", "}", "[", "]", "x", "é", "abcdefgh", "\"", "\\", "\n"];
            // Half the strings have nothing to escape (the blocks the fast path takes).
            let kinds = if next(2) == 0 { 7 } else { 10 };
            (0..next(40))
                .map(|_| PIECES[next(kinds) as usize])
                .collect()
        }
        fn value(next: &mut impl FnMut(u64) -> u64, depth: u32) -> Value {
            match if depth >= 5 { next(3) } else { next(5) } {
                0 => Value::String(string(next)),
                1 => Value::from(next(1 << 40)),
                2 => Value::Bool(next(2) == 1),
                3 => (0..next(6)).map(|_| value(next, depth + 1)).collect(),
                _ => Value::Object(
                    (0..next(6))
                        .map(|_| (string(next), value(next, depth + 1)))
                        .collect(),
                ),
            }
        }
        for _ in 0..300 {
            let written: Vec<String> = (0..8).map(|_| value(&mut next, 0).to_string()).collect();
            assert_eq!(values(&written.join(", ")), written);
        }
    }

    /// Values longer than the read chunk, split across reads one byte at a time.
    #[test]
    fn values_across_reads() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let big = format!("[\"{}\",{}]", "y".repeat(3 * CHUNK), "7");
        let text = format!("{big} {big}");
        let mut sc = Scanner::new(Trickle(text.as_bytes()));
        assert_eq!(sc.value().unwrap(), big.as_bytes());
        assert_eq!(sc.value().unwrap(), big.as_bytes());
        assert!(sc.peek().unwrap().is_none());
    }
}
