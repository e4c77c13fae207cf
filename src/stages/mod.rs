//! The policy stages of the request pipeline, each a plain decision over plain data (no
//! `Session`, no socket), unit-tested on its own:
//!
//! - [`auth`]: the presented key → a consumer;
//! - [`admission`]: the model allowlist, the context and choice limits, the output cap, and the
//!   reservation of the worst case in every token window and against the budget (then its
//!   settlement);
//! - [`filter`]: the organisation's content filter, graded by role;
//! - [`cache`]: whether and under which key the response cache is used;
//! - [`routing`]: which backends may serve a request, and the weighted pick among them.
//!
//! Stages read the protocol's view and the configuration, and the state they decide on; they
//! never import the gateway that sequences them.

pub mod admission;
pub mod auth;
pub mod cache;
pub mod classifier;
pub mod filter;
pub mod output;
pub mod routing;
