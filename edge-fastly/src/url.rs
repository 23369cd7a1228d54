//! The path of the URL the host hands over, as the client sent it.

/// The path and query of an absolute URL (`scheme://authority/path?query`), unchanged
/// (no segment resolved, no escape decoded); a URL with nothing after its authority has
/// the path `/`. `None` if `url` is not absolute.
pub fn path_of(url: &str) -> Option<String> {
    let after_scheme = &url[url.find("://")? + 3..];
    let path = match after_scheme.find(['/', '?', '#']) {
        None => "/".to_owned(),
        Some(at) if after_scheme[at..].starts_with('/') => after_scheme[at..].to_owned(),
        Some(at) => format!("/{}", &after_scheme[at..]),
    };
    // A fragment never reaches a server; drop one if a host kept it.
    Some(path.split('#').next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn the_path_is_kept_as_sent() {
        let path = |url| path_of(url).unwrap();
        assert_eq!(
            path("http://shop.example/reserve/seat?x=1"),
            "/reserve/seat?x=1"
        );
        assert_eq!(path("http://127.0.0.1:7676/a/../reserve"), "/a/../reserve");
        assert_eq!(
            path("https://shop.example/%2e%2e/reserve"),
            "/%2e%2e/reserve"
        );
        assert_eq!(path("http://shop.example"), "/");
        assert_eq!(path("http://shop.example?q"), "/?q");
        assert_eq!(path("http://shop.example/a#frag"), "/a");
        assert_eq!(path_of("/no/scheme"), None);
    }
}
