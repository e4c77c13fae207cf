//! Diagnostic logging setup (`RUST_LOG`, default `info`).
//!
//! Pingora's own modules are capped at `info`: at `debug`/`trace` they print request headers,
//! which carry API keys, and secrets must never reach a log.

use log::LevelFilter;

pub fn init() {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    for module in [
        "pingora",
        "pingora_core",
        "pingora_proxy",
        "pingora_http",
        "pingora_pool",
        "pingora_load_balancing",
        "pingora_runtime",
        "pingora_rustls",
        "pingora_cache",
    ] {
        builder.filter_module(module, LevelFilter::Info);
    }
    builder.format_timestamp_millis();
    // A second init (e.g. in tests) is harmless.
    let _ = builder.try_init();
}
