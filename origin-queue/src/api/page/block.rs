//! The waiting room's own part of the page, `{{waiting_room}}`: the live status block
//! (place, wait, progress, messages) in the visitor's language, the data its script
//! needs, the proof-of-work solver, and the script. Also the page's
//! Content-Security-Policy, which lets only that script run (by its hash).

use std::sync::LazyLock;

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::i18n::{script_safe_json, Catalog};
use super::template::escape;

const BLOCK: &str = include_str!("block.html");
/// The page's one script.
const SCRIPT: &str = include_str!("waiting_room.js");
/// The proof-of-work solver of the JavaScript package (one source for both), which the
/// page runs in a Web Worker.
const POW_SOLVER: &str = include_str!("../../../../edge-js/js/pow.js");

/// What the block of one page shows and does.
pub struct Visit<'a> {
    /// The event id (checked).
    pub event: &'a str,
    /// Where to go once admitted (a checked local path).
    pub return_to: &'a str,
    /// `ended` or empty.
    pub session: &'static str,
    /// `revoked` or empty.
    pub pass: &'static str,
    /// The visitor's language.
    pub catalog: &'static Catalog,
}

/// The solver as a classic script for a worker: the module's `export`s dropped.
pub fn pow_solver_script() -> String {
    POW_SOLVER.replace("\nexport function ", "\nfunction ")
}

static SOLVER: LazyLock<String> = LazyLock::new(pow_solver_script);

/// The block's HTML for `visit`.
pub fn render(visit: &Visit<'_>) -> String {
    let data = json!({
        "event": visit.event,
        "events_prefix": wr_pass::wire::EVENTS_PREFIX,
        "return_to": visit.return_to,
        "lang": visit.catalog.lang,
    });
    // The catalog is one more member, spliced in as the JSON it already is.
    let data = script_safe_json(&data);
    let data = format!(
        "{},\"t\":{}}}",
        data.strip_suffix('}').unwrap_or(&data),
        visit.catalog.json()
    );
    let html = BLOCK
        .replace("__SESSION__", visit.session)
        .replace("__PASS__", visit.pass);
    let html = translated(&html, visit.catalog);
    // The constants first, the data (which holds the visitor's return path) last.
    html.replace("__POW_SOLVER__", &SOLVER)
        .replace("__SCRIPT__", SCRIPT)
        .replace("__DATA__", &data)
}

/// `html` with each `@@key@@` replaced by the catalog's string, escaped.
fn translated(html: &str, catalog: &Catalog) -> String {
    let mut out = String::with_capacity(html.len() + 1024);
    let mut parts = html.split("@@");
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut is_key = true;
    for part in parts {
        if is_key {
            out.push_str(&escape(catalog.get(part)));
        } else {
            out.push_str(part);
        }
        is_key = !is_key;
    }
    out
}

/// The page's Content-Security-Policy: only the waiting room's script runs (its
/// SHA-256), the proof-of-work worker from a `blob:`; styles inline or from the site or
/// HTTPS, images and fonts from the site, HTTPS or `data:`; calls to the site only; no
/// frames, plugins, `<base>` or form posts.
pub fn content_security_policy() -> &'static str {
    static CSP: LazyLock<String> = LazyLock::new(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT));
        format!(
            "default-src 'none'; script-src 'sha256-{hash}'; worker-src blob:; \
             style-src 'self' https: 'unsafe-inline'; img-src 'self' https: data:; \
             font-src 'self' https: data:; connect-src 'self'; object-src 'none'; \
             frame-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    });
    &CSP
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::page::i18n::CATALOGS;

    #[test]
    fn the_solver_is_a_classic_script_without_a_closing_tag() {
        let script = pow_solver_script();
        assert!(script.contains("function solveChallenge("));
        assert!(!script.contains("export "));
        assert!(!script.to_ascii_lowercase().contains("</script"));
    }

    #[test]
    fn the_script_is_the_one_the_policy_names() {
        let html = render(&Visit {
            event: "sale",
            return_to: "/",
            session: "",
            pass: "",
            catalog: &CATALOGS[0],
        });
        let inline = html
            .rsplit_once("<script>")
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map(|(script, _)| script)
            .unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(inline));
        assert!(content_security_policy().contains(&format!("'sha256-{hash}'")));
        assert!(!content_security_policy().contains("'unsafe-inline'; worker"));
        assert!(!SCRIPT.to_ascii_lowercase().contains("</script"));
        assert!(!SCRIPT.contains("<!--"));
    }

    #[test]
    fn every_catalog_key_of_the_block_exists_and_the_data_parses() {
        for key in BLOCK.split("@@").skip(1).step_by(2) {
            assert!(!CATALOGS[0].get(key).is_empty(), "{key}");
        }
        for catalog in &CATALOGS {
            let html = render(&Visit {
                event: "sale",
                return_to: "/a?b=\"</script><!--&",
                session: "ended",
                pass: "",
                catalog,
            });
            assert!(
                !html.contains("@@") && !html.contains("__"),
                "{}",
                catalog.lang
            );
            let data = html
                .split_once("id=\"wr-data\">")
                .and_then(|(_, rest)| rest.split_once("</script>"))
                .map(|(d, _)| d)
                .unwrap();
            let data: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["return_to"], "/a?b=\"</script><!--&");
            assert_eq!(data["lang"], catalog.lang);
            assert_eq!(data["t"]["heading_draw"], catalog.get("heading_draw"));
            assert!(html.contains(&escape(catalog.get("heading_joining"))));
        }
    }
}
