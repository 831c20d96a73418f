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
        let newlines = gone.iter().filter(|&&b| b == b'\n').count() as u64;
        match gone.iter().rposition(|&b| b == b'\n') {
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
        let newlines = seen.iter().filter(|&&b| b == b'\n').count() as u64;
        let column = match seen.iter().rposition(|&b| b == b'\n') {
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

    /// Where the string, object or array at `start` ends: strings are skipped with memchr,
    /// the rest looked up byte by byte counting brackets.
    fn nested_end(&mut self, start: usize) -> Result<usize, ScanError> {
        let mut i = start;
        let mut depth = 0u64;
        loop {
            let buf = &self.buf[..];
            while i < buf.len() {
                let b = buf[i];
                if !STRUCTURAL[b as usize] {
                    i += 1;
                    continue;
                }
                match b {
                    b'"' => match string_end(buf, i + 1) {
                        Some(end) => {
                            if depth == 0 {
                                return Ok(end);
                            }
                            i = end;
                            continue;
                        }
                        // The rest of the string is not read yet: from its quote again.
                        None => break,
                    },
                    b'{' | b'[' => depth += 1,
                    _ => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                }
                i += 1;
            }
            if !self.fill()? {
                return Err(self.truncated());
            }
        }
    }
}

/// Just past the quote that closes the string whose contents start at `i`; None when the
/// buffer ends first.
fn string_end(buf: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let k = i + memchr::memchr2(b'"', b'\\', buf.get(i..)?)?;
        if buf[k] == b'"' {
            return Some(k + 1);
        }
        // An escape: the escaped byte is skipped.
        i = k + 2;
        if i > buf.len() {
            return None;
        }
    }
}

/// Quotes and brackets: what matters outside strings.
const STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    let bytes = b"\"{}[]";
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
