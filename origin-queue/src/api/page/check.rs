//! The walk over a template that checks it (see `template`): text, tags with quoted
//! attributes, comments and raw-text elements, as a browser's tokenizer reads them;
//! placeholders in their contexts; the structure; and, over everything, `dangers`.

use super::dangers::{dangers, refused};
use super::scan::{self, line_of, normalized, placeholders};
use super::template::{Piece, Placeholder, MAX_PLACEHOLDERS, MAX_PROBLEMS, RESERVED_IDS};

/// The pieces of `html` if it passes; every problem found, each with its line, if not.
pub fn check(html: &str) -> Result<Vec<Piece>, Vec<String>> {
    let mut checker = Checker::new(html);
    checker.run();
    checker.finish()
}

/// Elements whose content is text up to their end tag (in HTML, not in SVG or MathML).
fn raw_text(name: &str) -> bool {
    matches!(
        name,
        "style"
            | "title"
            | "textarea"
            | "script"
            | "iframe"
            | "noscript"
            | "noembed"
            | "noframes"
            | "xmp"
    )
}

/// The walk over one template.
struct Checker<'a> {
    src: &'a str,
    /// Each problem with its line (0: the whole template).
    problems: Vec<(usize, String)>,
    pieces: Vec<Piece>,
    /// Where the operator's HTML not yet in `pieces` starts.
    html_from: usize,
    in_body: bool,
    /// Depth of open `<svg>` / `<math>` elements.
    foreign: u32,
    html_tags: u32,
    body_tags: u32,
    waiting_rooms: u32,
    placeholders: usize,
}

impl<'a> Checker<'a> {
    fn new(src: &'a str) -> Self {
        Checker {
            src,
            problems: Vec::new(),
            pieces: Vec::new(),
            html_from: 0,
            in_body: false,
            foreign: 0,
            html_tags: 0,
            body_tags: 0,
            waiting_rooms: 0,
            placeholders: 0,
        }
    }

