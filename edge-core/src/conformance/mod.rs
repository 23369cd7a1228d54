//! The conformance vectors (`conformance/vectors.json`): rendered for a clock, and
//! judged against an [`Outcome`](crate::outcome::Outcome) — one implementation for every Rust runner (the native
//! core, the proxy-wasm build under wasmtime, real Envoy). JavaScript runners judge the
//! same rendered file with the package's own checker.

use serde_json::{json, Map, Value};
use wr_pass::{Claims, KeyRing, TokenKind};

mod judge;

pub use judge::{class_expectation, judge, judge_outcome, observed_forward, observed_reply};

/// The vectors file, as shipped.
pub const VECTORS: &str = include_str!("../../conformance/vectors.json");

/// One case, ready to run: its tokens minted for the runner's clock.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// `:path`, if the request has one.
    pub path: Option<String>,
    /// Header pairs other than `:path`.
    pub headers: Vec<(String, String)>,
    /// How many times to send it (the last one is judged).
    pub repeat: u32,
    /// True if each repeat comes from another client address.
    pub rotate_source: bool,
    /// The expectation (see the file's `about`).
    pub expect: Value,
}

/// The configuration of the vectors (the edge filter's JSON) for a clock at `now_secs`
/// (unix seconds): every `"{now:N}"` in it is the number `now_secs + N` (an event's
/// cut is a time, and the vectors' tokens are minted for the runner's clock).
pub fn config_at(now_secs: u64) -> Value {
    with_times(&vectors()["config"], now_secs)
}

