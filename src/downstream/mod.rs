//! The client side of the consumer plane: its connections below HTTP ([`connections`]: header
//! deadline, idle cap, Pingora's own answers replaced), reading a request body bounded
//! ([`body`]), writing answers with the headers every answer carries ([`response`]), and TLS on
//! the listeners ([`tls`]: the live certificate, client certificates).

pub mod body;
pub mod client_addr;
pub mod connections;
pub mod proxied;
pub mod proxy_protocol;
pub mod response;
pub mod tls;
