//! The pieces of HTML tokenizing the template check needs, after the HTML standard's
//! tokenizer: a tag's name and attributes (quotes respected), placeholders found in
//! text, and the characters an attribute value stands for (character references).
//! Nothing here allocates more than the input's size, and nothing panics on any input.

/// One attribute of a tag: its name (lowercase) and raw value (character references not
/// decoded).
#[derive(Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The name, lowercase.
    pub name: String,
    /// The value as written (empty for a bare attribute).
    pub value: &'a str,
}

/// A start or end tag.
#[derive(Debug)]
pub struct Tag<'a> {
    /// The tag name, lowercase.
    pub name: String,
    /// True for `</name …>`.
    pub end: bool,
    /// True for `<name … />`.
    pub self_closing: bool,
    /// The attributes, in order.
    pub attributes: Vec<Attribute<'a>>,
    /// Bytes from `<` to the byte after `>`.
    pub len: usize,
    /// Bytes from `<` to the end of the name (where an attribute can be inserted).
    pub name_end: usize,
}

/// The tag at the start of `input` (which starts with `<` followed by an ASCII letter,
/// or `</` and one), or `None` if it never closes.
pub fn tag(input: &str) -> Option<Tag<'_>> {
    let bytes = input.as_bytes();
    let end = bytes.get(1) == Some(&b'/');
    let mut i = if end { 2 } else { 1 };
    let name_start = i;
    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'/' && bytes[i] != b'>' {
        i += 1;
    }
    let name = input.get(name_start..i)?.to_ascii_lowercase();
    let name_end = i;
    let mut attributes = Vec::new();
    let mut self_closing = false;
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            self_closing = bytes[i] == b'/';
            i += 1;
        }
        match bytes.get(i) {
            None => return None,
            Some(b'>') => {
                return Some(Tag {
                    name,
                    end,
                    self_closing,
                    attributes,
                    len: i + 1,
                    name_end,
                })
            }
            Some(_) => self_closing = false,
        }
        // An attribute name: up to space, `/`, `>` or `=` (a leading `=` is part of it).
        let start = i;
        i += 1;
        while i < bytes.len() && !matches!(bytes[i], b'/' | b'>' | b'=') && !is_space(bytes[i]) {
            i += 1;
        }
        let attr_name = input.get(start..i)?.to_ascii_lowercase();
        let mut j = i;
        while j < bytes.len() && is_space(bytes[j]) {
            j += 1;
        }
        let mut value = "";
        if bytes.get(j) == Some(&b'=') {
            j += 1;
            while j < bytes.len() && is_space(bytes[j]) {
                j += 1;
            }
            match bytes.get(j) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let close = bytes[j + 1..].iter().position(|b| *b == quote)?;
                    value = input.get(j + 1..j + 1 + close)?;
                    i = j + close + 2;
                }
                _ => {
                    let start = j;
                    while j < bytes.len() && !is_space(bytes[j]) && bytes[j] != b'>' {
                        j += 1;
                    }
                    value = input.get(start..j)?;
                    i = j;
                }
            }
        }
        attributes.push(Attribute {
            name: attr_name,
            value,
        });
    }
}

/// ASCII whitespace as HTML counts it.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// A `{{name}}` found in text: its name and byte range.
#[derive(Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// What is between the braces, trimmed.
    pub name: &'a str,
    /// Where `{{` starts.
    pub start: usize,
    /// The byte after `}}`.
    pub end: usize,
}

/// Every `{{name}}` of `text` (name: 1 to 40 of `[A-Za-z0-9_.:-]`, spaces around it
/// allowed); a `{{` not followed by that is text.
pub fn placeholders(text: &str) -> Vec<Found<'_>> {
    /// The most bytes between `{{` and `}}`: a name of 40 and spaces around it.
    const MAX_INNER: usize = 128;
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text.get(from..).and_then(|rest| rest.find("{{")) {
        let start = from + at;
        let inner_start = start + 2;
        // A name is short: look for its `}}` only nearby, so that text full of `{{`
        // costs linear time, not quadratic.
        let window = text
            .get(inner_start..(inner_start + MAX_INNER).min(text.len()))
            .or_else(|| text.get(inner_start..))
            .unwrap_or("");
        let Some(close) = window.find("}}") else {
            from = start + 1;
            continue;
        };
        let inner = text.get(inner_start..inner_start + close).unwrap_or("");
        let name = inner.trim_matches(' ');
        let valid = (1..=40).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if valid {
            let end = inner_start + close + 2;
            found.push(Found { name, start, end });
            from = end;
        } else {
            from = start + 1;
        }
    }
    found
}

/// `value` as a URL scheme check sees it: character references decoded (named ones
/// other than `&colon;`, `&Tab;` and `&NewLine;` dropped, which can only hide more),
/// then every ASCII space and control character removed, lowercase.
pub fn normalized(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let (decoded, used) = reference(rest);
        if let Some(c) = decoded {
            out.push(c);
        }
        rest = rest.get(used..).unwrap_or("");
    }
    out.push_str(rest);
    out.chars()
        .filter(|c| !(c.is_ascii_whitespace() || c.is_control()))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The character a reference stands for (the text after `&`), and the bytes it used;
