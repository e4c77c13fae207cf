//! Tollgate: an AI gateway on Pingora.
//!
//! The request pipeline (see `docs/architecture.md`) is a sequence of plain decision functions,
//! one module per stage, sequenced by [`gateway::Gateway`], the `ProxyHttp` implementation.
//!
//! Layers, bottom up (a module imports only from its own layer or below):
//! 1. [`digest`], [`config`];
//! 2. [`usage`], [`error`], [`metrics`];
//! 3. [`state`];
//! 4. [`protocol`] (the wire formats), then [`stages`] (the policy decisions);
//! 5. [`runtime`] (a configuration and what is compiled from it);
//! 6. [`upstream`], [`downstream`], [`access_log`], [`reports`], [`trace`];
//! 7. [`gateway`], [`admin`] (with [`admin_keys`]), [`reload`];
//! 8. [`server`], [`cli`] (with [`keys_cli`] and [`cli_spend`], over [`admin_client`]). [`mock`] stands alone.

pub mod access_log;
pub mod admin;
pub mod admin_client;
pub mod admin_keys;
pub mod cli;
pub mod cli_spend;
pub mod config;
pub mod digest;
pub mod downstream;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod keys_cli;
pub mod logging;
pub mod metrics;
pub mod mock;
pub mod protocol;
pub mod reload;
pub mod reports;
pub mod runtime;
pub mod server;
pub mod stages;
pub mod state;
pub mod trace;
pub mod upstream;
pub mod usage;
