//! The page's languages: built-in catalogs of every string the page shows, and the
//! choice of one from the visitor's `Accept-Language` (English when none fits).

mod en;
mod es;
mod ja;
mod ko;

use std::sync::LazyLock;

/// One language's strings.
pub struct Catalog {
    /// Its language tag (`<html lang>`, `Intl` formatting in the page).
    pub lang: &'static str,
    /// Every string of the page, by key; `{name}` marks a value the page's script puts
    /// in.
    pub strings: &'static [(&'static str, &'static str)],
}

impl Catalog {
    /// The string of `key` (empty for an unknown key; the tests keep every key in every
    /// catalog).
    pub fn get(&self, key: &str) -> &'static str {
        self.strings
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, text)| *text)
    }

    /// The catalog as a JSON object, safe inside a `<script type="application/json">`
    /// element (no `<`, `>` or `&`: no end tag, no comment opener).
    pub fn json(&self) -> &'static str {
        let i = CATALOGS
            .iter()
            .position(|c| c.lang == self.lang)
            .unwrap_or(0);
        JSON.get(i).map_or("{}", String::as_str)
    }
}

/// The catalogs; English first (the fallback, and what `*` picks first).
pub static CATALOGS: [Catalog; 4] = [
    Catalog {
        lang: "en",
        strings: en::STRINGS,
    },
    Catalog {
        lang: "ko",
        strings: ko::STRINGS,
    },
    Catalog {
        lang: "ja",
        strings: ja::STRINGS,
    },
    Catalog {
        lang: "es",
        strings: es::STRINGS,
    },
];

static JSON: LazyLock<Vec<String>> = LazyLock::new(|| {
    CATALOGS
        .iter()
        .map(|c| {
            let map: serde_json::Map<String, serde_json::Value> = c
                .strings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            script_safe_json(&serde_json::Value::Object(map))
        })
        .collect()
});

/// `value` as JSON with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026`, so it
/// can sit inside a `<script>` element whatever its strings hold.
pub fn script_safe_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Most entries of an `Accept-Language` header looked at.
const MAX_ENTRIES: usize = 32;

/// The catalog for an `Accept-Language` header (RFC 9110, section 12.5.4): the
/// language with the highest weight whose primary subtag we have (`ko-KR` is `ko`),
/// the earlier on a tie; `*` stands for any language the header does not name, English
/// first; `q=0` refuses a language. English when nothing fits.
pub fn negotiate(header: Option<&str>) -> &'static Catalog {
    let Some(header) = header else {
        return &CATALOGS[0];
    };
    // Per catalog: the highest weight given (thousandths), and where.
    let mut weights: [Option<(u16, usize)>; 4] = [None; 4];
    let mut star: Option<(u16, usize)> = None;
    for (order, entry) in header.split(',').take(MAX_ENTRIES).enumerate() {
        let mut parts = entry.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let mut q = Some(1000);
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if name.trim().eq_ignore_ascii_case("q") {
                q = qvalue(value.trim());
            }
        }
        let Some(q) = q else { continue };
        if tag == "*" {
            star = star.max(Some((q, usize::MAX - order)));
            continue;
        }
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        if let Some(i) = CATALOGS
            .iter()
            .position(|c| c.lang.eq_ignore_ascii_case(primary))
        {
            let ranked = (q, usize::MAX - order);
            if weights[i].is_none_or(|w| ranked.0 > w.0) {
                weights[i] = Some(ranked);
            }
        }
    }
    let mut best: Option<((u16, usize), usize)> = None;
    for (i, weight) in weights.iter().enumerate() {
        let ranked = match (weight, star) {
            (Some(w), _) => *w,
            (None, Some(s)) => (s.0, s.1.saturating_sub(i)),
            (None, None) => continue,
        };
        if ranked.0 > 0 && best.is_none_or(|(b, _)| ranked > b) {
            best = Some((ranked, i));
        }
    }
    best.map_or(&CATALOGS[0], |(_, i)| &CATALOGS[i])
}

