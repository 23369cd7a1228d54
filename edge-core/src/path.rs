//! Request paths as the backends behind the edge might read them.
//!
//! Backends disagree on what a path names: servlet containers and Spring drop `;params`
//! from segments, many servers decode percent-escapes (some twice), match without case,
//! or ignore a suffix extension (`/reserve.json`) or trailing dots and spaces. A path
//! that one of them routes to a protected resource must be protected here too, however
//! it is spelled. So protected prefixes are matched against a **canonical form** that
//! undoes every one of those spellings, and a prefix segment matches any path segment
//! that *begins* with it and does not go on as a longer name (see [`ProtectedPrefix`]).
//!
//! Paths whose spelling cannot be read safely are refused instead ([`canonical`] gives
//! `None`): malformed escapes, escapes still left after three rounds of decoding, and
//! anything that decodes to control bytes, backslashes, empty segments or `.`/`..`
//! segments (a backend would resolve those differently from the filter).

use std::borrow::Cow;

/// Rounds of percent-decoding after the first, for backends that decode more than once.
const EXTRA_DECODE_ROUNDS: usize = 3;

/// The canonical form of a path (without query) that is already in normal form
/// ([`is_normal_path`]): percent-decoded until no escape is left (at most four rounds),
/// with every segment's `;params` removed. `None` if the path must be refused. A path
/// with neither escapes nor parameters (the common case) is its own canonical form.
pub fn canonical(path: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !path.iter().any(|&b| b == b'%' || b == b';') {
        return Some(Cow::Borrowed(path));
    }
    let mut decoded = decode(path, true)?;
    for _ in 0..EXTRA_DECODE_ROUNDS {
        if !has_escape(&decoded) {
            break;
        }
        decoded = decode(&decoded, false)?;
    }
    if has_escape(&decoded) || decoded.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(decoded.len());
    let segments: Vec<&[u8]> = decoded.get(1..)?.split(|&b| b == b'/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let name = match segment.iter().position(|&b| b == b';') {
            Some(at) => &segment[..at],
            None => segment,
        };
        let last = i + 1 == segments.len();
        if (name.is_empty() && !last) || name == b"." || name == b".." {
            return None;
        }
        out.push(b'/');
        out.extend_from_slice(name);
    }
    Some(Cow::Owned(out))
}

/// True if `bytes` holds a `%` followed by two hex digits.
fn has_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// Decodes `%XX` escapes. With `strict`, a `%` not followed by two hex digits makes the
/// whole path unreadable (`None`); otherwise it is kept as a literal `%` (it came from
/// a decoded `%25`).
fn decode(bytes: &[u8], strict: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            match bytes.get(i + 1..i + 3) {
                Some(&[high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    out.push(hex_value(high) << 4 | hex_value(low));
                    i += 3;
                    continue;
                }
                _ if strict => return None,
                _ => {}
            }
        }
        out.push(b);
        i += 1;
    }
    Some(out)
}

/// The value of a hex digit (0 for anything else; callers check first).
fn hex_value(digit: u8) -> u8 {
    char::from(digit).to_digit(16).unwrap_or(0) as u8
}

/// True if `path` (without query) starts with `/`, has only printable ASCII, no empty,
/// `.` or `..` segments (except a trailing `/`), no backslash and no percent-encoded
/// `.`, `/` or `\`.
pub fn is_normal_path(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') || path.len() > 8192 {
        return false;
    }
    // One pass: it runs on every request.
    let dot_segment = |segment: &[u8]| segment == b"." || segment == b"..";
    let mut segment_start = 1;
    for (i, &b) in path.iter().enumerate() {
        if !b.is_ascii_graphic() || b == b'\\' || b == b'#' {
            return false;
        }
        if b == b'%' {
            if let (Some(hi), Some(lo)) = (path.get(i + 1), path.get(i + 2)) {
                let encoded = [hi.to_ascii_lowercase(), lo.to_ascii_lowercase()];
                if matches!(&encoded, b"2e" | b"2f" | b"5c") {
                    return false;
                }
            }
        }
        if b == b'/' && i > 0 {
            let segment = &path[segment_start..i];
            if segment.is_empty() || dot_segment(segment) {
                return false;
            }
            segment_start = i + 1;
        }
    }
    // The last segment may be empty (a trailing `/`).
    !dot_segment(&path[segment_start..])
}

