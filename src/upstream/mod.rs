//! The backend side: resolving its name ([`dns`]), the peer to connect to and the request header
//! it gets ([`peer`]: TLS, timeouts, header hygiene), forwarding over Pingora's connector and the
//! gateway's own pool of idle HTTP/1.x connections ([`pool`]) and reading or piping the answer
//! ([`forward`]), the active health checks ([`health`]), and the external guardrail service ([`guardrail`]), called
//! with the request's texts before any backend is; AWS SigV4 signing for Bedrock backends
//! ([`sigv4`]); the budget alert webhook ([`webhook`]), posted from a background task.

pub mod dns;
pub mod forward;
pub mod guardrail;
pub mod health;
pub mod peer;
pub mod pool;
pub mod sigv4;
pub mod webhook;
