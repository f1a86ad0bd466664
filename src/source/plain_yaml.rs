//! A fast reader for the YAML that manifests are almost always written in:
//! block mappings and sequences, one-line flow collections (`[a, b]`,
//! `{k: v}`, and JSON spread over lines), plain and quoted one-line scalars,
//! `|` literal blocks and comments. It reads one document into a `Node` tree
//! that borrows its strings from the text.
//!
//! It never reports an error: anything it does not know exactly how the full
//! parser (libyaml via serde_yaml_ng) would read — anchors, tags, folded or
//! multi-line scalars, tabs, unusual line breaks, syntax errors — makes it
//! decline (`Unsupported`), and the caller reads that document with the full
//! parser. Where it does answer, the tree is the one the full parser builds
//! as a `serde_json::Value`: plain scalars are typed with serde_yaml_ng's
//! rules (`resolve`), mapping keys are sorted and the last duplicate wins,
//! non-finite floats are null. A differential test holds it to that.

use std::borrow::Cow;

/// A YAML document as `serde_json::Value` would hold it, strings borrowed
/// from the text where they can be.
#[derive(Clone, Debug, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    /// A non-negative integer.
    Uint(u64),
    /// A negative integer.
    Int(i64),
    /// A finite float (non-finite ones are `Null`, as in `serde_json::Value`).
    Float(f64),
    Str(Cow<'a, str>),
    Seq(Vec<Node<'a>>),
    /// Sorted by key, keys unique (the last definition wins).
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Map(entries) => entries.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok().map(|i| &entries[i].1),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The document uses something this reader leaves to the full parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

type R<T> = Result<T, Unsupported>;

/// Deeper documents are left to the full parser (which has its own limit).
const MAX_DEPTH: usize = 64;
/// libyaml refuses simple keys longer than 1024 characters.
const MAX_KEY: usize = 1000;

/// Reads one document (an optional `---` line, then its content).
pub fn parse(text: &str) -> R<Node<'_>> {
    check_chars(text)?;
    let mut p = Parser { s: text, b: text.as_bytes(), pos: 0, depth: 0 };
    p.document()
}

/// Tabs, carriage returns, control characters and the line breaks and
/// marks YAML treats specially (NEL, LS, PS, BOM) are left to the full parser.
fn check_chars(text: &str) -> R<()> {
    let b = text.as_bytes();
    if b.iter().any(|&c| (c < 0x20 && c != b'\n') || c == 0x7f) {
        return Err(Unsupported);
    }
    if !text.is_ascii()
        && text
            .chars()
            .any(|c| matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'))
    {
        return Err(Unsupported);
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    /// Start of the line being read (between items), or inside a flow collection.
    pos: usize,
    depth: usize,
}

/// Where a plain scalar on a block line stopped.
enum Stop {
    /// `: ` or `:` at the end of the line: it is a mapping key.
    Colon(usize),
    /// End of the line, or a ` #` comment.
    Line,
}

impl<'a> Parser<'a> {
    fn byte(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(b'\n')
    }

    fn line_end(&self, from: usize) -> usize {
        self.b[from.min(self.b.len())..].iter().position(|&c| c == b'\n').map_or(self.b.len(), |i| from + i)
    }

    fn spaces(&self, from: usize) -> usize {
        let mut i = from;
        while self.byte(i) == b' ' && i < self.b.len() {
            i += 1;
        }
        i
    }

    fn document(&mut self) -> R<Node<'a>> {
        // The optional start marker, alone on its line (or with a comment).
        if let Some(i) = self.content_line(true)?
            && i == 0
            && self.is_marker(self.pos, b"---")
        {
            let end = self.rest_of_line(self.pos + 3)?;
            self.pos = end;
        }
        let node = match self.content_line(false)? {
            None => Node::Null,
            Some(_) => self.block_node(-1)?,
        };
        match self.content_line(false)? {
            None => Ok(node),
            Some(_) => Err(Unsupported),
        }
    }

    fn is_marker(&self, at: usize, marker: &[u8]) -> bool {
        self.b[at..].starts_with(marker) && matches!(self.byte(at + 3), b' ' | b'\n')
    }

    /// Skips blank and comment lines from the line start `pos`; returns the
    /// indentation of the next content line (pos stays at its start), None
    /// at the end. Document markers inside a document are left to the full
    /// parser (`allow_marker` only for the first line).
    fn content_line(&mut self, allow_marker: bool) -> R<Option<usize>> {
        loop {
            if self.pos >= self.b.len() {
                return Ok(None);
            }
            let first = self.spaces(self.pos);
            match self.byte(first) {
                b'\n' => self.pos = (first + 1).min(self.b.len()),
                b'#' => self.pos = (self.line_end(first) + 1).min(self.b.len()),
                _ => {
                    let indent = first - self.pos;
                    if indent == 0
                        && !allow_marker
                        && (self.is_marker(self.pos, b"---") || self.is_marker(self.pos, b"..."))
                    {
                        return Err(Unsupported);
                    }
                    if indent == 0 && self.b[self.pos] == b'%' {
                        return Err(Unsupported);
                    }
                    return Ok(Some(indent));
                }
            }
        }
    }

    /// After a value on a block line: only spaces and a ` #` comment may
    /// follow. Returns the start of the next line.
    fn rest_of_line(&self, from: usize) -> R<usize> {
        let i = self.spaces(from);
        match self.byte(i) {
            b'\n' => Ok((i + 1).min(self.b.len())),
            b'#' if i > from => Ok((self.line_end(i) + 1).min(self.b.len())),
            _ => Err(Unsupported),
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(Unsupported) } else { Ok(()) }
    }

    /// A node starting on the content line at `pos` (indented more than
    /// `parent`).
    fn block_node(&mut self, parent: isize) -> R<Node<'a>> {
        self.enter()?;
        let indent = self.spaces(self.pos) - self.pos;
        let at = self.pos + indent;
        let node = if self.is_entry(at) {
            self.block_seq(indent)?
        } else if let Some(key) = self.key(at)? {
            self.block_map(indent, key)?
        } else {
            let (node, end) = self.inline(at, parent)?;
            self.pos = self.rest_of_line(end)?;
            node
        };
        self.depth -= 1;
        Ok(node)
    }

    /// `- ` (or `-` at the end of the line) at `at`.
    fn is_entry(&self, at: usize) -> bool {
        self.byte(at) == b'-' && matches!(self.byte(at + 1), b' ' | b'\n')
    }

    /// A block sequence whose `-` entries are at column `indent`; pos at the
    /// first entry's line.
    fn block_seq(&mut self, indent: usize) -> R<Node<'a>> {
        let mut items = Vec::new();
        loop {
            let dash = self.pos + indent;
            let item = self.after_indicator(dash + 1, indent, false)?;
            items.push(item);
            match self.content_line(false)? {
                Some(i) if i == indent && self.is_entry(self.pos + i) => {}
                Some(i) if i <= indent => break,
                None => break,
                Some(_) => return Err(Unsupported),
            }
        }
        Ok(Node::Seq(items))
    }

    /// A block mapping whose keys are at column `indent`; the first key
    /// (already read) ends at `first.1`.
    fn block_map(&mut self, indent: usize, first: (Cow<'a, str>, usize)) -> R<Node<'a>> {
        let mut entries = Vec::new();
        let (mut key, mut after) = first;
        loop {
            let value = self.after_indicator(after, indent, true)?;
            entries.push((key, value));
            match self.content_line(false)? {
                Some(i) if i == indent => {
                    (key, after) = self.key(self.pos + i)?.ok_or(Unsupported)?;
                }
                Some(i) if i < indent => break,
                None => break,
                Some(_) => return Err(Unsupported),
            }
        }
        Ok(map(entries))
    }

    /// The value after a mapping's `:` or a sequence's `-` at `after` (on the
    /// same line, or on the following lines). `indent` is the collection's
    /// column. Leaves pos at the start of the line after the value.
    fn after_indicator(&mut self, after: usize, indent: usize, in_map: bool) -> R<Node<'a>> {
        let at = self.spaces(after);
        let c = self.byte(at);
        if c == b'\n' || c == b'#' {
            self.pos = (self.line_end(at) + 1).min(self.b.len());
            return match self.content_line(false)? {
                Some(i) if i > indent => self.block_node(indent as isize),
                // `key:` followed by `- item` lines at the key's own column.
                Some(i) if i == indent && in_map && self.is_entry(self.pos + i) => {
                    self.enter()?;
                    let seq = self.block_seq(indent)?;
                    self.depth -= 1;
                    Ok(seq)
                }
                _ => Ok(Node::Null),
            };
        }
        if !in_map {
            // A sequence item: a compact mapping (`- key: value`), or a value.
            if self.is_entry(at) {
                return Err(Unsupported);
            }
            if let Some(key) = self.key(at)? {
                self.enter()?;
                let line_start = self.pos;
                let node = self.block_map(at - line_start, key)?;
                self.depth -= 1;
                return Ok(node);
            }
        }
        if c == b'|' {
            return self.literal(at, indent);
        }
        let (node, end) = self.inline(at, indent as isize)?;
        self.pos = self.rest_of_line(end)?;
        Ok(node)
    }

    /// A mapping key at `at` followed by `:` and a space or the line end:
    /// the key and the position after the `:`. None when the line is not a
    /// mapping entry.
    fn key(&self, at: usize) -> R<Option<(Cow<'a, str>, usize)>> {
        let c = self.byte(at);
        if c == b'"' || c == b'\'' {
            let (key, end) = self.quoted(at)?;
            return Ok(match self.byte(end) {
                b':' if matches!(self.byte(end + 1), b' ' | b'\n') => Some((key, end + 1)),
                _ => None,
            });
        }
        if !plain_start(c) {
            return Ok(None);
        }
        match self.scan_plain_block(at) {
            (end, Stop::Colon(colon)) => {
                if end - at > MAX_KEY {
                    return Err(Unsupported);
                }
                Ok(Some((Cow::Borrowed(&self.s[at..end]), colon + 1)))
            }
            (_, Stop::Line) => Ok(None),
        }
    }

    /// A plain scalar on a block line: its end (trailing spaces trimmed) and
    /// what stopped it.
    fn scan_plain_block(&self, at: usize) -> (usize, Stop) {
        let mut i = at;
        let stop = loop {
            match self.byte(i) {
                b'\n' => break Stop::Line,
                b':' if matches!(self.byte(i + 1), b' ' | b'\n') => break Stop::Colon(i),
                b'#' if self.b[i - 1] == b' ' => break Stop::Line,
                _ => i += 1,
            }
        };
        let mut end = i;
        while end > at && self.b[end - 1] == b' ' {
            end -= 1;
        }
        (end, stop)
    }

    /// A value on one block line (a flow collection may continue on the next
    /// lines, indented more than `parent`): the node and where it ends.
    fn inline(&mut self, at: usize, parent: isize) -> R<(Node<'a>, usize)> {
        match self.byte(at) {
            b'[' | b'{' => self.flow(at, parent),
            b'"' | b'\'' => self.quoted(at).map(|(s, end)| (Node::Str(s), end)),
            c if plain_start(c) => match self.scan_plain_block(at) {
                (end, Stop::Line) => Ok((resolve(&self.s[at..end])?, end)),
                (_, Stop::Colon(_)) => Err(Unsupported),
            },
            _ => Err(Unsupported),
        }
    }

    /// A `|` or `|-` literal block scalar whose header is at `at`, inside a
    /// collection at column `parent`.
    fn literal(&mut self, at: usize, parent: usize) -> R<Node<'a>> {
        let (strip, header_end) = match self.byte(at + 1) {
            b'-' => (true, at + 2),
            _ => (false, at + 1),
        };
        let mut line = self.rest_of_line(header_end)?;
        // Block indentation: the first line's. Leading blank lines (whose
        // rules for indentation are subtle) go to the full parser.
        let first = self.spaces(line);
        if line < self.b.len() && self.byte(first) == b'\n' {
            return Err(Unsupported);
        }
        let indent = first - line;
        if line >= self.b.len() || indent <= parent {
            self.pos = line;
            return Ok(Node::Str(Cow::Borrowed("")));
        }
        let mut lines: Vec<(usize, usize)> = Vec::new(); // content (start, end incl. '\n'); start == end: blank
        let mut content_end = 0; // lines up to here hold content
        while line < self.b.len() {
            let text_at = self.spaces(line);
            let end = self.line_end(line);
            if text_at == end {
                // A blank line: more spaces than the indentation are content,
                // left to the full parser.
                if text_at - line > indent {
                    return Err(Unsupported);
                }
                lines.push((end, end));
            } else if text_at - line < indent {
                break;
            } else {
                if end >= self.b.len() {
                    // The last line has no line break: left to the full parser.
                    return Err(Unsupported);
                }
                lines.push((line + indent, end + 1));
                content_end = lines.len();
            }
            line = (end + 1).min(self.b.len());
        }
        self.pos = line;
        lines.truncate(content_end);
        let text = if lines.len() == 1 {
            let (start, end) = lines[0];
            Cow::Borrowed(&self.s[start..end])
        } else {
            let mut s = String::new();
            for &(start, end) in &lines {
                if start == end {
                    s.push('\n');
                } else {
                    s.push_str(&self.s[start..end]);
                }
            }
            Cow::Owned(s)
        };
        Ok(Node::Str(if strip {
            match text {
                Cow::Borrowed(t) => Cow::Borrowed(t.strip_suffix('\n').unwrap_or(t)),
                Cow::Owned(mut t) => {
                    t.pop();
                    Cow::Owned(t)
                }
            }
        } else {
            text
        }))
    }

    /// A quoted scalar on one line starting at `at`: its value and the
    /// position after the closing quote.
    fn quoted(&self, at: usize) -> R<(Cow<'a, str>, usize)> {
        if self.byte(at) == b'\'' {
            let mut i = at + 1;
            let mut escaped = false;
            loop {
                match self.byte(i) {
                    b'\n' => return Err(Unsupported),
                    b'\'' if self.byte(i + 1) == b'\'' => {
                        escaped = true;
                        i += 2;
                    }
                    b'\'' => break,
                    _ => i += 1,
                }
            }
            let raw = &self.s[at + 1..i];
            let value = if escaped { Cow::Owned(raw.replace("''", "'")) } else { Cow::Borrowed(raw) };
            return Ok((value, i + 1));
        }
        let mut i = at + 1;
        let mut owned: Option<String> = None;
        let mut run = i; // start of the text not yet copied into `owned`
        loop {
            match self.byte(i) {
                b'\n' => return Err(Unsupported),
                b'"' => break,
                b'\\' => {
                    let out = owned.get_or_insert_with(String::new);
                    out.push_str(&self.s[run..i]);
                    let (c, len) = self.escape(i + 1)?;
                    out.push(c);
                    i += 1 + len;
                    run = i;
                }
                _ => i += 1,
            }
        }
        let value = match owned {
            Some(mut out) => {
                out.push_str(&self.s[run..i]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(&self.s[at + 1..i]),
        };
        Ok((value, i + 1))
    }

    /// The escape after a `\` at `at`: the character and the escape's length.
    fn escape(&self, at: usize) -> R<(char, usize)> {
        let hex = |len: usize| -> R<(char, usize)> {
            let digits = self.s.get(at + 1..at + 1 + len).ok_or(Unsupported)?;
            if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
                return Err(Unsupported);
            }
            let code = u32::from_str_radix(digits, 16).map_err(|_| Unsupported)?;
            Ok((char::from_u32(code).ok_or(Unsupported)?, 1 + len))
        };
        Ok(match self.byte(at) {
            b'\\' => ('\\', 1),
            b'"' => ('"', 1),
            b'/' => ('/', 1),
            b'n' => ('\n', 1),
            b't' => ('\t', 1),
            b'r' => ('\r', 1),
            b'0' => ('\0', 1),
            b' ' => (' ', 1),
            b'x' => hex(2)?,
            b'u' => hex(4)?,
            b'U' => hex(8)?,
            _ => return Err(Unsupported),
        })
    }

    /// Skips spaces, line breaks and comments inside a flow collection.
    /// Continuation lines must be indented more than `parent`.
    fn flow_space(&self, mut i: usize, parent: isize) -> R<usize> {
        loop {
            match self.byte(i) {
                b' ' => i += 1,
                b'\n' if i < self.b.len() => {
                    i += 1;
                    let text_at = self.spaces(i);
                    if i < self.b.len()
                        && self.byte(text_at) != b'\n'
                        && ((text_at - i) as isize <= parent || self.is_marker(i, b"---") || self.is_marker(i, b"..."))
                    {
                        return Err(Unsupported);
                    }
                }
                b'#' if i > 0 && matches!(self.b[i - 1], b' ' | b'\n') => i = self.line_end(i),
                _ => return Ok(i),
            }
        }
    }

    /// A flow collection starting at `at` (`[` or `{`): the node and the
    /// position after its closing bracket.
    fn flow(&mut self, at: usize, parent: isize) -> R<(Node<'a>, usize)> {
        self.enter()?;
        let is_map = self.b[at] == b'{';
        let close = if is_map { b'}' } else { b']' };
        let mut i = self.flow_space(at + 1, parent)?;
        let mut items = Vec::new();
        let mut entries = Vec::new();
        if self.byte(i) != close {
            loop {
                if is_map {
                    let (key, end) = match self.byte(i) {
                        b'"' | b'\'' => self.quoted(i)?,
                        c if plain_start(c) => {
                            let end = self.scan_plain_flow(i);
                            (Cow::Borrowed(&self.s[i..end]), end)
                        }
                        _ => return Err(Unsupported),
                    };
                    let colon = self.spaces(end);
                    if self.byte(colon) != b':' || !matches!(self.byte(colon + 1), b' ' | b'\n') {
                        return Err(Unsupported);
                    }
                    let v = self.flow_space(colon + 1, parent)?;
                    let (value, end) = self.flow_item(v, parent)?;
                    entries.push((key, value));
                    i = end;
                } else {
                    let (item, end) = self.flow_item(i, parent)?;
                    items.push(item);
                    i = end;
                }
                i = self.flow_space(i, parent)?;
                match self.byte(i) {
                    b',' => {
                        i = self.flow_space(i + 1, parent)?;
                        if self.byte(i) == close {
                            // A trailing comma: left to the full parser.
                            return Err(Unsupported);
                        }
                    }
                    c if c == close => break,
                    _ => return Err(Unsupported),
                }
            }
        }
        self.depth -= 1;
        let node = if is_map { map(entries) } else { Node::Seq(items) };
        Ok((node, i + 1))
    }

    /// One value inside a flow collection.
    fn flow_item(&mut self, at: usize, parent: isize) -> R<(Node<'a>, usize)> {
        match self.byte(at) {
            b'[' | b'{' => self.flow(at, parent),
            b'"' | b'\'' => self.quoted(at).map(|(s, end)| (Node::Str(s), end)),
            c if plain_start(c) => {
                let end = self.scan_plain_flow(at);
                if self.byte(end) == b':' {
                    return Err(Unsupported);
                }
                Ok((resolve(&self.s[at..end])?, end))
            }
            _ => Err(Unsupported),
        }
    }

    /// A plain scalar inside a flow collection: its end (trailing spaces
    /// trimmed). It stops at flow indicators, `:`, a ` #` comment or the
    /// line end.
    fn scan_plain_flow(&self, at: usize) -> usize {
        let mut i = at;
        loop {
            match self.byte(i) {
                b'\n' | b',' | b'[' | b']' | b'{' | b'}' | b':' => break,
                b'#' if self.b[i - 1] == b' ' => break,
                _ => i += 1,
            }
        }
        while i > at && self.b[i - 1] == b' ' {
            i -= 1;
        }
        i
    }
}

/// Whether a plain scalar may start with `c` here: indicators (and `-`, `?`,
/// `:` even where YAML would allow them) are left to the full parser.
fn plain_start(c: u8) -> bool {
    !matches!(
        c,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
            | b' '
            | b'\n'
    )
}

/// Sorts a mapping's entries by key; of equal keys the last wins (as when
/// the full parser fills a `serde_json::Map`).
fn map<'a>(mut entries: Vec<(Cow<'a, str>, Node<'a>)>) -> Node<'a> {
    if entries.windows(2).all(|w| w[0].0 < w[1].0) {
        return Node::Map(entries);
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys stay in order
    let mut out: Vec<(Cow<'a, str>, Node<'a>)> = Vec::with_capacity(entries.len());
    for e in entries {
        match out.last_mut() {
            Some(last) if last.0 == e.0 => *last = e,
            _ => out.push(e),
        }
    }
    Node::Map(out)
}

/// Types a plain scalar as serde_yaml_ng does when it fills a
/// `serde_json::Value` (its `visit_untagged_scalar`): null, bool, integer,
/// float, else string. Integers beyond 64 bits go to the full parser.
pub fn resolve(v: &str) -> R<Node<'_>> {
    let first = v.as_bytes().first().copied().unwrap_or(b'~');
    // Most scalars are names: only the null and bool words can be typed.
    if first.is_ascii_alphabetic() || first == b'/' || first == b'_' {
        return Ok(match v {
            "null" | "Null" | "NULL" => Node::Null,
            "true" | "True" | "TRUE" => Node::Bool(true),
            "false" | "False" | "FALSE" => Node::Bool(false),
            _ => Node::Str(Cow::Borrowed(v)),
        });
    }
    if v.is_empty() || v == "~" {
        return Ok(Node::Null);
    }
    if let Some(u) = yaml_int::unsigned(v) {
        return Ok(Node::Uint(u));
    }
    if let Some(i) = yaml_int::negative(v) {
        return Ok(Node::Int(i));
    }
    if yaml_int::wide(v) {
        return Err(Unsupported);
    }
    if !yaml_int::digits_but_not_number(v)
        && let Some(f) = yaml_int::float(v)
    {
        // serde_json::Value holds no NaN or infinity.
        return Ok(if f.is_finite() { Node::Float(f) } else { Node::Null });
    }
    Ok(Node::Str(Cow::Borrowed(v)))
}

/// serde_yaml_ng 0.10's number rules (src/de.rs, MIT/Apache-2.0), ported so
/// that a plain scalar gets the same type as through the full parser.
mod yaml_int {
    use std::num::ParseIntError;

    pub fn unsigned(v: &str) -> Option<u64> {
        parse_unsigned_int(v, u64::from_str_radix)
    }

    pub fn negative(v: &str) -> Option<i64> {
        parse_negative_int(v, i64::from_str_radix)
    }

    /// An integer the full parser reads as 128 bits.
    pub fn wide(v: &str) -> bool {
        parse_unsigned_int(v, u128::from_str_radix).is_some() || parse_negative_int(v, i128::from_str_radix).is_some()
    }

    fn parse_unsigned_int<T>(scalar: &str, from_str_radix: fn(&str, u32) -> Result<T, ParseIntError>) -> Option<T> {
        let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(rest) = unpositive.strip_prefix(prefix) {
                if rest.starts_with(['+', '-']) {
                    return None;
                }
                if let Ok(int) = from_str_radix(rest, radix) {
                    return Some(int);
                }
            }
        }
        if unpositive.starts_with(['+', '-']) {
            return None;
        }
        if digits_but_not_number(scalar) {
            return None;
        }
        from_str_radix(unpositive, 10).ok()
    }

    fn parse_negative_int<T>(scalar: &str, from_str_radix: fn(&str, u32) -> Result<T, ParseIntError>) -> Option<T> {
        for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
            if let Some(rest) = scalar.strip_prefix(prefix) {
                let negative = format!("-{rest}");
                if let Ok(int) = from_str_radix(&negative, radix) {
                    return Some(int);
                }
            }
        }
        if digits_but_not_number(scalar) {
            return None;
        }
        from_str_radix(scalar, 10).ok()
    }

    pub fn float(scalar: &str) -> Option<f64> {
        let unpositive = if let Some(unpositive) = scalar.strip_prefix('+') {
            if unpositive.starts_with(['+', '-']) {
                return None;
            }
            unpositive
        } else {
            scalar
        };
        if let ".inf" | ".Inf" | ".INF" = unpositive {
            return Some(f64::INFINITY);
        }
        if let "-.inf" | "-.Inf" | "-.INF" = scalar {
            return Some(f64::NEG_INFINITY);
        }
        if let ".nan" | ".NaN" | ".NAN" = scalar {
            return Some(f64::NAN);
        }
        unpositive.parse::<f64>().ok().filter(|f| f.is_finite())
    }

    pub fn digits_but_not_number(scalar: &str) -> bool {
        let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
        scalar.len() > 1 && scalar.starts_with('0') && scalar[1..].bytes().all(|b| b.is_ascii_digit())
    }
}
