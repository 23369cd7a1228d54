//! What would run script or load another document, looked for in the whole template,
//! whatever the context: every `<name …>` anywhere (in text, comments, `<style>`, SVG)
//! is read as a tag. A browser reads some of these places as markup and others as text
//! depending on the context (SVG's `<style>`, `<foreignObject>`, `--!>`), so the check
//! takes the union: a tag that could be markup anywhere is checked as markup. An
//! operator who means the text writes `&lt;`.

use super::scan::{self, normalized};

/// URL schemes that run script.
const SCRIPT_SCHEMES: [&str; 3] = ["javascript:", "vbscript:", "livescript:"];

/// Elements refused, with why.
pub fn refused(name: &str) -> Option<&'static str> {
    Some(match name {
        "script" => "the page runs only the waiting room's own script",
        "iframe" | "frame" | "frameset" | "object" | "embed" | "applet" | "portal" => {
            "the page embeds no other document or plugin"
        }
        "base" => "it would change where the page's addresses lead",
        "plaintext" | "template" => "it would hide the waiting room",
        _ => return None,
    })
}

/// Every danger of `src`: its byte offset and what it is.
pub fn dangers(src: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while let Some(at) = src.get(i..).and_then(|rest| rest.find('<')).map(|e| e + i) {
        i = at + 1;
        if !bytes.get(at + 1).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let Some(tag) = scan::tag(&src[at..]) else {
            // A tag that never closes swallows the rest of the text: nothing after it is
            // markup (and the check refuses the template for it anyway).
            break;
        };
        let name = tag.name.as_str();
        if let Some(why) = refused(name) {
            found.push((at, format!("<{name}> is not allowed: {why}")));
        }
        for attribute in &tag.attributes {
            let attr = attribute.name.as_str();
            if attr.starts_with("on") {
                found.push((
                    at,
                    format!("<{name} {attr}=…>: event handler attributes are not allowed"),
                ));
            }
            let value = normalized(attribute.value);
            if SCRIPT_SCHEMES.iter().any(|s| value.contains(s)) {
                found.push((
                    at,
                    format!("<{name} {attr}=…>: script URLs are not allowed"),
                ));
            }
            if name == "meta" && attr == "http-equiv" {
                found.push((
                    at,
                    "<meta http-equiv> is not allowed: the page's headers are the waiting room's"
                        .into(),
                ));
            }
        }
        // A refused element's own text (a script's code) is not looked into.
        if matches!(name, "script" | "iframe") {
            let rest = src.get(at + tag.len..).unwrap_or("");
            let end = scan::find_end_tag(rest, name).unwrap_or(rest.len());
            i = at + tag.len + end;
        } else {
            i = at + tag.len;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<String> {
        dangers(src).into_iter().map(|(_, what)| what).collect()
    }

    #[test]
    fn dangers_hidden_by_context_are_found() {
        // In SVG, <style> holds markup; in <foreignObject>, a comment in <style> is text.
        for src in [
            "<svg><style><img src=x onerror=alert(1)></style></svg>",
            "<svg><foreignObject><style><!--</style><img src=x onerror=alert(1)>--></style></foreignObject></svg>",
            "<!-- a --!><img src=x onerror=alert(1)><!-- -->",
        ] {
            assert!(names(src).iter().any(|p| p.contains("onerror")), "{src}");
        }
        assert!(names("<p>1 < 2 and <b>bold</b></p>").is_empty());
        let script = names("<script>if (a<b) { x = '<img onerror=y>' }</script>");
        assert_eq!(script.len(), 1, "{script:?}");
    }
}
