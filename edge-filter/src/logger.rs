//! The `log` crate's records, written to Envoy's log through `proxy_log`.

use crate::host;

/// proxy-wasm's log levels.
const TRACE: u32 = 0;
const DEBUG: u32 = 1;
const INFO: u32 = 2;
const WARN: u32 = 3;
const ERROR: u32 = 4;
const CRITICAL: u32 = 5;

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => TRACE,
            log::Level::Debug => DEBUG,
            log::Level::Info => INFO,
            log::Level::Warn => WARN,
            log::Level::Error => ERROR,
        };
        host::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Sends `log` records at info and above to the host, and a panic's message at
/// critical level before the VM traps (a panic must never happen; if one does, the
/// log says where). Only the first call has an effect.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
        std::panic::set_hook(Box::new(|panic| host::log(CRITICAL, &panic.to_string())));
    }
}
