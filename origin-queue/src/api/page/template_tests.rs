//! The template check: what it accepts, each refusal, and the escaping of the values.

use super::template::{Template, Values, MAX_TEMPLATE_BYTES};

const HEAD: &str = "<!doctype html>\n<html>\n<head><meta charset=\"utf-8\"><title>{{title}} · Shop</title></head>\n";

fn page(body: &str) -> String {
    format!("{HEAD}<body>\n{body}\n</body>\n</html>\n")
}

fn problems(html: &str) -> Vec<String> {
    match Template::parse(html) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

fn refused_for(html: &str, needle: &str) {
    let found = problems(html);
    assert!(
        found.iter().any(|p| p.contains(needle)),
        "expected a problem with {needle:?} for {html:?}, got {found:?}"
    );
}

fn values<'a>(hostile: &'a str) -> Values<'a> {
    Values {
        lang: hostile,
        title: hostile,
        event: hostile,
        waiting_room: "<main id=\"wr-waiting-room\"></main>",
        place: hostile,
        wait: hostile,
        state: hostile,
    }
}

#[test]
fn a_branded_template_is_accepted_and_rendered() {
    let html = page(
        "<header><img src=\"/logo.png\" alt=\"Shop\"><h2 class='brand'>Shop — {{event}}</h2></header>\n\
         <p>Status: {{state}} · place {{place}} · wait {{wait}}</p>\n{{ waiting_room }}\n\
         <svg viewBox=\"0 0 1 1\"><title>logo</title><path d=\"M0 0\"/></svg>\n\
         <style>.brand { color: #c00 }</style><!-- a comment -->",
    );
    let template = Template::parse(&html).unwrap();
    assert_eq!(template.source(), html);
    let out = template.render(&Values {
        lang: "ko",
        title: "대기실",
        event: "summer-sale",
        waiting_room: "<main id=\"wr-waiting-room\"></main>",
        place: "…",
        wait: "…",
        state: "대기 중",
    });
    assert!(
        out.starts_with("<!doctype html>\n<html lang=\"ko\">"),
        "{out}"
    );
    assert!(out.contains("<title>대기실 · Shop</title>"));
    assert!(out.contains("Shop — summer-sale</h2>"));
    assert!(out.contains(
        "Status: <span data-wr=\"state\">대기 중</span> · place <span data-wr=\"place\">…</span>"
    ));
    assert!(out.contains("<main id=\"wr-waiting-room\"></main>"));
    assert!(!out.contains("{{"));
}

