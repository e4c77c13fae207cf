//! Tollgate: an AI gateway on Pingora.
//!
//! The request pipeline (see `docs/architecture.md`) is a sequence of plain decision functions,
//! one module per stage, sequenced by [`proxy::Gateway`], the `ProxyHttp` implementation.

pub mod access_log;
pub mod accounting;
pub mod admin;
pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod connections;
pub mod digest;
pub mod error;
pub mod filter;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod health_check;
pub mod logging;
pub mod metrics;
pub mod mock;
pub mod proxy;
pub mod reload;
pub mod request;
pub mod response;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod sse;
pub mod state;
pub mod upstream;
