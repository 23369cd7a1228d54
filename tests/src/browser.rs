//! Headless Chromium driven over WebDriver (chromedriver from Debian), with just the
//! commands the browser tests need. The driver and browser stop on drop.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use crate::http;
use crate::processes::free_port;

/// A browser session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub fn start() -> Result<Browser> {
        Self::start_in_language(None)
    }

    /// Same, with the browser's language (`Some("ko-KR")`: its UI and the
    /// `Accept-Language` it sends, `ko-KR,ko`).
    pub fn start_in_language(language: Option<&str>) -> Result<Browser> {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start chromedriver (apt-get install chromium chromium-driver)")?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let profile =
            std::env::temp_dir().join(format!("wr-chromium-{}-{port}", std::process::id()));
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http::get(addr, "/status", &[]).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=900,700".into(),
            format!("--user-data-dir={}", browser.profile.display()),
        ];
        let mut prefs = json!({});
        if let Some(language) = language {
            let primary = language.split('-').next().unwrap_or(language);
            let accept = format!("{language},{primary}");
            args.push(format!("--lang={language}"));
            args.push(format!("--accept-lang={accept}"));
            prefs = json!({"intl": {"accept_languages": accept}});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": args,
            "prefs": prefs,
        }}}});
        let created = browser.command("POST", "/session", Some(caps))?;
        browser.session = created["sessionId"]
            .as_str()
            .context("no session id")?
            .to_owned();
        Ok(browser)
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &[u8])] = &[("content-type", b"application/json")];
        let r = http::request(self.addr, method, path, headers, body.as_bytes())?;
        let v = r.json();
        if r.status != 200 {
            bail!("webdriver {method} {path}: {} {v}", r.status);
        }
        Ok(v["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Navigates to `url`.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.command(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        )
        .map(|_| ())
    }

    /// The current URL.
    pub fn url(&self) -> Result<String> {
        Ok(self
            .command("GET", &self.session_path("/url"), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Runs a script and returns its value.
    pub fn eval(&self, script: &str) -> Result<Value> {
        self.command(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns something truthy, or fails after `limit`.
    pub fn wait_for(&self, script: &str, limit: Duration) -> Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.eval(script).unwrap_or(Value::Null);
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {script}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sets the window's size in CSS pixels (a phone: 390 × 844).
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.command(
            "POST",
            &self.session_path("/window/rect"),
            Some(json!({"width": width, "height": height})),
        )
        .map(|_| ())
    }

    /// Saves a screenshot of the page as `target/test-output/<name>`; with
    /// `WR_UPDATE_DOCS_IMAGES=1` and `for_docs`, also as the documentation's
    /// `docs/img/<name>`.
    pub fn save_screenshot(&self, name: &str, for_docs: bool) -> Result<()> {
        let png = self.screenshot()?;
        let out = crate::fixtures::workspace_root().join("target/test-output");
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join(name), &png)?;
        if for_docs && updating_docs_images() {
            std::fs::write(
                crate::fixtures::workspace_root()
                    .join("docs/img")
                    .join(name),
                &png,
            )?;
        }
        Ok(())
    }

    /// A PNG screenshot of the page.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let b64 = self.command("GET", &self.session_path("/screenshot"), None)?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or_default())?)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.command("DELETE", &self.session_path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Whether this run rewrites the documentation's screenshots (`WR_UPDATE_DOCS_IMAGES=1`).
pub fn updating_docs_images() -> bool {
    std::env::var("WR_UPDATE_DOCS_IMAGES").as_deref() == Ok("1")
}