#[test]
fn hostile_values_stay_text() {
    let template = Template::parse(&page("<p>{{event}} {{place}}</p>{{waiting_room}}")).unwrap();
    let hostile = "\"><script>alert(1)</script><img src=x onerror=alert(1)>'&";
    let out = template.render(&values(hostile));
    assert!(!out.contains("<script>"), "{out}");
    assert!(!out.contains("<img src=x"), "{out}");
    assert!(out.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#39;&amp;"));
    assert!(
        out.contains("<html lang=\"&quot;&gt;&lt;script&gt;"),
        "the lang attribute stays quoted"
    );
}

#[test]
fn the_waiting_room_placeholder_is_required_once() {
    refused_for(
        &page("<p>no block</p>"),
        "{{waiting_room}} must appear exactly once",
    );
    refused_for(&page("{{waiting_room}}{{waiting_room}}"), "(found 2)");
}

#[test]
fn unknown_placeholders_are_named() {
    refused_for(
        &page("{{waiting_room}} {{visitor_id}}"),
        "unknown placeholder {{visitor_id}}",
    );
    // Braces that are no placeholder are text.
    assert!(problems(&page("{{waiting_room}} {{ not one }} {{}}")).is_empty());
}

#[test]
fn placeholders_go_in_text_only() {
    refused_for(
        &page("{{waiting_room}}<a href=\"{{event}}\">x</a>"),
        "inside the tag <a>",
    );
    refused_for(
        &page("{{waiting_room}}<div class={{state}}>x</div>"),
        "inside the tag <div>",
    );
    refused_for(
        &page("{{waiting_room}}<!-- {{place}} -->"),
        "inside a comment",
    );
    refused_for(
        &page("{{waiting_room}}<style>p::after { content: '{{place}}' }</style>"),
        "inside <style>",
    );
    refused_for(
        &page("{{waiting_room}}<textarea>{{event}}</textarea>"),
        "inside <textarea>",
    );
    refused_for(
        &page("{{waiting_room}}<svg>{{place}}</svg>"),
        "cannot go inside <svg>",
    );
    let in_head = "<!doctype html><html><head><title>x</title>{{event}}</head><body>{{waiting_room}}</body></html>";
    refused_for(in_head, "{{event}} must be inside <body>");
    let block_in_title = "<!doctype html><html><head><title>{{place}}</title></head><body>{{waiting_room}}</body></html>";
    refused_for(block_in_title, "cannot go in <title>");
}

#[test]
fn nothing_that_runs_script_or_loads_a_page_is_accepted() {
    for (body, needle) in [
        ("<script>alert(1)</script>", "<script> is not allowed"),
        (
            "<SCRIPT src=//evil.example/x.js></SCRIPT>",
            "<script> is not allowed",
        ),
        (
            "<svg><script>alert(1)</script></svg>",
            "<script> is not allowed",
        ),
        ("<img src=x onerror=alert(1)>", "onerror=…>: event handler"),
        ("<body onload=alert(1)>", "onload=…>: event handler"),
        ("<a href=\"javascript:alert(1)\">x</a>", "script URLs"),
        (
            "<a href=\" jav&#x61;script&colon;alert(1)\">x</a>",
            "script URLs",
        ),
        ("<a href=\"java\tscript:alert(1)\">x</a>", "script URLs"),
        (
            "<svg><a xlink:href=\"javascript:alert(1)\">x</a></svg>",
            "script URLs",
        ),
        (
            "<form action=\"javascript:alert(1)\"></form>",
            "script URLs",
        ),
        (
            "<div style=\"background:url(javascript:alert(1))\"></div>",
            "script URLs",
        ),
        (
            "<style>p { background: url(javascript:alert(1)) }</style>",
            "a style with javascript:",
        ),
        (
            "<iframe src=\"https://evil.example\"></iframe>",
            "<iframe> is not allowed",
        ),
        ("<object data=x></object>", "<object> is not allowed"),
        ("<embed src=x>", "<embed> is not allowed"),
        (
            "<base href=\"https://evil.example/\">",
            "<base> is not allowed",
        ),
        (
            "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
            "<meta http-equiv>",
        ),
        ("<plaintext>", "<plaintext> is not allowed"),
        ("<template><p>x</p></template>", "<template> is not allowed"),
        (
            "<p id=\"position\">mine</p>",
            "id=\"position\" is the waiting room's own",
        ),
    ] {
        refused_for(&page(&format!("{{{{waiting_room}}}}{body}")), needle);
    }
}

#[test]
fn the_document_must_be_whole_and_well_formed() {
    refused_for(
        "<html><body>{{waiting_room}}</body></html>",
        "must begin with <!doctype html>",
    );
    refused_for(
        "<!doctype html><body>{{waiting_room}}</body>",
        "exactly one <html> tag",
    );
    refused_for(
        "<!doctype html><html>{{waiting_room}}</html>",
        "exactly one <body> tag",
    );
    refused_for(
        "<!doctype html><html lang=\"en\"><body>{{waiting_room}}</body></html>",
        "<html lang> is set by the waiting room",
    );
    refused_for(
        &page("{{waiting_room}}<a href=\"x>"),
        "a tag that never closes",
    );
    refused_for(
        &page("{{waiting_room}}<!-- open"),
        "a comment that never closes",
    );
    refused_for(&page("{{waiting_room}}<style>p {}"), "<style> never closes");
    let many = "{{event}}".repeat(101);
    refused_for(
        &page(&format!("{{{{waiting_room}}}}{many}")),
        "placeholders; the most is 100",
    );
}

#[test]
fn uploads_are_size_and_encoding_checked() {
    let big = page(&format!(
        "{{{{waiting_room}}}}{}",
        "x".repeat(MAX_TEMPLATE_BYTES)
    ));
    let problems = Template::check_upload(big.as_bytes()).unwrap_err();
    assert!(problems[0].contains("the most is 65536"), "{problems:?}");
    let problems = Template::check_upload(b"<!doctype html>\xff\xfe").unwrap_err();
    assert!(problems[0].contains("not UTF-8 (byte 15"), "{problems:?}");
    assert!(Template::check_upload(page("{{waiting_room}}").as_bytes()).is_ok());
}

#[test]
fn every_problem_is_listed_with_its_line() {
    let html = page("{{waiting_room}}\n<script>x</script>\n<img onerror=x>\n{{nope}}");
    let found = problems(&html);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].starts_with("line 6: <script>"), "{found:?}");
    assert!(found[1].starts_with("line 7: <img onerror"), "{found:?}");
    assert!(
        found[2].starts_with("line 8: unknown placeholder"),
        "{found:?}"
    );
}

