//! Which class a request path belongs to.
//!
//! The longest matching prefix wins, whichever list it is in; paths that match no
//! prefix are left alone (bypass). A prefix ending in `/` matches everything under it;
//! any other prefix matches itself exactly and everything under `prefix/`, so
//! `/reserve` protects `/reserve` and `/reserve/1` but not `/reserved`.
//!
//! Paths that are not in normal form (`//`, `.` or `..` segments, encoded dots or
//! slashes, backslashes, non-printable bytes) are refused: a backend that normalizes
//! differently could otherwise be reached around a protected prefix. Envoy's
//! `normalize_path` / `merge_slashes` make this refusal unreachable for honest clients.

use crate::config::{Config, EventConfig};

/// The class of a request path.
#[derive(Debug, PartialEq, Eq)]
pub enum PathClass<'c> {
    /// Not the filter's business: forwarded untouched (identity headers still removed).
    Bypass,
    /// origin-queue's API or page: forwarded under the queue cap.
    Queue,
    /// Needs a valid pass for this event.
    Protected(&'c EventConfig),
    /// Refused: not in normal form.
    NotNormalized,
}

/// Classifies `path` (the `:path` header: path and optional query).
pub fn classify<'c>(config: &'c Config, path: &[u8]) -> PathClass<'c> {
    let path = path_only(path);
    if !is_normal_path(path) {
        return PathClass::NotNormalized;
    }
    let mut best: (usize, PathClass<'c>) = (0, PathClass::Bypass);
    let mut consider = |prefix: &str, class: PathClass<'c>| {
        if prefix.len() > best.0 && prefix_matches(prefix.as_bytes(), path) {
            best = (prefix.len(), class);
        }
    };
    for p in &config.bypass_prefixes {
        consider(p, PathClass::Bypass);
    }
    for p in &config.queue_prefixes {
        consider(p, PathClass::Queue);
    }
    for event in &config.events {
        for p in &event.protected_prefixes {
            consider(p, PathClass::Protected(event));
        }
    }
    best.1
}

/// The path without its query string.
pub fn path_only(path: &[u8]) -> &[u8] {
    match path.iter().position(|&b| b == b'?') {
        Some(i) => &path[..i],
        None => path,
    }
}

fn prefix_matches(prefix: &[u8], path: &[u8]) -> bool {
    if !path.starts_with(prefix) {
        return false;
    }
    prefix.ends_with(b"/") || path.len() == prefix.len() || path[prefix.len()] == b'/'
}

/// True if `path` (without query) starts with `/`, has only printable ASCII, no empty,
/// `.` or `..` segments (except a trailing `/`), no backslash and no percent-encoded
/// `.`, `/` or `\`.
pub fn is_normal_path(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') || path.len() > 8192 {
        return false;
    }
    if path
        .iter()
        .any(|&b| !b.is_ascii_graphic() || b == b'\\' || b == b'#')
    {
        return false;
    }
    for window in path.windows(3) {
        if window[0] == b'%' {
            let encoded = [
                window[1].to_ascii_lowercase(),
                window[2].to_ascii_lowercase(),
            ];
            if matches!(&encoded, b"2e" | b"2f" | b"5c") {
                return false;
            }
        }
    }
    let segments = path[1..].split(|&b| b == b'/');
    let count = path[1..].split(|&b| b == b'/').count();
    for (i, segment) in segments.enumerate() {
        let last = i + 1 == count;
        if (segment.is_empty() && !last) || segment == b"." || segment == b".." {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::KEYS;

    fn config() -> Config {
        let text = format!(
            r#"{{"keys":{KEYS},
                "events":[{{"id":"concert","protected_prefixes":["/reserve","/api/"]}},
                          {{"id":"other","protected_prefixes":["/api/other"]}}],
                "bypass_prefixes":["/api/public/","/reserve/static"]}}"#
        );
        Config::from_json(text.as_bytes()).unwrap()
    }

    fn class(c: &Config, path: &str) -> String {
        match classify(c, path.as_bytes()) {
            PathClass::Protected(e) => format!("protected:{}", e.id),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let c = config();
        for (path, want) in [
            ("/reserve", "protected:concert"),
            ("/reserve?x=1", "protected:concert"),
            ("/reserve/1", "protected:concert"),
            ("/reserved", "Bypass"),
            ("/reserve/static/a.css", "Bypass"),
            ("/api/x", "protected:concert"),
            ("/api/other/1", "protected:other"),
            ("/api/otherwise", "protected:concert"),
            ("/api/public/x", "Bypass"),
            ("/v1/events/concert/join", "Queue"),
            ("/waiting-room/concert", "Queue"),
            ("/", "Bypass"),
        ] {
            assert_eq!(class(&c, path), want, "{path}");
        }
    }

    #[test]
    fn tricks_are_refused() {
        let c = config();
        for path in [
            "",
            "reserve",
            "//reserve",
            "/reserve/../x",
            "/x/../reserve",
            "/./reserve",
            "/%2e%2e/reserve",
            "/reserve%2Fa",
            "/a\\reserve",
            "/res erve",
            "/reserve/.",
            "/a//b",
        ] {
            assert_eq!(class(&c, path), "NotNormalized", "{path:?}");
        }
        assert_eq!(classify(&c, b"/reserve\xff"), PathClass::NotNormalized);
        // A trailing slash is normal; query strings may hold anything printable.
        assert_eq!(class(&c, "/reserve/"), "protected:concert");
        assert_eq!(class(&c, "/reserve?next=//x/../y"), "protected:concert");
    }
}
