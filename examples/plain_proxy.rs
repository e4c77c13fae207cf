//! The yardstick of `loadtest/compare.sh`: the smallest textbook Pingora proxy. One fixed
//! upstream, Pingora's keep-alive pool, and nothing else: no authentication, no body inspection,
//! no logging, no metrics. What Tollgate costs above this is what its own work costs; what this
//! costs above nginx is the engine's (Pingora and tokio) floor.
//!
//! cargo run --release --example plain_proxy -- LISTEN UPSTREAM [THREADS]
//!
//! e.g. `plain_proxy 127.0.0.1:19606 127.0.0.1:19602 2`. Plain HTTP/1.1 on both sides; loopback
//! use only.

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::{Opt, ServerConf};
use std::process::ExitCode;

/// Sends every request to the one upstream it was started with.
struct Plain {
    upstream: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Plain {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(listen), Some(upstream)) = (args.first(), args.get(1)) else {
        eprintln!("usage: plain_proxy LISTEN UPSTREAM [THREADS]");
        return ExitCode::from(2);
    };
    let Ok(upstream) = upstream.parse() else {
        eprintln!("UPSTREAM must be an ip:port, got {upstream}");
        return ExitCode::from(2);
    };
    let threads = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(2);

    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Plain { upstream });
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever()
}
