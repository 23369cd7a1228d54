(() => {
  "use strict";
  // The waiting room's own script (the only one the page's Content-Security-Policy lets
  // run, by its hash). Everything it says comes from the catalog of the visitor's
  // language, chosen by origin-queue and handed over in #wr-data; numbers and times are
  // formatted by Intl in that language.
  const $ = (id) => document.getElementById(id);
  const root = $("wr-waiting-room");
  let data = {};
  try { data = JSON.parse($("wr-data").textContent); } catch (_) { /* no data: the words below */ }
  const T = data.t || {};
  const event = String(data.event || "");
  const prefix = String(data.events_prefix || "/v1/events/");
  const returnTo = /^\/(?![\/\\])/.test(data.return_to || "") ? data.return_to : "/";
  let lang = String(data.lang || "en");
  try { new Intl.NumberFormat(lang); } catch (_) { lang = "en"; }
  const number = new Intl.NumberFormat(lang);
  const tenths = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const percent = new Intl.NumberFormat(lang, { style: "percent" });
  const hhmm = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });

  // The catalog's string of `key`, its {name}s replaced by `values`.
  function t(key, values) {
    const text = typeof T[key] === "string" ? T[key] : key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (values && name in values ? String(values[name]) : m));
  }
  function clock(unixSeconds) { return hhmm.format(new Date(unixSeconds * 1000)); }
  function wait(ms) { return new Promise((r) => setTimeout(r, ms)); }
  // The live placeholders of an operator's template ({{place}}, {{wait}}, {{state}}).
  function live(name, text) {
    document.querySelectorAll('[data-wr="' + name + '"]').forEach((e) => { e.textContent = text; });
  }
  function text(id, value) { $(id).textContent = value; }
  function place(value) { text("position", value); live("place", value); }
  function waitShown(value) { text("eta", value); live("wait", value); }
  function state(key) { root.dataset.state = key; live("state", t("state_" + key)); }
  function heading(key, values) { text("title", t(key, values)); }
  function message(key, values) { text("message", key ? t(key, values) : ""); }
  function progress(done) {
    $("progress").setAttribute("aria-valuenow", String(done));
    $("progress-fill").style.width = done + "%";
  }

  let firstPosition = null;
  let wasInDraw = false;

  function duration(s) {
    if (s < 60) return t("unit_seconds", { n: number.format(Math.max(1, Math.round(s))) });
    if (s < 3600) return t("unit_minutes", { n: number.format(Math.round(s / 60)) });
    return t("unit_hours", { n: tenths.format(s / 3600) });
  }
  // The range that should hold the wait nine times in ten, in words: "less than a
  // minute", "about 4–6 minutes", "at least 2 s" while admission is paused.
  function waitText(body) {
    const range = body.eta_range_seconds;
    if (!Array.isArray(range)) return duration(body.eta_seconds || 0);
    const [low, high] = range;
    if (high === null) return t("wait_at_least", { d: duration(low) });
    if (high <= 60) return t("wait_under_a_minute");
    if (high < 3600) {
      const to = Math.ceil(high / 60);
      if (low < 60) return t("wait_under_minutes", { n: number.format(to) });
      const from = Math.floor(low / 60);
      if (from === to) return to === 1 ? t("wait_about_a_minute") : t("wait_about_minutes", { n: number.format(to) });
      return t("wait_minutes_range", { from: number.format(from), to: number.format(to) });
    }
    const a = tenths.format(low / 3600);
    const b = tenths.format(high / 3600);
    return a === b ? t("wait_about_hours", { n: b }) : t("wait_hours_range", { from: a, to: b });
  }
  // eta_confidence: the estimator's chance that the wait is within ±20 % of its estimate.
  function confidenceText(c) {
    if (c >= 0.9) return t("confidence_high");
    if (c >= 0.7) return t("confidence_good");
    if (c >= 0.4) return t("confidence_fair");
    return t("confidence_low");
  }
  // The pre-queue: an entry in the opening draw, no place yet. The draw runs at
  // draw_at; once that has passed, it is under way until the visitor has a place.
  function showDraw(body) {
    wasInDraw = true;
    const at = clock(body.draw_at);
    const running = body.draw_at * 1000 <= Date.now();
    state(running ? "drawing" : "draw");
    heading(running ? "heading_drawing" : "heading_draw", { time: at });
    text("intro", t(running ? "intro_drawing" : "intro_draw", { time: at }));
    text("position-label", t("label_draw_place"));
    place(running ? t("place_drawing") : t("place_drawn_at", { time: at }));
    waitShown(waitText(body));
    text("confidence", t("draw_entrants", { n: number.format(body.entrants || 0) }));
    message("");
  }
  function show(body) {
    if (body.status !== "waiting") return;
    if (body.in_draw) return showDraw(body);
    state(body.mode === "reject" ? "sold_out" : body.paused ? "paused" : "waiting");
    heading("heading_in_line");
    text("intro", t("intro_in_line"));
    waitShown(waitText(body));
    text("confidence", confidenceText(body.eta_confidence));
    if (body.mode === "random") {
      text("position-label", t("label_waiting"));
      place(number.format(body.waiting));
    } else {
      if (firstPosition === null || body.position > firstPosition) firstPosition = body.position;
      text("position-label", t("label_place"));
      place(number.format(body.position));
      progress(firstPosition > 1 ? Math.round(100 * (firstPosition - body.position) / (firstPosition - 1)) : 100);
    }
    message(body.mode === "reject" ? "message_sold_out"
      : body.paused ? "message_paused"
        : body.mode === "random" ? "message_random"
          : wasInDraw ? "message_drawn" : "");
  }
  // Stopped: a heading, a message, and the button to join again if that can help.
  function stop(headingKey, messageKey, values, canRejoin) {
    heading(headingKey);
    text("intro", "");
    message(messageKey, values);
    $("retry").hidden = !canRejoin;
  }
  async function call(method, path, extra) {
    const headers = Object.assign({ "accept": "application/json" }, extra || {});
    const response = await fetch(path, { method, credentials: "same-origin", headers });
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    return { response, body };
  }
  function politeDelay(response, fallbackMs) {
    const s = parseInt(response.headers.get("retry-after") || "", 10);
    return Number.isFinite(s) && s > 0 ? s * 1000 : fallbackMs;
  }
  // The event asks for proof of work before a new place: the solver (the page's
  // pow-solver script, the JavaScript package's own) runs in a Web Worker, so the page
  // stays responsive; progress is the chance a solution was found by now.
  function solve(pow) {
    state("pow");
    heading("heading_pow");
    text("intro", t("intro_pow"));
    root.dataset.powDifficulty = String(pow.difficulty);
    const source = $("pow-solver").textContent +
      "\nself.onmessage = (m) => { const s = solveChallenge(m.data.challenge, m.data.difficulty, (tried) => { self.postMessage({ tried }); }); self.postMessage({ solution: s }); };";
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      const worker = new Worker(url);
      const expected = Math.pow(2, pow.difficulty);
      const shown = (done) => {
        message("message_pow_progress", { percent: percent.format(done / 100) });
        progress(done);
      };
      shown(0);
      worker.onmessage = (m) => {
        if (typeof m.data.tried === "number") {
          shown(Math.min(99, Math.round(100 * (1 - Math.exp(-m.data.tried / expected)))));
          return;
        }
        worker.terminate();
        URL.revokeObjectURL(url);
        root.dataset.powMs = String(Math.round(performance.now() - started));
        shown(100);
        if (m.data.solution) resolve(m.data.solution); else reject(new Error("no solution"));
      };
      worker.onerror = (e) => { worker.terminate(); URL.revokeObjectURL(url); reject(e); };
      worker.postMessage({ challenge: pow.challenge, difficulty: pow.difficulty });
    });
  }
  // Refusals the visitor can understand, by the API's error code.
  const refusals = {
    ADMISSION_REVOKED: ["error_admission_revoked", false],
    EVENT_NOT_FOUND: ["error_no_event", false],
    BAD_EVENT_ID: ["error_no_event", false],
    JWT_REQUIRED: ["error_sign_in", true],
    JWT_INVALID: ["error_sign_in", true],
  };
  async function run() {
    $("retry").hidden = true;
    state("joining");
    let next = "join";
    let solution = null;
    let refusedSolutions = 0;
    for (;;) {
      let result;
      try {
        result = next === "join"
          ? await call("POST", prefix + event + "/join", solution ? { "x-wr-pow": solution } : {})
          : await call("GET", prefix + event + "/status");
      } catch (_) {
        state("reconnecting");
        message("message_connection_lost");
        await wait(5000);
        continue;
      }
      const { response, body } = result;
      if (response.status === 429 || response.status === 503) {
        const ms = politeDelay(response, 5000);
        state("reconnecting");
        message("message_busy", { d: duration(ms / 1000) });
        await wait(ms);
        continue;
      }
      const code = body.error && body.error.code;
      if (response.status === 409 && code === "NOT_OPEN_YET") {
        // Before the pre-queue opens: what opens then is the entry to the draw.
        const at = clock(body.error.opens_at);
        state("not_open");
        heading("heading_not_open", { time: at });
        text("intro", "");
        message("message_not_open", { time: at });
        await wait(politeDelay(response, 5000));
        continue;
      }
      if (next === "join" && code === "POW_REQUIRED" && body.error.pow && refusedSolutions < 3) {
        try {
          solution = await solve(body.error.pow);
        } catch (_) {
          state("problem");
          stop("heading_problem", "message_pow_unsupported", {}, true);
          return;
        }
        continue;
      }
      if (next === "join" && /^POW_(INVALID|EXPIRED|REPLAYED)$/.test(code || "") && refusedSolutions < 3) {
        // A fresh challenge comes with the next join.
        refusedSolutions += 1;
        solution = null;
        continue;
      }
      if (!response.ok) {
        const [key, canRejoin] = refusals[code] || ["error_generic", true];
        state("problem");
        stop("heading_problem", key, { status: number.format(response.status) }, canRejoin);
        return;
      }
      next = "status";
      solution = null;
      if (body.status === "admitted") {
        if (!body.pass) { await wait(500); continue; }
        state("admitted");
        heading("heading_admitted");
        message("message_admitted");
        progress(100);
        location.replace(returnTo);
        return;
      }
      if (body.status === "closed") {
        const soldOut = body.mode === "reject";
        state(soldOut ? "sold_out" : "closed");
        stop(soldOut ? "heading_sold_out" : "heading_closed", soldOut ? "message_sold_out_closed" : "message_closed", {}, false);
        return;
      }
      if (body.status === "expired") {
        state("expired");
        stop("heading_expired", "message_expired", {}, true);
        return;
      }
      show(body);
      await wait(body.poll_after_ms || 5000);
    }
  }
  $("rejoin").addEventListener("click", () => {
    firstPosition = null;
    heading("heading_joining");
    text("intro", t("intro_joining"));
    message("");
    run();
  });
  if (root.dataset.session === "ended") {
    // The site ended this visit (a purchase done, say): say so, and join again only
    // if the visitor asks.
    state("session_ended");
    heading("heading_session_ended");
    text("intro", t("intro_session_ended"));
    place("–");
    waitShown("–");
    $("retry").hidden = false;
  } else {
    run();
    if (root.dataset.pass === "revoked") {
      // The site withdrew every pass issued before a moment: back in line for a new one.
      message("message_pass_revoked");
    }
  }
})();
