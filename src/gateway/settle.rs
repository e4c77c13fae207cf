//! Settling what a request reserved: at once for a whole answer, in `logging` for everything
//! still open (a stream, a client that left, an upstream failure after the request was sent).

use super::ctx::RequestCtx;
use super::Gateway;
use crate::stages::admission;
use crate::state::unix_now;
use crate::usage::Usage;

impl Gateway {
    /// Settles a reservation still open when the request ends early or streams: released if no
    /// backend saw the request; otherwise the known usage, else the worst case (estimated).
    pub(super) async fn settle_open(&self, ctx: &mut RequestCtx) {
        if let Some(r) = ctx.reservation.take() {
            let now = unix_now();
            if ctx.upstream_called {
                let usage = ctx.usage.unwrap_or_else(|| r.worst_case());
                ctx.cost_nanos = Some(admission::settle(&self.state, &r, usage, now).await);
                ctx.usage = Some(usage);
            } else {
                admission::release(&self.state, &r, now).await;
            }
        }
    }

    /// Settles the request's reservation with `usage` now; returns the cost (nano-dollars).
    pub(super) async fn settle_now(&self, ctx: &mut RequestCtx, usage: Usage) -> u64 {
        let cost = match ctx.reservation.take() {
            Some(r) => admission::settle(&self.state, &r, usage, unix_now()).await,
            None => 0,
        };
        ctx.usage = Some(usage);
        ctx.cost_nanos = Some(cost);
        cost
    }
}