fn with_times(value: &Value, now_secs: u64) -> Value {
    match value {
        Value::String(s) => s
            .strip_prefix("{now:")
            .and_then(|rest| rest.strip_suffix('}'))
            .and_then(|offset| offset.parse::<i64>().ok())
            .map_or_else(
                || value.clone(),
                |offset| Value::from(now_secs.saturating_add_signed(offset)),
            ),
        Value::Array(items) => items.iter().map(|v| with_times(v, now_secs)).collect(),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_times(v, now_secs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The path table: (path, class, why).
pub fn paths() -> Vec<(String, String, String)> {
    vectors()["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (text(&p["path"]), text(&p["class"]), text(&p["why"])))
        .collect()
}

/// The decision cases, with every `{token:NAME}` minted for `now_secs` (unix seconds)
/// and every `{case}` replaced by the case's number (so that each case is a visitor of
/// its own, also for runners whose rate-limit state outlives a case).
pub fn cases(now_secs: u64) -> Vec<Case> {
    let doc = vectors();
    doc["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, case)| {
            let number = i.to_string();
            let case = substitute(case, "{case}", &number);
            let tokens = mint_tokens(&doc, now_secs, &number);
            let request = &case["request"];
            let headers = request["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pair| (text(&pair[0]), fill(&text(&pair[1]), &tokens)))
                .collect();
            Case {
                name: text(&case["name"]),
                path: request["path"].as_str().map(str::to_owned),
                headers,
                repeat: case["repeat"].as_u64().unwrap_or(1).max(1) as u32,
                rotate_source: case["rotate_source"].as_bool().unwrap_or(false),
                expect: case["expect"].clone(),
            }
        })
        .collect()
}

/// `value` with `from` replaced by `to` in every string inside it.
fn substitute(value: &Value, from: &str, to: &str) -> Value {
    match value {
        Value::String(s) => Value::from(s.replace(from, to)),
        Value::Array(items) => items.iter().map(|v| substitute(v, from, to)).collect(),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every path of the table as a case of its own (no cookie, no `Accept`), expecting its
/// class's decision ([`class_expectation`]).
pub fn path_cases() -> Vec<Case> {
    paths()
        .into_iter()
        .map(|(path, class, why)| Case {
            name: format!("{path} ({why})"),
            path: Some(path),
            headers: Vec::new(),
            repeat: 1,
            rotate_source: false,
            expect: class_expectation(&class),
        })
        .collect()
}

/// The client address (`ip:port`) of a case's `repeat`-th request: each case a client
/// of its own, and a new one per repeat when the case rotates its source.
pub fn source_address(index: usize, repeat: u32, case: &Case) -> String {
    let r = if case.rotate_source { repeat + 1 } else { 1 };
    format!("10.{}.{}.{r}:4000", 1 + index / 250, index % 250)
}

/// Runs every case through `run` (its index and the case → the outcome's JSON form, the
/// case's last request judged) and returns every difference, one line per case that
/// does not conform.
pub fn failures(cases: &[Case], mut run: impl FnMut(usize, &Case) -> Value) -> Vec<String> {
    cases
        .iter()
        .enumerate()
        .filter_map(|(i, case)| {
            let wrong = judge(&run(i, case), &case.expect);
            (!wrong.is_empty()).then(|| format!("{}: {}", case.name, wrong.join("; ")))
        })
        .collect()
}

/// The whole rendered suite as JSON, for runners that are not Rust: the configuration,
/// the path table, the cases (tokens minted for `now_secs`) and `now_ms`.
pub fn rendered_json(now_secs: u64) -> Value {
    let cases: Vec<Value> = cases(now_secs)
        .into_iter()
        .map(|c| {
            json!({
                "name": c.name, "path": c.path, "headers": c.headers, "repeat": c.repeat,
                "rotate_source": c.rotate_source, "expect": c.expect,
            })
        })
        .collect();
    let paths: Vec<Value> = paths()
        .into_iter()
        .map(|(path, class, why)| json!({"path": path, "class": class, "why": why}))
        .collect();
    json!({"now_ms": now_secs * 1000, "config": config_at(now_secs), "paths": paths, "cases": cases})
}

fn vectors() -> Value {
    // The file is part of the crate; a broken file fails every runner loudly.
    serde_json::from_str(VECTORS).expect("conformance/vectors.json is valid JSON")
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn fill(value: &str, tokens: &Map<String, Value>) -> String {
    let mut out = value.to_owned();
    for (name, token) in tokens {
        out = out.replace(
            &format!("{{token:{name}}}"),
            token.as_str().unwrap_or_default(),
        );
    }
    fill_filler(&out)
}

/// `value` with every `{filler:N}` replaced by N `x` characters (for header values too
/// long to write out in the vectors file).
fn fill_filler(value: &str) -> String {
    const OPEN: &str = "{filler:";
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some((count, tail)) = after.split_once('}') else {
            break;
        };
        let Ok(count) = count.parse::<usize>() else {
            break;
        };
        out.push_str(&rest[..start]);
        out.extend(std::iter::repeat_n('x', count));
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn mint_tokens(doc: &Value, now: u64, case: &str) -> Map<String, Value> {
    let mut secrets = doc["config"]["keys"]["keys"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    secrets.extend(doc["foreign_keys"].as_object().cloned().unwrap_or_default());
    let mut out = Map::new();
    for (name, recipe) in doc["tokens"].as_object().into_iter().flatten() {
        let key = text(&recipe["key"]);
        let ring = KeyRing::from_json_value(&json!({"active": key, "keys": {&key: secrets[&key]}}))
            .unwrap_or_else(|e| panic!("token {name}: key {key}: {e:?}"));
        let at = |field: &str| now.saturating_add_signed(recipe[field].as_i64().unwrap_or(0));
        let claims = Claims::new(
            &text(&recipe["event"]),
            &text(&recipe["visitor"]).replace("{case}", case),
            at("issued"),
            at("expires"),
        );
        let kind = match recipe["kind"].as_str() {
            Some("ticket") => TokenKind::Ticket,
            _ => TokenKind::Pass,
        };
        let token = ring
            .mint(kind, &claims)
            .unwrap_or_else(|e| panic!("token {name}: {e:?}"));
        let token = match recipe["tamper"].as_str() {
            Some("signature") => change_first_char_of_field(&token, 4),
            Some("claims") => change_first_char_of_field(&token, 3),
            _ => token,
        };
        out.insert(name.clone(), Value::from(token));
    }
    out
}

/// The token with the first character of its `field`-th dot-separated field (from 1)
/// changed; the first, because the last of a base64 field may carry unused bits.
fn change_first_char_of_field(token: &str, field: usize) -> String {
    let mut fields: Vec<String> = token.split('.').map(str::to_owned).collect();
    if let Some(f) = fields.get_mut(field - 1) {
        let replacement = if f.starts_with('A') { "B" } else { "A" };
        f.replace_range(0..1, replacement);
    }
    fields.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decision::Engine;
    use crate::local_store::LocalStore;
    use crate::outcome::Outcome;

    const NOW_SECS: u64 = 1_800_000_000;

    fn engine() -> Engine {
        Engine::new(Config::from_json(config_at(NOW_SECS).to_string().as_bytes()).unwrap())
    }

    /// Sends one request as a runner would: `:path` first, then the headers.
    pub fn run<'e>(
        engine: &'e Engine,
        store: &LocalStore,
        case: &Case,
        source: &str,
    ) -> Outcome<'e> {
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Some(path) = &case.path {
            headers.push((b":path".to_vec(), path.clone().into_bytes()));
        }
        for (n, v) in &case.headers {
            headers.push((n.clone().into_bytes(), v.clone().into_bytes()));
        }
        engine.outcome(&headers, Some(source.as_bytes()), NOW_SECS * 1000, store)
    }

    /// Every request of `case` through the native core, one store per case; the last
    /// outcome's JSON form.
    fn run_case(engine: &Engine, i: usize, case: &Case) -> Value {
        let store = LocalStore::default();
        let mut outcome = Value::Null;
        for r in 0..case.repeat {
            let o = run(engine, &store, case, &source_address(i, r, case));
            outcome = serde_json::to_value(&o).unwrap_or_default();
        }
        outcome
    }

    #[test]
    fn every_case_gets_its_decision_in_the_native_core() {
        let engine = engine();
        let cases = cases(NOW_SECS);
        assert!(cases.len() >= 30);
        let wrong = failures(&cases, |i, case| run_case(&engine, i, case));
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn every_spelling_gets_its_decision_in_the_native_core() {
        let engine = engine();
        let cases = path_cases();
        assert!(cases.len() >= 40);
        let wrong = failures(&cases, |i, case| run_case(&engine, i, case));
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn a_wrong_expectation_is_reported() {
        let engine = engine();
        let case = &cases(NOW_SECS)[0];
        let outcome = run(&engine, &LocalStore::default(), case, "10.9.9.9:1");
        let mut expect = case.expect.clone();
        expect["set"]["x-wr-visitor"] = json!("someone-else");
        assert_eq!(judge_outcome(&outcome, &expect).len(), 1);
    }
}
