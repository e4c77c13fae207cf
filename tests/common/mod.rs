//! Test harness, split by concern: [`proc`] (the real `tollgate` binary as gateway, mock and demo
//! on free loopback ports, killed on drop; readiness polled, never assumed after a sleep),
//! [`http`] (a raw-socket HTTP/1.1 client and request bodies), [`config`] (keys, backends and the
//! gateway's YAML), [`load`] (concurrent bursts), [`pki`] (a test CA made with openssl) and
//! [`redis_server`] (a private Redis).
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod config;
pub mod http;
pub mod load;
pub mod pki;
pub mod proc;
pub mod redis_server;

pub use config::*;
pub use http::*;
pub use load::*;
pub use pki::*;
pub use proc::*;
pub use redis_server::*;
