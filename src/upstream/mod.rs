//! The backend side: resolving its name ([`dns`]), the peer to connect to and the request header
//! it gets ([`peer`]: TLS, timeouts, header hygiene), forwarding over Pingora's pooled connector
//! and reading or piping the answer ([`forward`]), and the active health checks ([`health`]).

pub mod dns;
pub mod forward;
pub mod health;
pub mod peer;
