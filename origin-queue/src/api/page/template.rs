//! A page template: the operator's HTML with placeholders, checked once (on upload, and
//! again whenever it is read back) and rendered for each visitor.
//!
//! The check (`check`, and `dangers` over the whole text) walks the HTML as a browser's
//! tokenizer does (text, tags with quoted attributes, comments, raw-text elements) and
//! refuses, with every problem listed:
//! anything that would run script or load a page in the page (`<script>`, `on…=`,
//! `javascript:` URLs, frames, `<object>`, `<embed>`, `<base>`, `<meta http-equiv>`),
//! placeholders outside text (in a tag, a comment, `<style>`, `<head>`), unknown
//! placeholders, and the ids the waiting room's own elements use. Every value a
//! placeholder takes is escaped for text, so no value can leave its text.

use std::ops::Range;

/// Largest template accepted, bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Most placeholders one template may hold.
pub const MAX_PLACEHOLDERS: usize = 100;
/// Most problems listed for one template.
pub(super) const MAX_PROBLEMS: usize = 50;

/// The ids of the waiting room's own elements, which a template may not use.
pub const RESERVED_IDS: [&str; 15] = [
    "wr-waiting-room",
    "wr-data",
    "title",
    "intro",
    "position-label",
    "position",
    "eta-label",
    "eta",
    "progress",
    "progress-fill",
    "confidence",
    "message",
    "retry",
    "rejoin",
    "pow-solver",
];

/// A placeholder of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// `{{waiting_room}}` (required, once): the live status block.
    WaitingRoom,
    /// `{{title}}`: the page's title in the visitor's language (text).
    Title,
    /// `{{event}}`: the event id (text).
    Event,
    /// `{{place}}`: the visitor's place, kept up to date (an element).
    Place,
    /// `{{wait}}`: the estimated wait, kept up to date (an element).
    Wait,
    /// `{{state}}`: where the visitor stands, in a word or two (an element).
    State,
}

impl Placeholder {
    /// Every placeholder.
    pub const ALL: [Placeholder; 6] = [
        Placeholder::WaitingRoom,
        Placeholder::Title,
        Placeholder::Event,
        Placeholder::Place,
        Placeholder::Wait,
        Placeholder::State,
    ];

    /// Its name between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::WaitingRoom => "waiting_room",
            Placeholder::Title => "title",
            Placeholder::Event => "event",
            Placeholder::Place => "place",
            Placeholder::Wait => "wait",
            Placeholder::State => "state",
        }
    }

    pub(super) fn named(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }

    /// True if it becomes elements (so it goes only in the body's text).
    pub(super) fn is_element(self) -> bool {
        !matches!(self, Placeholder::Title | Placeholder::Event)
    }
}

/// A part of a checked template.
#[derive(Debug)]
pub(super) enum Piece {
    /// The operator's HTML, as written (a range of the source).
    Html(Range<usize>),
    /// A placeholder.
    Slot(Placeholder),
    /// ` lang="…"`, inserted in the `<html>` tag.
    Lang,
}

/// A checked template, ready to render.
#[derive(Debug)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// What the placeholders of one page stand for.
pub struct Values<'a> {
    /// The visitor's language tag (`<html lang>`).
    pub lang: &'a str,
    /// The page title, in that language.
    pub title: &'a str,
    /// The event id.
    pub event: &'a str,
    /// The live status block: the waiting room's own HTML, inserted as is.
    pub waiting_room: &'a str,
    /// The first text of `{{place}}`, `{{wait}}` and `{{state}}` (before the script runs).
    pub place: &'a str,
    /// See `place`.
    pub wait: &'a str,
    /// See `place`.
    pub state: &'a str,
}

/// `text` escaped for HTML text and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Template {
    /// Checks an uploaded body: UTF-8, at most [`MAX_TEMPLATE_BYTES`], and the rules of
    /// [`Template::parse`].
    pub fn check_upload(body: &[u8]) -> Result<Template, Vec<String>> {
        if body.len() > MAX_TEMPLATE_BYTES {
            return Err(vec![format!(
                "the template is {} bytes; the most is {MAX_TEMPLATE_BYTES}",
                body.len()
            )]);
        }
        let text = std::str::from_utf8(body).map_err(|e| {
            vec![format!(
                "the template is not UTF-8 (byte {} is not)",
                e.valid_up_to()
            )]
        })?;
        Template::parse(text)
    }

    /// Checks `html`; every problem found, each with its line, if it is refused.
    pub fn parse(html: &str) -> Result<Template, Vec<String>> {
        let pieces = super::check::check(html)?;
        Ok(Template {
            source: html.to_owned(),
            pieces,
        })
    }

    /// The operator's HTML, as stored.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The page for `values`.
    pub fn render(&self, values: &Values<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + values.waiting_room.len() + 256);
        for piece in &self.pieces {
            match piece {
                Piece::Html(range) => out.push_str(self.source.get(range.clone()).unwrap_or("")),
                Piece::Lang => {
                    out.push_str(" lang=\"");
                    out.push_str(&escape(values.lang));
                    out.push('"');
                }
                Piece::Slot(p) => match p {
                    Placeholder::WaitingRoom => out.push_str(values.waiting_room),
                    Placeholder::Title => out.push_str(&escape(values.title)),
                    Placeholder::Event => out.push_str(&escape(values.event)),
                    Placeholder::Place | Placeholder::Wait | Placeholder::State => {
                        let text = match p {
                            Placeholder::Place => values.place,
                            Placeholder::Wait => values.wait,
                            _ => values.state,
                        };
                        out.push_str("<span data-wr=\"");
                        out.push_str(p.name());
                        out.push_str("\">");
                        out.push_str(&escape(text));
                        out.push_str("</span>");
                    }
                },
            }
        }
        out
    }
}