/// A weight (`0`, `0.5`, `1.000`, …) in thousandths; `None` if malformed.
fn qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(header: &str) -> &'static str {
        negotiate(Some(header)).lang
    }

    #[test]
    fn the_heaviest_language_we_have_wins() {
        assert_eq!(negotiate(None).lang, "en");
        assert_eq!(lang(""), "en");
        assert_eq!(lang("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"), "ko");
        assert_eq!(lang("ja"), "ja");
        assert_eq!(lang("es-419"), "es");
        assert_eq!(lang("fr-FR, de;q=0.9"), "en", "nothing fits: English");
        assert_eq!(lang("fr-FR, es;q=0.4, ja;q=0.6"), "ja");
        assert_eq!(
            lang("en;q=0.5, ko;q=0.5"),
            "en",
            "a tie goes to the earlier"
        );
        assert_eq!(lang("ko;q=0.5, en;q=0.5"), "ko");
        assert_eq!(lang("ES;Q=0.9"), "es");
        assert_eq!(lang("zh_TW, ja_JP;q=0.1"), "ja");
    }

    #[test]
    fn zero_refuses_and_malformed_weights_are_skipped() {
        assert_eq!(lang("ko;q=0, ja;q=0.1"), "ja");
        assert_eq!(lang("ko;q=0"), "en");
        assert_eq!(lang("ko;q=2, es;q=0.3"), "es");
        assert_eq!(lang("ko;q=0.1234, es;q=0.3"), "es");
        assert_eq!(lang("ko;q=abc"), "en");
        assert_eq!(lang("ko;q=1.000"), "ko");
    }

    #[test]
    fn a_star_stands_for_the_languages_not_named() {
        assert_eq!(lang("*"), "en");
        assert_eq!(lang("fr, *;q=0.5"), "en");
        assert_eq!(lang("en;q=0, *"), "ko", "English refused: the next we have");
        assert_eq!(lang("ja;q=0.2, *;q=0.5"), "en");
        assert_eq!(lang("*;q=0"), "en", "nothing acceptable: English anyway");
    }

    #[test]
    fn odd_headers_do_not_hurt() {
        let long = "xx;q=0.1,".repeat(10_000) + "ko";
        assert_eq!(lang(&long), "en", "only the first entries are read");
        for odd in [
            ",,,",
            ";;;",
            "ko;",
            "ko;q",
            "ko;q=",
            "-",
            "*;q=0.5;q=1",
            "\u{1F600}",
        ] {
            let _ = lang(odd);
        }
    }

    #[test]
    fn every_catalog_has_every_key_and_no_empty_string() {
        let keys: Vec<&str> = CATALOGS[0].strings.iter().map(|(k, _)| *k).collect();
        for catalog in &CATALOGS {
            let own: Vec<&str> = catalog.strings.iter().map(|(k, _)| *k).collect();
            assert_eq!(own, keys, "{}: same keys, same order", catalog.lang);
            for (key, text) in catalog.strings {
                assert!(!text.trim().is_empty(), "{}: {key}", catalog.lang);
                // The same values in every language.
                let names = |s: &str| {
                    let mut v: Vec<String> = s
                        .split('{')
                        .skip(1)
                        .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
                        .collect();
                    v.sort();
                    v
                };
                assert_eq!(
                    names(text),
                    names(CATALOGS[0].get(key)),
                    "{}: {key}",
                    catalog.lang
                );
            }
        }
    }

    #[test]
    fn the_json_is_safe_in_a_script_element() {
        let json = script_safe_json(&serde_json::json!({"a": "</script><!-- & >"}));
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["a"], "</script><!-- & >");
        for catalog in &CATALOGS {
            let parsed: serde_json::Value = serde_json::from_str(catalog.json()).unwrap();
            assert_eq!(parsed["page_title"], catalog.get("page_title"));
        }
    }
}
