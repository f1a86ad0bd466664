//! Reading manifests exactly as a user writes them for `kubectl apply`:
//! YAML (multi-document) or JSON, `List` kinds expanded.
//!
//! A file is first split into its documents' text (`split`, a line scan), so
//! a caller can skip documents whose text it has already read and parse the
//! rest one at a time (`parse_chunks`) instead of holding the whole file's
//! values at once. Most documents are read by a fast path straight into
//! typed objects (`plain_yaml`, `node_object`); the rest by libyaml
//! (serde_yaml_ng) into a `serde_json::Value`, then the object — the
//! reference behaviour, which the fast path matches.

use serde::Deserialize;

use super::{node_object, plain_yaml};
use crate::world::{Object, ObjectError};

/// One object read from a manifest, or why it could not be read.
#[derive(Debug)]
pub struct Document {
    /// 1-based position of the document in the file (after `List` expansion
    /// the list's position, with `item` set).
    pub index: usize,
    pub item: Option<usize>,
    pub result: Result<Object, ObjectError>,
}

impl Document {
    /// "document 2" / "document 2, item 5", for messages.
    pub fn position(&self) -> String {
        position(self.index, self.item)
    }
}

/// "document 2" / "document 2, item 5", for messages.
pub fn position(index: usize, item: Option<usize>) -> String {
    match item {
        Some(i) => format!("document {index}, item {}", i + 1),
        None => format!("document {index}"),
    }
}

/// Why a whole file could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// The text of one document of a file (rarely several: see `split`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chunk<'a> {
    /// 1-based index in the file of the (first) document in `text`.
    pub first_index: usize,
    /// 0-based line in the file where `text` starts.
    pub first_line: usize,
    pub text: &'a str,
}

/// Splits a file into one chunk per document, at `---` lines. The YAML
/// itself is not parsed: a chunk may hold a syntax error, found when it is
/// parsed. Files using directives (`%YAML`) or end markers (`...`) are
/// returned as one chunk holding every document, parsed as a stream.
pub fn split(text: &str) -> Vec<Chunk<'_>> {
    let whole = vec![Chunk { first_index: 1, first_line: 0, text }];
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut content_before_first = false;
    let mut offset = 0;
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let line = if line_no == 0 { line.trim_start_matches('\u{feff}') } else { line };
        if line.starts_with('%') || is_marker(line, "...") || has_other_line_break(line) {
            return whole;
        }
        if is_marker(line, "---") {
            starts.push((offset, line_no));
        } else if starts.is_empty() && !is_blank_or_comment(line) {
            content_before_first = true;
        }
        offset += line.len();
    }
    if content_before_first || (starts.is_empty() && text.trim_start_matches('\u{feff}').trim().is_empty()) {
        // Leading content is a document of its own (an empty file has none,
        // but parsing it costs nothing and keeps one rule).
        starts.insert(0, (0, 0));
    }
    // The BOM only ever precedes the first line.
    let bom = text.len() - text.trim_start_matches('\u{feff}').len();
    let mut chunks = Vec::with_capacity(starts.len());
    for (i, &(start, line)) in starts.iter().enumerate() {
        let start = if start == 0 { 0 } else { start + bom };
        let end = starts.get(i + 1).map_or(text.len(), |&(s, _)| s + bom);
        chunks.push(Chunk { first_index: i + 1, first_line: line, text: &text[start..end] });
    }
    chunks
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// A line break YAML knows but `split` does not look for (a lone `\r`,
/// NEL, LS, PS): a `---` after one starts a document too.
fn has_other_line_break(line: &str) -> bool {
    let bytes = line.as_bytes();
    // Bytes that can start one: `\r`, and the UTF-8 lead bytes of U+0085 and U+2028/9.
    if !bytes.iter().any(|&b| b == b'\r' || b == 0xC2 || b == 0xE2) {
        return false;
    }
    let body = line.strip_suffix("\r\n").or_else(|| line.strip_suffix('\n')).unwrap_or(line);
    body.contains(['\r', '\u{85}', '\u{2028}', '\u{2029}'])
}

/// Parses a manifest file's text. A syntax error anywhere fails the whole
/// file (as `kubectl apply` would); per-object errors are returned per
/// document so the rest of the file still counts.
pub fn parse(text: &str) -> Result<Vec<Document>, ParseError> {
    let mut docs = Vec::new();
    parse_chunks(text, &split(text), |_| true, |_, d| docs.push(d))?;
    Ok(docs)
}