#[test]
fn no_input_makes_it_panic() {
    let pieces = [
        "<",
        "</",
        "<!",
        "<!--",
        "-->",
        "<a",
        " b='",
        "\"",
        ">",
        "{{",
        "}}",
        "place",
        "&#x",
        "é",
        "\u{1F600}",
        "<style>",
        "</style>",
        "<svg>",
        "<body>",
        "<html>",
        "{{waiting_room}}",
        "\n",
    ];
    let mut seed: u64 = 7;
    for _ in 0..3_000 {
        let mut html = String::new();
        for _ in 0..(seed % 24) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            html.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
        }
        if let Ok(t) = Template::parse(&html) {
            let _ = t.render(&values("x"));
        }
    }
}

#[test]
fn every_id_of_the_live_block_is_reserved() {
    let block = include_str!("block.html");
    let mut rest = block;
    while let Some(at) = rest.find("id=\"") {
        rest = &rest[at + 4..];
        let id = &rest[..rest.find('"').unwrap_or(0)];
        assert!(
            super::template::RESERVED_IDS.contains(&id),
            "{id} of the live block is not reserved"
        );
    }
}

#[test]
fn a_reserved_id_cannot_hide_behind_a_reference() {
    refused_for(
        &page("<p id=\"wr&#45;data\">x</p>\n{{waiting_room}}"),
        "character references",
    );
    refused_for(
        &page("<p id=\"pow-solver\">x</p>\n{{waiting_room}}"),
        "pow-solver",
    );
}

#[test]
fn leading_zeros_do_not_hide_a_script_url() {
    refused_for(
        &page("<a href=\"&#0000000106;avascript:alert(1)\">x</a>\n{{waiting_room}}"),
        "script URLs",
    );
    refused_for(
        &page("<a href=\"&#x000000006A;avascript:alert(1)\">x</a>\n{{waiting_room}}"),
        "script URLs",
    );
}

#[test]
fn the_check_is_linear_on_hostile_text() {
    let limit = std::time::Duration::from_secs(1);
    for filler in ["{{", "<a", "<script>", "&#"] {
        let body = filler.repeat(MAX_TEMPLATE_BYTES / filler.len() - 200);
        let html = page(&format!("{{{{waiting_room}}}}\n{body}"));
        let started = std::time::Instant::now();
        let _ = Template::parse(&html);
        assert!(
            started.elapsed() < limit,
            "{filler:?}: {:?}",
            started.elapsed()
        );
    }
}