/// `None` for a named reference not known here (dropped).
fn reference(rest: &str) -> (Option<char>, usize) {
    let bytes = rest.as_bytes();
    if bytes.first() == Some(&b'#') {
        let hex = matches!(bytes.get(1), Some(b'x' | b'X'));
        let digits_start = if hex { 2 } else { 1 };
        let mut i = digits_start;
        while i < bytes.len()
            && (if hex {
                bytes[i].is_ascii_hexdigit()
            } else {
                bytes[i].is_ascii_digit()
            })
        {
            i += 1;
        }
        // Leading zeros count for nothing (`&#0000106;` is `j`); a value beyond
        // Unicode, or none, is U+FFFD, as a browser reads it.
        let digits = rest
            .get(digits_start..i)
            .unwrap_or("")
            .trim_start_matches('0');
        let code = match digits.len() {
            0 if i > digits_start => Some(0),
            1..=8 => u32::from_str_radix(digits, if hex { 16 } else { 10 }).ok(),
            _ => None,
        };
        let used = i + usize::from(bytes.get(i) == Some(&b';'));
        if i == digits_start {
            return (None, 0);
        }
        let c = code
            .and_then(char::from_u32)
            .filter(|c| *c != '\0')
            .unwrap_or('\u{FFFD}');
        return (Some(c), used);
    }
    let mut i = 0;
    while i < bytes.len() && i < 32 && bytes[i].is_ascii_alphanumeric() {
        i += 1;
    }
    let name = &rest[..i];
    let used = i + usize::from(bytes.get(i) == Some(&b';'));
    let c = match name {
        "colon" => Some(':'),
        "Tab" => Some('\t'),
        "NewLine" => Some('\n'),
        "amp" => Some('&'),
        "" => Some('&'),
        _ => None,
    };
    (c, used)
}

/// Bytes of `content` before the end tag `</name` (any case) of a raw-text element, or
/// `None` if it has none. Linear in `content`.
pub fn find_end_tag(content: &str, name: &str) -> Option<usize> {
    let bytes = content.as_bytes();
    let mut from = 0;
    while let Some(at) = content.get(from..)?.find("</") {
        let start = from + at;
        let name_end = start + 2 + name.len();
        let matches = bytes
            .get(start + 2..name_end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        let ends = matches!(
            bytes.get(name_end),
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>')
        );
        if matches && ends {
            return Some(start);
        }
        from = start + 2;
    }
    None
}

/// The 1-based line of byte `at` in `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    1 + text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_read_with_its_quoted_attributes() {
        let t = tag("<a HREF='x>y' title=\"a b\" hidden data-x=1>rest").unwrap();
        assert_eq!(t.name, "a");
        assert_eq!(
            &"<a HREF='x>y' title=\"a b\" hidden data-x=1>rest"[..t.len],
            "<a HREF='x>y' title=\"a b\" hidden data-x=1>"
        );
        let names: Vec<_> = t
            .attributes
            .iter()
            .map(|a| (a.name.as_str(), a.value))
            .collect();
        assert_eq!(
            names,
            [
                ("href", "x>y"),
                ("title", "a b"),
                ("hidden", ""),
                ("data-x", "1")
            ]
        );
        assert!(tag("<a href='never closed>").is_none());
        assert!(tag("<img src=x").is_none());
        assert!(tag("<br/>").unwrap().self_closing);
        assert!(tag("</p>").unwrap().end);
    }

    #[test]
    fn placeholders_are_found_and_other_braces_are_text() {
        let found = placeholders("a {{place}} b {{ wait }} {{not a name}} {{x");
        let names: Vec<_> = found.iter().map(|f| f.name).collect();
        assert_eq!(names, ["place", "wait"]);
        assert_eq!(&"a {{place}}"[found[0].start..found[0].end], "{{place}}");
    }

    #[test]
    fn references_and_spaces_cannot_hide_a_scheme() {
        for hidden in [
            "javascript:x",
            "JaVaScRiPt:x",
            " java\tscript:x",
            "jav&#x61;script:x",
            "jav&#97script:x",
            "javascript&colon;x",
            "java&Tab;script:x",
            "java&shy;script:x",
            "&#x6a;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3a;",
        ] {
            assert!(normalized(hidden).contains("javascript:"), "{hidden}");
        }
        assert_eq!(
            normalized("https://a.example/?a=1&amp;b=2"),
            "https://a.example/?a=1&b=2"
        );
        // Out of range, or zero: U+FFFD, as a browser reads them.
        assert_eq!(normalized("&#xFFFFFFFFFF;&#0;&"), "\u{FFFD}\u{FFFD}&");
        assert!(normalized("&#0000000106;avascript:").contains("javascript:"));
    }
}
