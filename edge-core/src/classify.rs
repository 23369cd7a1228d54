//! Which class a request path belongs to.
//!
//! The longest matching prefix wins, whichever list it is in; paths that match no
//! prefix are left alone (bypass). Matching is deliberately lopsided, because a false
//! "protected" costs a visitor one redirect and a false "bypass" costs the event:
//!
//! * **protected** prefixes match loosely, on the path's canonical form (decoded,
//!   without `;params`, without case unless the event says otherwise), segment by
//!   segment, so that no spelling a backend might route to a protected resource gets
//!   past (see [`crate::path`]);
//! * **queue** and **bypass** prefixes match strictly, on the path exactly as Envoy
//!   routes it: a prefix ending in `/` matches everything under it, any other prefix
//!   matches itself and everything under `prefix/`. A different spelling of a bypass
//!   path is therefore never bypassed, only protected or left alone.
//!
//! On a tie, protected wins. Paths that are not in normal form, or whose canonical
//! form cannot be read safely, are refused (400): a backend that normalizes differently
//! could otherwise be reached around a protected prefix. Envoy's `normalize_path` /
//! `merge_slashes` make this refusal unreachable for honest clients.

use crate::config::{Config, EventConfig};
use crate::path::{canonical, fold_case, is_normal_path};

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
    let Some(canonical) = canonical(path) else {
        return PathClass::NotNormalized;
    };
    let mut folded: Option<std::borrow::Cow<[u8]>> = None;
    let mut best: (usize, PathClass<'c>) = (0, PathClass::Bypass);
    for event in &config.events {
        for prefix in &event.protected_prefixes {
            let compared = if prefix.case_sensitive() {
                &canonical
            } else {
                folded.get_or_insert_with(|| fold_case(&canonical))
            };
            let len = prefix.written.len();
            if len > best.0 && prefix.matches(compared) {
                best = (len, PathClass::Protected(event));
            }
        }
    }
    let strict = [
        (&config.queue_prefixes, PathClass::Queue),
        (&config.bypass_prefixes, PathClass::Bypass),
    ];
    for (prefixes, class) in strict {
        let longest = prefixes
            .iter()
            .filter(|p| strict_prefix_matches(p.as_bytes(), path))
            .map(String::len)
            .max();
        if let Some(len) = longest.filter(|len| *len > best.0) {
            best = (len, class);
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

fn strict_prefix_matches(prefix: &[u8], path: &[u8]) -> bool {
    if !path.starts_with(prefix) {
        return false;
    }
    prefix.ends_with(b"/") || path.len() == prefix.len() || path[prefix.len()] == b'/'
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

    /// The shared table of spellings (`conformance/vectors.json`, also run through every
    /// runtime).
    #[test]
    fn every_spelling_gets_its_class() {
        let config = crate::conformance::config_at(1_800_000_000).to_string();
        let c = Config::from_json(config.as_bytes()).unwrap();
        let paths = crate::conformance::paths();
        assert!(paths.len() >= 40);
        for (path, want, why) in paths {
            assert_eq!(class(&c, &path), want, "{path} ({why})");
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