    fn problem(&mut self, at: usize, what: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push((line_of(self.src, at), what));
        }
    }

    /// A problem of the whole template (no line).
    fn whole(&mut self, what: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push((0, what));
        }
    }

    fn run(&mut self) {
        let start = self
            .src
            .trim_start_matches(['\u{feff}', ' ', '\t', '\n', '\r']);
        if !start
            .get(..14)
            .is_some_and(|s| s.eq_ignore_ascii_case("<!doctype html"))
        {
            self.whole("the template must begin with <!doctype html>".into());
        }
        for (at, what) in dangers(self.src) {
            self.problem(at, what);
        }
        let mut i = 0;
        while i < self.src.len() && self.problems.len() < MAX_PROBLEMS {
            let rest = &self.src[i..];
            let next = rest.as_bytes().get(1).copied().unwrap_or(0);
            let after = rest.as_bytes().get(2).copied().unwrap_or(0);
            let step = if rest.starts_with("<!--") {
                self.markup(i, comment_len(rest), "a comment")
            } else if rest.starts_with('<')
                && (next.is_ascii_alphabetic() || (next == b'/' && after.is_ascii_alphabetic()))
            {
                self.tag(i)
            } else if rest.starts_with("<!") || rest.starts_with("<?") || rest.starts_with("</") {
                self.markup(i, rest.find('>').map(|e| e + 1), "a declaration")
            } else {
                let first = rest.chars().next().map_or(1, char::len_utf8);
                let len = rest
                    .get(first..)
                    .and_then(|r| r.find('<'))
                    .map_or(rest.len(), |e| e + first);
                self.text(i, len, false);
                Some(len)
            };
            match step {
                Some(len) => i += len,
                None => break,
            }
        }
    }

    /// A comment or declaration of `len` bytes at `at` (`None`: it never closes).
    fn markup(&mut self, at: usize, len: Option<usize>, what: &str) -> Option<usize> {
        let Some(len) = len else {
            self.problem(at, format!("{what} that never closes"));
            return None;
        };
        self.no_placeholders(at, len, &format!("inside {what}"));
        Some(len)
    }

    /// Refuses every placeholder in `len` bytes at `at`.
    fn no_placeholders(&mut self, at: usize, len: usize, context: &str) {
        let region = self.src.get(at..at + len).unwrap_or("");
        for found in placeholders(region) {
            self.problem(
                at + found.start,
                format!(
                    "{{{{{}}}}} is {context}: placeholders go in the page's text only",
                    found.name
                ),
            );
        }
    }

    /// Text of `len` bytes at `at`; `in_title`: inside `<title>`.
    fn text(&mut self, at: usize, len: usize, in_title: bool) {
        let region = self.src.get(at..at + len).unwrap_or("");
        for found in placeholders(region) {
            let where_ = at + found.start;
            let Some(p) = Placeholder::named(found.name) else {
                let known: Vec<String> = Placeholder::ALL
                    .iter()
                    .map(|p| format!("{{{{{}}}}}", p.name()))
                    .collect();
                self.problem(
                    where_,
                    format!(
                        "unknown placeholder {{{{{}}}}} (known: {})",
                        found.name,
                        known.join(", ")
                    ),
                );
                continue;
            };
            let refusal = if in_title && p.is_element() {
                Some("cannot go in <title> (only {{title}} and {{event}} can)")
            } else if !in_title && !self.in_body {
                Some("must be inside <body>")
            } else if self.foreign > 0 {
                Some("cannot go inside <svg> or <math>")
            } else {
                None
            };
            if let Some(why) = refusal {
                self.problem(where_, format!("{{{{{}}}}} {why}", p.name()));
                continue;
            }
            self.placeholders += 1;
            if p == Placeholder::WaitingRoom {
                self.waiting_rooms += 1;
            }
            self.pieces.push(Piece::Html(self.html_from..where_));
            self.pieces.push(Piece::Slot(p));
            self.html_from = at + found.end;
        }
    }

    /// A tag at `at`, and the content of a raw-text element it opens.
    fn tag(&mut self, at: usize) -> Option<usize> {
        let Some(tag) = scan::tag(&self.src[at..]) else {
            self.problem(at, "a tag that never closes (check its quotes)".into());
            return None;
        };
        self.no_placeholders(at, tag.len, &format!("inside the tag <{}>", tag.name));
        if tag.end {
            if matches!(tag.name.as_str(), "svg" | "math") {
                self.foreign = self.foreign.saturating_sub(1);
            }
            return Some(tag.len);
        }
        self.start_tag(at, &tag);
        if self.foreign > 0 || !raw_text(&tag.name) {
            return Some(tag.len);
        }
        let content = at + tag.len;
        let Some(close) = scan::find_end_tag(&self.src[content..], &tag.name) else {
            self.problem(at, format!("<{}> never closes", tag.name));
            return None;
        };
        if tag.name == "title" {
            self.text(content, close, true);
        } else if refused(&tag.name).is_none() {
            self.no_placeholders(content, close, &format!("inside <{}>", tag.name));
            let text = normalized(self.src.get(content..content + close).unwrap_or(""));
            if tag.name == "style" && (text.contains("javascript:") || text.contains("expression("))
            {
                self.problem(content, "a style with javascript: or expression()".into());
            }
        }
        Some(tag.len + close)
    }

    /// The rules of a start tag that depend on where it is (its dangers are `dangers`').
    fn start_tag(&mut self, at: usize, tag: &scan::Tag<'_>) {
        let name = tag.name.as_str();
        match name {
            "html" => {
                self.html_tags += 1;
                if self.html_tags == 1 {
                    self.pieces
                        .push(Piece::Html(self.html_from..at + tag.name_end));
                    self.pieces.push(Piece::Lang);
                    self.html_from = at + tag.name_end;
                }
            }
            "body" => {
                self.body_tags += 1;
                self.in_body = true;
            }
            "svg" | "math" if !tag.self_closing => self.foreign += 1,
            _ => {}
        }
        for attribute in &tag.attributes {
            let attr = attribute.name.as_str();
            if name == "html" && attr == "lang" {
                self.problem(
                    at,
                    "<html lang> is set by the waiting room (the visitor's language): remove it"
                        .into(),
                );
            }
            if attr == "id" && attribute.value.contains('&') {
                // A character reference would hide a reserved id from the check below.
                self.problem(
                    at,
                    "an id may not hold character references (&…;): write it plainly".into(),
                );
            }
            if attr == "id" && RESERVED_IDS.contains(&attribute.value) {
                self.problem(
                    at,
                    format!(
                        "id=\"{}\" is the waiting room's own: use another id",
                        attribute.value
                    ),
                );
            }
        }
    }

    fn finish(mut self) -> Result<Vec<Piece>, Vec<String>> {
        if self.html_tags != 1 {
            self.whole(format!(
                "the template needs exactly one <html> tag (found {})",
                self.html_tags
            ));
        }
        if self.body_tags != 1 {
            self.whole(format!(
                "the template needs exactly one <body> tag (found {})",
                self.body_tags
            ));
        }
        if self.waiting_rooms != 1 {
            self.whole(format!(
                "{{{{waiting_room}}}} must appear exactly once, in the body (found {})",
                self.waiting_rooms
            ));
        }
        if self.placeholders > MAX_PLACEHOLDERS {
            self.whole(format!(
                "{} placeholders; the most is {MAX_PLACEHOLDERS}",
                self.placeholders
            ));
        }
        if !self.problems.is_empty() {
            self.problems.sort_by_key(|(line, _)| *line);
            self.problems.dedup();
            return Err(self
                .problems
                .into_iter()
                .map(|(line, what)| match line {
                    0 => what,
                    line => format!("line {line}: {what}"),
                })
                .collect());
        }
        self.pieces
            .push(Piece::Html(self.html_from..self.src.len()));
        Ok(self.pieces)
    }
}

/// Bytes of the comment at the start of `rest` (`<!--`), up to its `-->` or `--!>` (as a
/// browser ends it), or `None` if it never closes.
fn comment_len(rest: &str) -> Option<usize> {
    let body = rest.get(2..)?;
    let plain = body.find("-->").map(|e| e + 5);
    let bang = body.find("--!>").map(|e| e + 6);
    match (plain, bang) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
