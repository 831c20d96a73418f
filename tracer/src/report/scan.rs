//! Splits JSON read from a stream into whole values without parsing them: the fields of the
//! trace document, and the elements of its events array, each handed over as one slice to
//! be parsed on its own. Only strings and bracket depth are tracked, so the scan is a byte
//! loop, and a bad element spoils only itself.

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
    /// matter, found 16 bytes at a time ([`Structure`]).
    fn nested_end(&mut self, start: usize) -> Result<usize, ScanError> {
        let mut st = Structure {
            at: start,
            ..Structure::default()
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
        while self.at + 16 <= buf.len() {
            let block: &[u8; 16] = buf[self.at..self.at + 16].try_into().expect("16 bytes");
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

    /// Escapes and brackets at every offset of the 16-byte blocks, against serde_json.
    #[test]
    fn escapes_at_every_offset() {
        for pad in 0..40 {
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