/// Folds what a case-insensitive backend may treat as the same letter: ASCII case,
/// the Unicode letters whose case mapping lands in ASCII (`ſ` → s, Kelvin `K` → k,
/// `ı` and `İ` → i), and fullwidth letters and digits (`Ｒ` → r). A path without
/// upper-case or non-ASCII letters is its own folded form.
pub fn fold_case(path: &[u8]) -> Cow<'_, [u8]> {
    if path.iter().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let (folded, used) = match path[i..] {
            [b, ..] if b.is_ascii() => (Some(b.to_ascii_lowercase()), 1),
            [0xC5, 0xBF, ..] => (Some(b's'), 2),
            [0xC4, 0xB0 | 0xB1, ..] => (Some(b'i'), 2),
            [0xE2, 0x84, 0xAA, ..] => (Some(b'k'), 3),
            // U+FF10..FF19 digits, U+FF21..FF3A and U+FF41..FF5A letters.
            [0xEF, 0xBC, c @ 0x90..=0x99, ..] => (Some(b'0' + (c - 0x90)), 3),
            [0xEF, 0xBC, c @ 0xA1..=0xBA, ..] => (Some(b'a' + (c - 0xA1)), 3),
            [0xEF, 0xBD, c @ 0x81..=0x9A, ..] => (Some(b'a' + (c - 0x81)), 3),
            _ => (None, 1),
        };
        match folded {
            Some(b) => out.push(b),
            None => out.push(path[i]),
        }
        i += used;
    }
    Cow::Owned(out)
}

/// Bytes that continue a name: a prefix segment followed by one of these names
/// something else (`/reserve` is not `/reserved` or `/reserve-2`).
fn continues_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A protected prefix, ready to match canonical paths.
///
/// Each segment of the prefix matches a path segment that begins with it and then ends
/// or goes on with anything but a name character (`[A-Za-z0-9_-]`): `/reserve` matches
/// `/reserve`, `/reserve/1`, `/reserve.json`, `/reserve.` and `/reserve ` (and, after
/// canonicalisation, `/reserve;x`, `/reserve%3bx`, `/RESERVE`), but not `/reserved`.
/// A trailing `/` changes nothing: `/api/` and `/api` protect the same paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedPrefix {
    /// The prefix as configured.
    pub written: String,
    segments: Vec<Vec<u8>>,
    case_sensitive: bool,
}

impl ProtectedPrefix {
    /// Prepares `written` (a valid prefix: see the configuration's checks).
    pub fn new(written: &str, case_sensitive: bool) -> ProtectedPrefix {
        let bytes = if case_sensitive {
            written.as_bytes().to_vec()
        } else {
            fold_case(written.as_bytes()).into_owned()
        };
        let segments = bytes
            .split(|&b| b == b'/')
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        ProtectedPrefix {
            written: written.to_owned(),
            segments,
            case_sensitive,
        }
    }

    /// Whether this prefix compares without case.
    pub fn case_sensitive(&self) -> bool {
        self.case_sensitive
    }

    /// The prefix's segments as compared (folded unless case-sensitive), joined by `/`.
    pub fn compared(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for segment in &self.segments {
            out.push(b'/');
            out.extend_from_slice(segment);
        }
        out
    }

