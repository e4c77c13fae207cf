//! Settling what a request reserved: at once for a whole answer, in `logging` for everything
//! still open (a stream, a client that left, an upstream failure after the request was sent).
//! Attempts that reached a backend and failed without an answer are charged on top, each at its
//! worst case: the metering target is never to charge less than the backends bill.

use super::ctx::RequestCtx;
use super::Gateway;
use crate::stages::admission::{self, Reservation, Settled};
use crate::state::unix_now;
use crate::trace::Settlement;
use crate::usage::Usage;
use std::time::Instant;

impl Gateway {
    /// Settles a reservation still open when the request ends early or streams: released if no
    /// backend saw the request; otherwise the known usage, else the worst case (estimated).
    pub(super) async fn settle_open(&self, ctx: &mut RequestCtx) {
        if let Some(r) = ctx.reservation.take() {
            let start = ctx.trace.is_some().then(Instant::now);
            let now = unix_now();
            if ctx.upstream_called || ctx.orphaned > 0 {
                let answered = match (ctx.upstream_called, ctx.usage) {
                    (false, _) => Usage::default(),
                    (true, Some(u)) => u,
                    (true, None) => r.worst_case(),
                };
                let usage = with_orphans(answered, &r, ctx.orphaned);
                let settled = admission::settle(&self.state, &r, usage, now).await;
                ctx.cost_nanos = Some(settled.cost);
                ctx.usage = Some(usage);
                traced(ctx, start, ctx.upstream_called.then_some(answered));
            } else {
                admission::release(&self.state, &r, now).await;
                traced(ctx, start, None);
            }
        }
    }

    /// Settles the request's reservation with `usage` now; returns what it charged and where
    /// the consumer's windows stand.
    pub(super) async fn settle_now(&self, ctx: &mut RequestCtx, usage: Usage) -> Settled {
        let (usage, settled) = match ctx.reservation.take() {
            Some(r) => {
                let start = ctx.trace.is_some().then(Instant::now);
                let answered = usage;
                let usage = with_orphans(usage, &r, ctx.orphaned);
                let settled = admission::settle(&self.state, &r, usage, unix_now()).await;
                traced(ctx, start, Some(answered));
                (usage, settled)
            }
            None => (
                usage,
                Settled {
                    cost: 0,
                    headroom: None,
                },
            ),
        };
        ctx.usage = Some(usage);
        ctx.cost_nanos = Some(settled.cost);
        settled
    }
}

/// With tracing on, the settlement's span (from `start` to now) and the usage the answering
/// backend reported.
fn traced(ctx: &mut RequestCtx, start: Option<Instant>, answered: Option<Usage>) {
    if let (Some(t), Some(start)) = (ctx.trace.as_deref_mut(), start) {
        t.settlement = Some(Settlement {
            start,
            end: Instant::now(),
        });
        t.answer_usage = answered;
    }
}

/// `usage` plus the worst case of each of `orphaned` attempts (marked estimated when any).
fn with_orphans(usage: Usage, r: &Reservation, orphaned: u32) -> Usage {
    if orphaned == 0 {
        return usage;
    }
    let worst = r.worst_case();
    let n = u64::from(orphaned);
    Usage {
        input: usage.input.saturating_add(worst.input.saturating_mul(n)),
        output: usage.output.saturating_add(worst.output.saturating_mul(n)),
        estimated: true,
        ..usage
    }
}
