//! Writing header fields as HTTP/1 `name: value\r\n` lines, for both
//! directions: the request head going upstream and the response head going
//! back to the client.

use std::ops::Range;

use http::HeaderName;

/// Appends one `name: value\r\n` line.
pub fn put_field(out: &mut Vec<u8>, name: &HeaderName, value: &[u8]) {
    put_raw_field(out, name.as_str().as_bytes(), value);
}

/// Appends one `name: value\r\n` line; `name` must be a token and `value`
/// a valid field value (as httparse checked them on the way in).
pub fn put_raw_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Copies fields that a parsed head holds to `out` as lines. Fields the
/// peer wrote as `name: value` lines in a row (the usual case) go as one
/// run of the head's bytes: one copy for a whole head instead of four per
/// field. A field written otherwise (other spacing, a bare LF, an empty
/// value) goes line by line, so the bytes sent are the same either way.
pub struct Lines<'a> {
    head: &'a [u8],
    open: Open,
}

/// What `out` ends with that is not yet a whole line.
enum Open {
    Nothing,
    /// A run of the head's lines, from its first name to its last value,
    /// not yet copied.
    Run(Range<usize>),
    /// A field written on its own, but for its CRLF.
    Line,
}

impl<'a> Lines<'a> {
    pub fn new(head: &'a [u8]) -> Self {
        Lines { head, open: Open::Nothing }
    }

    /// Appends the field whose name and value sit at these positions of
    /// the head (or gathers it into the run). A name outside the head
    /// (never, from a parser's positions) leaves the field out.
    pub fn field(&mut self, out: &mut Vec<u8>, name: Range<usize>, value: Range<usize>) {
        let head = self.head;
        let Some(name_bytes) = head.get(name.clone()).filter(|n| !n.is_empty()) else {
            return;
        };
        let as_written = !value.is_empty()
            && name.end <= value.start
            && value.end <= head.len()
            && head.get(name.end..value.start) == Some(&b": "[..]);
        if !as_written {
            self.end_line(out, b"");
            out.extend_from_slice(name_bytes);
            out.extend_from_slice(b": ");
            out.extend_from_slice(head.get(value).unwrap_or_default());
            self.open = Open::Line;
            return;
        }
        match &mut self.open {
            Open::Run(run) if head.get(run.end..name.start) == Some(&b"\r\n"[..]) => run.end = value.end,
            _ => {
                self.end_line(out, b"");
                self.open = Open::Run(name.start..value.end);
            }
        }
    }

    /// Ends the line written last with `more` added to its value; the next
    /// field starts a new line. Callers end each head with it, and call it
    /// where they leave a field out or write one of their own.
    pub fn end_line(&mut self, out: &mut Vec<u8>, more: &[u8]) {
        match std::mem::replace(&mut self.open, Open::Nothing) {
            Open::Nothing => return,
            Open::Run(run) => out.extend_from_slice(self.head.get(run).unwrap_or_default()),
            Open::Line => {}
        }
        out.extend_from_slice(more);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions of each `name: value` in a head of lines, as a parser
    /// would find them (any spacing after the colon).
    fn positions(head: &[u8]) -> Vec<(Range<usize>, Range<usize>)> {
        let mut found = Vec::new();
        let mut at = 0;
        for line in head.split(|&b| b == b'\n') {
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(colon) = text.iter().position(|&b| b == b':') {
                let spaces = text[colon + 1..].iter().take_while(|&&b| b == b' ').count();
                found.push((at..at + colon, at + colon + 1 + spaces..at + text.len()));
            }
            at += line.len() + 1;
        }
        found
    }

    fn copy(head: &[u8], skip: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut lines = Lines::new(head);
        for (i, (name, value)) in positions(head).into_iter().enumerate() {
            if skip.contains(&i) {
                lines.end_line(&mut out, b"");
            } else {
                lines.field(&mut out, name, value);
            }
        }
        lines.end_line(&mut out, b"");
        out
    }

    #[test]
    fn lines_come_out_as_they_went_in_or_normalised() {
        let head = b"A: 1\r\nB: 2\r\nC:3\r\nD: 4\nE: \r\nF: 6\r\n";
        assert_eq!(copy(head, &[]), b"A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: \r\nF: 6\r\n");
        assert_eq!(copy(head, &[1, 5]), b"A: 1\r\nC: 3\r\nD: 4\r\nE: \r\n");
    }

    #[test]
    fn a_line_ended_with_more_keeps_the_rest_in_order() {
        let head = b"Via: 1.1 a\r\nServer: s\r\n";
        let mut out = Vec::new();
        let mut lines = Lines::new(head);
        let fields = positions(head);
        lines.field(&mut out, fields[0].0.clone(), fields[0].1.clone());
        lines.end_line(&mut out, b", 1.1 b");
        lines.field(&mut out, fields[1].0.clone(), fields[1].1.clone());
        lines.end_line(&mut out, b"");
        assert_eq!(out, b"Via: 1.1 a, 1.1 b\r\nServer: s\r\n");

        // The same for a line written on its own.
        let head = b"Via:1.1 a\r\n";
        let mut out = Vec::new();
        let mut lines = Lines::new(head);
        let (name, value) = positions(head).remove(0);
        lines.field(&mut out, name, value);
        lines.end_line(&mut out, b", 1.1 b");
        lines.end_line(&mut out, b", never");
        assert_eq!(out, b"Via: 1.1 a, 1.1 b\r\n");
    }

    #[test]
    fn positions_outside_the_head_never_panic() {
        let mut out = Vec::new();
        let mut lines = Lines::new(b"A: 1\r\n");
        lines.field(&mut out, 0..1, 3..40);
        lines.field(&mut out, 9..12, 3..4);
        lines.end_line(&mut out, b"");
        assert_eq!(out, b"A: \r\n");
    }
}