    /// True if the canonical path (folded with [`fold_case`] when this prefix is not
    /// case-sensitive) is under this prefix.
    pub fn matches(&self, canonical: &[u8]) -> bool {
        let mut path = canonical.get(1..).unwrap_or_default().split(|&b| b == b'/');
        self.segments.iter().all(|want| {
            path.next().is_some_and(|segment| {
                segment.starts_with(want)
                    && segment
                        .get(want.len())
                        .is_none_or(|&next| !continues_name(next))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_normal_path` as it was first written, several passes: the one-pass version
    /// must agree with it on every input.
    fn is_normal_path_reference(path: &[u8]) -> bool {
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
        let count = path[1..].split(|&b| b == b'/').count();
        for (i, segment) in path[1..].split(|&b| b == b'/').enumerate() {
            let last = i + 1 == count;
            if (segment.is_empty() && !last) || segment == b"." || segment == b".." {
                return false;
            }
        }
        true
    }

    proptest::proptest! {
        #[test]
        fn one_pass_normal_form_check_agrees_with_the_reference(
            tail in proptest::collection::vec(
                proptest::sample::select(b"/.%2eEfF5cCa;?# \\\x7f\xff".to_vec()), 0..24),
        ) {
            let rooted = [&b"/"[..], &tail].concat();
            for path in [&tail, &rooted] {
                proptest::prop_assert_eq!(is_normal_path(path), is_normal_path_reference(path));
            }
        }
    }

    fn canon(path: &str) -> Option<String> {
        canonical(path.as_bytes()).map(|c| String::from_utf8_lossy(&c).into_owned())
    }

    #[test]
    fn canonical_undoes_escapes_and_parameters() {
        for (path, want) in [
            ("/reserve", "/reserve"),
            ("/reserve;x", "/reserve"),
            ("/reserve%3bx", "/reserve"),
            ("/reserve%3Bjsessionid=1/seat", "/reserve/seat"),
            ("/re%73erve", "/reserve"),
            ("/re%2573erve", "/reserve"),
            ("/re%252573erve", "/reserve"),
            ("/reserve%20", "/reserve "),
            ("/100%25", "/100%"),
            ("/caf%C3%A9", "/caf\u{e9}"),
            ("/reserve/", "/reserve/"),
            ("/reserve/;x", "/reserve/"),
            ("/", "/"),
        ] {
            assert_eq!(canon(path).as_deref(), Some(want), "{path}");
        }
    }

    #[test]
    fn unreadable_spellings_are_refused() {
        for path in [
            "/reserve%zz",
            "/reserve%4",
            "/reserve%+1",
            "/reserve%u0072",
            "/%00reserve",
            "/reserve%09",
            "/reserve%255cx",
            "/;x/reserve",
            "/static/..;/reserve",
            "/static/.;x/reserve",
            "/static/%252e%252e/reserve",
            "/re%2525252573erve",
        ] {
            assert_eq!(canon(path), None, "{path}");
        }
    }

    #[test]
    fn folding_covers_letters_that_fold_into_ascii() {
        for (text, want) in [
            ("/RESERVE", "/reserve"),
            ("/re\u{17f}erve", "/reserve"),
            ("/\u{212a}iosk", "/kiosk"),
            ("/\u{131}nfo/\u{130}nfo", "/info/info"),
            ("/\u{ff32}eserve\u{ff11}", "/reserve1"),
            ("/caf\u{e9}", "/caf\u{e9}"),
        ] {
            assert_eq!(&*fold_case(text.as_bytes()), want.as_bytes(), "{text}");
        }
    }

    #[test]
    fn a_prefix_segment_matches_the_same_name_however_it_ends() {
        let reserve = ProtectedPrefix::new("/reserve", false);
        let api = ProtectedPrefix::new("/api/v1/", false);
        for (prefix, path, want) in [
            (&reserve, "/reserve", true),
            (&reserve, "/reserve/1", true),
            (&reserve, "/reserve.json", true),
            (&reserve, "/reserve.", true),
            (&reserve, "/reserve ", true),
            (&reserve, "/reserve~", true),
            (&reserve, "/reserved", false),
            (&reserve, "/reserve-2", false),
            (&reserve, "/reserve_x", false),
            (&reserve, "/", false),
            (&reserve, "/x/reserve", false),
            (&api, "/api/v1", true),
            (&api, "/api/v1/x", true),
            (&api, "/api.json/v1/x", true),
            (&api, "/api/v2/x", false),
            (&api, "/api", false),
        ] {
            assert_eq!(prefix.matches(path.as_bytes()), want, "{path}");
        }
        assert!(ProtectedPrefix::new("/", false).matches(b"/anything"));
    }
}
