//! Settling what a request reserved: at once for a whole answer, in `logging` for everything
//! still open (a stream, a client that left, an upstream failure after the request was sent).
//! Attempts that reached a backend and failed without an answer are charged on top, each at its
//! worst case: the metering target is never to charge less than the backends bill.
//!
//! Every settlement and release also writes the request's row to the spend ledger (the embedded
//! store) and waits for its commit, so a whole answer reaches the client only once its spend is
//! on disk.

use super::ctx::RequestCtx;
use super::Gateway;
use crate::stages::admission::{self, Reservation, Settled};
use crate::state::store::LedgerRow;
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
            let (usage, cost, answered) = if ctx.upstream_called || ctx.orphaned > 0 {
                let answered = match (ctx.upstream_called, ctx.usage) {
                    (false, _) => Usage::default(),
                    (true, Some(u)) => u,
                    (true, None) => r.worst_case(),
                };
                let usage = with_orphans(answered, &r, ctx.orphaned);
                let settled = admission::settle(&self.state, &r, usage, now).await;
                ctx.cost_nanos = Some(settled.cost);
                ctx.usage = Some(usage);
                (usage, settled.cost, ctx.upstream_called.then_some(answered))
            } else {
                admission::release(&self.state, &r, now).await;
                (Usage::default(), 0, None)
            };
            let outcome = ctx.error.unwrap_or("ok");
            let spent = Spent {
                usage,
                cost_nanos: cost,
                status: ctx.status,
                outcome,
            };
            self.record_spend(ctx, &r, spent, now).await;
            traced(ctx, start, answered);
        }
    }

    /// Settles the request's reservation with `usage` now, the backend having answered
    /// `status`; returns what it charged and where the consumer's windows stand.
    pub(super) async fn settle_now(
        &self,
        ctx: &mut RequestCtx,
        usage: Usage,
        status: u16,
    ) -> Settled {
        let (usage, settled) = match ctx.reservation.take() {
            Some(r) => {
                let start = ctx.trace.is_some().then(Instant::now);
                let answered = usage;
                let now = unix_now();
                let usage = with_orphans(usage, &r, ctx.orphaned);
                let settled = admission::settle(&self.state, &r, usage, now).await;
                let outcome = if (200..300).contains(&status) {
                    "ok"
                } else {
                    "backend_refused"
                };
                let spent = Spent {
                    usage,
                    cost_nanos: settled.cost,
                    status,
                    outcome,
                };
                self.record_spend(ctx, &r, spent, now).await;
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

    /// Releases the reservation of a request answered from the cache: it costs nothing.
    pub(super) async fn release_for_hit(&self, ctx: &mut RequestCtx) {
        if let Some(r) = ctx.reservation.take() {
            let now = unix_now();
            admission::release(&self.state, &r, now).await;
            let spent = Spent {
                usage: Usage::default(),
                cost_nanos: 0,
                status: 200,
                outcome: "cache_hit",
            };
            self.record_spend(ctx, &r, spent, now).await;
        }
    }

    /// Writes the request's ledger row and waits for its commit. A row that cannot be written
    /// is logged and counted; the request goes on (its spend still counts in memory and in
    /// Redis).
    async fn record_spend(&self, ctx: &RequestCtx, r: &Reservation, spent: Spent, now: u64) {
        let Some(store) = &self.state.store else {
            return;
        };
        let row = LedgerRow {
            at: now,
            day: r.day(),
            request_id: ctx.request_id.clone(),
            consumer: r.consumer.clone(),
            team: r.team_name.clone(),
            key_id: ctx
                .key_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            model: r.model.clone(),
            backend: ctx
                .backend
                .clone()
                .or_else(|| ctx.tried.last().cloned())
                .unwrap_or_default(),
            usage: spent.usage,
            cost_nanos: spent.cost_nanos,
            status: spent.status,
            outcome: spent.outcome,
        };
        if let Err(e) = store.record(row).await {
            log::error!("ledger row of request {} not recorded: {e}", ctx.request_id);
            if let Some(m) = crate::metrics::get() {
                m.store_errors.inc();
            }
        }
    }
}

/// What one request's settlement came to, for its ledger row.
struct Spent {
    usage: Usage,
    cost_nanos: u64,
    /// The status the client gets.
    status: u16,
    /// `ok`, `cache_hit`, `backend_refused`, or the error's label.
    outcome: &'static str,
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