/// `parse` through the full parser only (libyaml -> `serde_json::Value` ->
/// object) for every document: the reference the fast path is tested
/// against.
pub fn parse_reference(text: &str) -> Result<Vec<Document>, ParseError> {
    let mut docs = Vec::new();
    for chunk in split(text) {
        parse_chunk(&chunk, |d| docs.push(d))?;
    }
    Ok(docs)
}

/// Parses the `selected` chunks of `text` (as `split` cut it), handing each
/// document (each item of a `List`) to `each` with its chunk's index, in
/// file order. A document in the common YAML subset is read by the fast
/// path (`plain_yaml`, straight to typed objects); any other — and any
/// syntax error — by the full parser, consecutive ones as one stream. On a
/// syntax error, documents before it may already have been handed over.
pub fn parse_chunks(
    text: &str,
    chunks: &[Chunk<'_>],
    selected: impl Fn(usize) -> bool,
    mut each: impl FnMut(usize, Document),
) -> Result<(), ParseError> {
    // Chunks waiting for the full parser: [start, end).
    let mut pending: Option<(usize, usize)> = None;
    for (i, chunk) in chunks.iter().enumerate() {
        if !selected(i) {
            flush(text, chunks, pending.take(), &mut each)?;
            continue;
        }
        match fast(chunk) {
            Ok(objects) => {
                flush(text, chunks, pending.take(), &mut each)?;
                for (item, result) in objects {
                    each(i, Document { index: chunk.first_index, item, result });
                }
            }
            Err(plain_yaml::Unsupported) => {
                pending = Some(pending.map_or((i, i + 1), |(start, _)| (start, i + 1)));
            }
        }
    }
    flush(text, chunks, pending, &mut each)
}

fn fast(chunk: &Chunk<'_>) -> Result<node_object::Objects, plain_yaml::Unsupported> {
    let node = plain_yaml::parse(chunk.text)?;
    node_object::objects(&node)
}

/// Reads consecutive chunks `run` of `text` with the full parser.
fn flush(
    text: &str,
    chunks: &[Chunk<'_>],
    run: Option<(usize, usize)>,
    each: &mut impl FnMut(usize, Document),
) -> Result<(), ParseError> {
    let Some((start, end)) = run else { return Ok(()) };
    let from = offset(text, chunks[start].text);
    let to = offset(text, chunks[end - 1].text) + chunks[end - 1].text.len();
    let joined =
        Chunk { first_index: chunks[start].first_index, first_line: chunks[start].first_line, text: &text[from..to] };
    let run = &chunks[start..end];
    parse_chunk(&joined, |doc| {
        let at = run.partition_point(|c| c.first_index <= doc.index).saturating_sub(1);
        each(start + at, doc)
    })
}

/// Byte offset of `part` (a slice of `text`) in `text`.
fn offset(text: &str, part: &str) -> usize {
    part.as_ptr() as usize - text.as_ptr() as usize
}

/// Parses one chunk with the full parser, handing each document (each item
/// of a `List`) to `each` as it is read. On a syntax error, documents before
/// it in the chunk may already have been handed over.
pub fn parse_chunk(chunk: &Chunk<'_>, mut each: impl FnMut(Document)) -> Result<(), ParseError> {
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(chunk.text).enumerate() {
        let index = chunk.first_index + i;
        let value = serde_json::Value::deserialize(doc)
            .map_err(|e| ParseError(describe_yaml_error(index, chunk.first_line, &e)))?;
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::Object(mut map) if is_list(&map) => {
                let items = match map.remove("items") {
                    Some(serde_json::Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                for (item, v) in items.into_iter().enumerate() {
                    each(Document { index, item: Some(item), result: Object::from_value(v) });
                }
            }
            serde_json::Value::Object(_) => each(Document { index, item: None, result: Object::from_value(value) }),
            _ => each(Document { index, item: None, result: Err(ObjectError::MissingKind) }),
        }
    }
    Ok(())
}

fn is_list(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    map.get("kind").and_then(|k| k.as_str()).is_some_and(|k| k == "List" || k.ends_with("List"))
        && map.get("items").is_some()
}

/// A YAML error names the document and position, never the offending text
/// (a broken Secret's line could hold a key).
fn describe_yaml_error(index: usize, first_line: usize, e: &serde_yaml_ng::Error) -> String {
    match e.location() {
        Some(loc) => format!(
            "YAML syntax error in document {index} at line {}, column {}",
            loc.line() + first_line,
            loc.column()
        ),
        None => format!("YAML syntax error in document {index}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Kind;

    #[test]
    fn multi_document_and_lists() {
        let docs = parse(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n  stringData: {key: k}\n- apiVersion: v9\n  kind: Nope\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].result.as_ref().unwrap().kind(), Kind::Service);
        assert_eq!(docs[1].result.as_ref().unwrap().kind(), Kind::Secret);
        assert_eq!(docs[1].position(), "document 3, item 1");
        assert!(matches!(docs[2].result, Err(ObjectError::UnknownKind { .. })));
    }

    #[test]
    fn split_at_document_markers_only() {
        let text = "# comment\n---\na: 1\n---   \nb: |\n  ---\n  x\n--- {c: 3}\n----\n";
        let chunks = split(text);
        let texts: Vec<_> = chunks.iter().map(|c| c.text).collect();
        assert_eq!(texts, ["---\na: 1\n", "---   \nb: |\n  ---\n  x\n", "--- {c: 3}\n----\n"]);
        assert_eq!(chunks.iter().map(|c| c.first_line).collect::<Vec<_>>(), [1, 3, 7]);
        assert_eq!(chunks.iter().map(|c| c.first_index).collect::<Vec<_>>(), [1, 2, 3]);

        assert_eq!(split("a: 1\n---\nb: 2\n").len(), 2, "leading content is a document");
        assert!(split("# only a comment\n").is_empty());
        assert_eq!(split("%YAML 1.2\n---\na: 1\n---\nb: 2\n").len(), 1, "directives: parsed as one stream");
        assert_eq!(split("a: 1\n...\n---\nb: 2\n").len(), 1);
        assert_eq!(split("a: 1\r\n---\r\nb: 2\r\n").len(), 2, "CRLF is fine");
        assert_eq!(split("a: 1\r---\rb: 2\r\n---\nc: 3\n").len(), 1, "a lone CR: parsed as one stream");
        assert_eq!(split("a: é\u{2028}---\nb: 2\n---\nc: 3\n").len(), 1);
    }

    #[test]
    fn split_parses_like_the_whole_stream() {
        let text = "\u{feff}# c\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\n# x\napiVersion: v1\nkind: Service\nmetadata: {name: b}\n---\n";
        let docs = parse(text).unwrap();
        let indexes: Vec<_> = docs.iter().map(|d| d.index).collect();
        let whole: Vec<_> = serde_yaml_ng::Deserializer::from_str(text)
            .enumerate()
            .filter_map(|(i, d)| {
                let v = serde_json::Value::deserialize(d).unwrap();
                (!v.is_null()).then_some(i + 1)
            })
            .collect();
        assert_eq!(indexes, whole);
        assert_eq!(indexes, [1, 3]);
    }

    #[test]
    fn syntax_error_lines_count_from_the_file_start() {
        let err = parse("a: 1\n---\nb: 2\n---\nc: [oops\n").unwrap_err();
        assert!(err.0.starts_with("YAML syntax error in document 3 at line "), "{err}");
        let line: usize = err.0.split("at line ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
        let whole = serde_yaml_ng::Deserializer::from_str("a: 1\n---\nb: 2\n---\nc: [oops\n")
            .find_map(|d| serde_json::Value::deserialize(d).err())
            .unwrap();
        assert_eq!(line, whole.location().unwrap().line());
    }

    #[test]
    fn json_files_parse_too() {
        let docs = parse(r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}"#).unwrap();
        assert_eq!(docs.len(), 1);
        assert!(docs[0].result.is_ok());
    }

    #[test]
    fn syntax_error_names_position_not_content() {
        let err = parse("apiVersion: v1\nkind: Secret\nstringData:\n  key: [hello_world\n").unwrap_err();
        assert!(err.0.contains("line"), "{err}");
        assert!(!err.0.contains("hello_world"), "{err}");
    }

    #[test]
    fn wrong_field_type_names_field_but_never_secret_value() {
        let docs =
            parse("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  key: [not, a, string]\n").unwrap();
        let err = docs[0].result.as_ref().unwrap_err().to_string();
        assert!(err.contains("stringData.key"), "{err}");
        assert!(!err.contains("not"), "{err}");
        let docs = parse("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: 5\n").unwrap();
        let err = docs[0].result.as_ref().unwrap_err().to_string();
        assert!(err.contains("spec.ports"), "{err}");
    }
}
