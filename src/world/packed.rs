//! Several short texts in one `str`, each preceded by its length: how the
//! World keeps an object's few annotations, labels and names in one
//! allocation instead of a `String` (24 bytes plus a heap block) each. A
//! length is ASCII bytes, so the whole is a `str` and reading it validates
//! nothing: one byte below `LONG` (names, usernames, most values), else
//! `LONG` with the top 6 bits and three bytes of 7 bits each.

use std::fmt;

/// Marks a four-byte length; a one-byte length is below it.
const LONG: u8 = 0x40;

/// Longest text a length prefix can say (128 MiB; the API caps all of an
/// object's annotations at 256 KiB).
const MAX_TEXT: usize = (1 << 27) - 1;

/// Appends one text with its length. Texts longer than `MAX_TEXT` cannot
/// come from the API; they are cut on a char boundary rather than misread.
pub fn put_text(out: &mut String, text: &str) {
    let mut text = text;
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text = &text[..end];
    }
    let len = text.len();
    if len < usize::from(LONG) {
        out.push(char::from(len as u8));
    } else {
        out.push(char::from(LONG | (len >> 21) as u8));
        for shift in [14, 7, 0] {
            out.push(char::from(((len >> shift) & 0x7f) as u8));
        }
    }
    out.push_str(text);
}

/// Reads the text `put_text` wrote at the start of `rest`, and moves past it.
pub fn take_text<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let first = *rest.as_bytes().first()?;
    let (start, len) = if first < LONG {
        (1, usize::from(first))
    } else {
        let (digits, _) = rest.as_bytes().split_first_chunk::<4>()?;
        (4, digits[1..].iter().fold(usize::from(first & !LONG), |n, d| n << 7 | usize::from(*d)))
    };
    let text = rest.get(start..start + len)?;
    *rest = &rest[start + len..];
    Some(text)
}

/// Texts written one after another by `put_text`, read in order.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Texts<'a>(&'a str);

impl<'a> Texts<'a> {
    pub fn new(packed: &'a str) -> Self {
        Self(packed)
    }

    pub fn iter(self) -> TextsIter<'a> {
        TextsIter(self.0)
    }

    pub fn len(self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for Texts<'a> {
    type Item = &'a str;
    type IntoIter = TextsIter<'a>;

    fn into_iter(self) -> TextsIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Texts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The texts of a `Texts`, in order.
#[derive(Clone)]
pub struct TextsIter<'a>(&'a str);

impl<'a> Iterator for TextsIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        take_text(&mut self.0)
    }
}

/// Annotations or labels: (key, value) texts, sorted by key.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Pairs<'a>(Texts<'a>);

impl<'a> Pairs<'a> {
    /// Reads what `put_pairs` wrote.
    pub fn new(packed: &'a str) -> Self {
        Self(Texts::new(packed))
    }

    pub fn get(self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Every (key, value), sorted by key.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let mut texts = self.0.iter();
        std::iter::from_fn(move || Some((texts.next()?, texts.next()?)))
    }

    pub fn keys(self) -> impl Iterator<Item = &'a str> {
        self.iter().map(|(k, _)| k)
    }

    /// The entries whose key starts with `prefix`, sorted by key.
    pub fn with_prefix(self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.iter().skip_while(move |(k, _)| *k < prefix).take_while(move |(k, _)| k.starts_with(prefix))
    }

    pub fn len(self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pairs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Appends `pairs` for `Pairs::new` to read: sorted by key; for a repeated
/// key the last value wins (as a map would).
pub fn put_pairs<K: AsRef<str>, V: AsRef<str>>(out: &mut String, pairs: impl IntoIterator<Item = (K, V)>) {
    let mut v: Vec<(K, V)> = pairs.into_iter().collect();
    v.reverse();
    v.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    v.dedup_by(|later, earlier| later.0.as_ref() == earlier.0.as_ref());
    out.reserve(v.iter().map(|(k, v)| 8 + k.as_ref().len() + v.as_ref().len()).sum());
    for (k, v) in &v {
        put_text(out, k.as_ref());
        put_text(out, v.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
        let mut out = String::new();
        put_pairs(&mut out, pairs);
        out
    }

    #[test]
    fn pairs_look_up_by_key_and_prefix() {
        let packed = pack([("konghq.com/headers.b", "2"), ("konghq.com/path", "/x"), ("konghq.com/headers.a", "1")]);
        let p = Pairs::new(&packed);
        assert_eq!(p.get("konghq.com/path"), Some("/x"));
        assert_eq!(p.get("konghq.com/nope"), None);
        let headers: Vec<_> = p.with_prefix("konghq.com/headers.").collect();
        assert_eq!(headers, [("konghq.com/headers.a", "1"), ("konghq.com/headers.b", "2")]);
        assert_eq!(p.keys().collect::<Vec<_>>(), ["konghq.com/headers.a", "konghq.com/headers.b", "konghq.com/path"]);
        assert!(Pairs::default().is_empty());
        let long = "é".repeat(300);
        let packed = pack([("k", long.as_str()), ("", "")]);
        assert_eq!(Pairs::new(&packed).iter().collect::<Vec<_>>(), [("", ""), ("k", long.as_str())]);
    }

    #[test]
    fn pairs_keep_the_last_value_of_a_repeated_key() {
        let packed = pack([("a", "1"), ("b", "2"), ("a", "3")]);
        let p = Pairs::new(&packed);
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("a"), Some("3"));
    }

    #[test]
    fn texts_read_back_in_order() {
        let long = ["a".repeat(63), "b".repeat(64), "c".repeat((1 << 21) + 5)];
        let mut packed = String::new();
        for t in ["one", "", &long[0], &long[1], "three", &long[2]] {
            put_text(&mut packed, t);
        }
        assert_eq!(packed.len(), (1 + 3) + 1 + (1 + 63) + (4 + 64) + (1 + 5) + (4 + (1 << 21) + 5));
        let texts = Texts::new(&packed);
        assert!(texts.iter().eq(["one", "", &long[0], &long[1], "three", &long[2]]));
        assert_eq!(texts.len(), 6);
        assert!(Texts::default().is_empty());
    }
}
