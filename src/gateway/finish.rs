//! Finishing the response: the work `response_filter` and `response_body_filter` would do in a
//! textbook Pingora proxy. The backend's status counts for its circuit; a stream is piped event
//! by event through the protocol's tap (usage, delivered text, the gateway's own usage event
//! removed) and settled in `logging`; a whole answer is read, settled with its usage (or an
//! estimate, marked so), stored in the cache when it is a complete 200, and answered.

use super::admit::Admitted;
use super::answer::{self, Stage};
use super::ctx::{client_gone, ms_since, Failure, RequestCtx};
use super::failover::{outcome_of_status, within, Attempt};
use super::record;
use super::Gateway;
use crate::config::screen::Mode;
use crate::config::{Backend, Protocol};
use crate::downstream::response;
use crate::error::GatewayError;
use crate::metrics;
use crate::protocol::sse::SseTap;
use crate::protocol::{
    self, anthropic, lab, openai, provider, responses, translate, RequestView, Route,
};
use crate::runtime::Runtime;
use crate::stages::cache::CachePlan;
use crate::stages::output::{Finding, OutputAction, OutputRules};
use crate::state::cache::Entry;
use crate::state::limits::Headroom;
use crate::upstream::forward::PipeEnd;
use crate::usage::{estimate_tokens, Usage};
use bytes::Bytes;
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::Instant;

impl Gateway {
    /// Finishes the request with the answer `attempt` got.
    pub(super) async fn finish(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        req: Admitted,
        plan: CachePlan,
        attempt: Attempt<'_>,
    ) -> Result<(), Failure> {
        let status = attempt.upstream.status();
        if !(200..300).contains(&status) {
            // Providers do not bill failed or refused requests.
            ctx.usage = Some(Usage::default());
        }
        let outcome = outcome_of_status(status, attempt.upstream.retry_after());
        let Attempt {
            upstream,
            backend,
            permit,
            sent,
            deadline,
        } = attempt;
        permit.record(outcome, &rt.config.routing.circuit);
        // Settled at the price of the backend that answered (an alias priced by its target),
        // unless an earlier attempt may also have consumed: then at the reserved bound.
        if let (Some(r), 0) = (ctx.reservation.as_mut(), ctx.orphaned) {
            r.price = rt.config.price_on(req.view.model(), &backend);
        }
        let lab = matches!(req.view, RequestView::Lab(_));
        let answered = Answered {
            status,
            upstream,
            backend: &backend,
            sent,
            deadline,
        };
        if (400..500).contains(&status) && !lab {
            return self.answer_refusal(session, ctx, rt, req, answered).await;
        }
        if req.view.streaming() {
            return self.answer_stream(session, ctx, rt, req, answered).await;
        }
        let Answered { upstream, .. } = answered;
        // `/chat` is rewritten, so only a 2xx can become its answer; the other routes passed the
        // backend's own 4xx on above.
        let ok = if lab {
            (200..300).contains(&status)
        } else {
            status < 500
        };
        if !ok {
            upstream.discard().await;
            let what = if lab {
                status.to_string()
            } else {
                format!("status {status}")
            };
            return Err(GatewayError::UpstreamFailed(what).into());
        }
        let header = upstream.client_header(&backend.id)?;
        let read = upstream.read_all(rt.config.server.max_response_bytes, session);
        let body = within(deadline, read).await?;
        ctx.backend_ms = Some(ms_since(sent));
        let whole = Whole {
            status,
            header,
            body,
            backend: &backend,
        };
        self.answer_whole(session, ctx, rt, req, &plan, whole).await
    }

    /// Answers a backend's refusal (a 4xx): its own reason, with its type and message, reaches
    /// the client with credentials and account ids removed; a 401 or 403 is the gateway's
    /// credential or configuration at fault, so the client gets a 502 with the gateway's message
    /// and the backend's reason goes to the log. Nothing is billed.
    async fn answer_refusal(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        mut req: Admitted,
        refused: Answered<'_, '_>,
    ) -> Result<(), Failure> {
        let Answered {
            status,
            upstream,
            backend,
            deadline,
            ..
        } = refused;
        let mut header = upstream.client_header(&backend.id)?;
        let read = upstream.read_all(rt.config.server.max_response_bytes, session);
        let body = within(deadline, read).await?;
        let scrubbed = provider::scrub_error(&body);
        if status == 401 || status == 403 || provider::refused_key(backend, status, &body) {
            let reason = scrubbed.as_deref().map(String::from_utf8_lossy);
            log::warn!(
                "backend {} refused the gateway's credential ({status}): {}",
                backend.id,
                reason.as_deref().unwrap_or("no JSON reason")
            );
            return Err(GatewayError::UpstreamFailed(
                "the backend refused the gateway's credentials".into(),
            )
            .into());
        }
        self.settle_now(ctx, Usage::default(), status).await;
        req.extra.cost(0);
        let dialect = Route::dialect_for_path(session.req_header().uri.path());
        // A translated request's refusal is read in the backend's dialect and told in the
        // client's, status kept.
        let scrubbed = match scrubbed {
            Some(b) if translate::pair::translated(&req.view, backend.protocol) => {
                let message = translate::pair::error_message(&b)
                    .unwrap_or_else(|| format!("the backend refused the request ({status})"));
                Some(translate::pair::refusal(dialect, status, &message))
            }
            other => other,
        };
        let body = match scrubbed {
            Some(b) => b,
            None => {
                let e = GatewayError::UpstreamFailed(format!("status {status}"));
                header
                    .insert_header("content-type", "application/json")
                    .map_err(|_| GatewayError::Internal)?;
                protocol::error_body(&e, dialect)
            }
        };
        header
            .insert_header("content-length", body.len().to_string())
            .map_err(|_| GatewayError::Internal)?;
        req.extra.apply(&mut header)?;
        ctx.status = status;
        response::write_whole(session, header, body)
            .await
            .map_err(client_gone)
    }

    /// Pipes a stream to the client event by event through the protocol's tap; what it used is
    /// settled in `logging`.
    async fn answer_stream(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        req: Admitted,
        answered: Answered<'_, '_>,
    ) -> Result<(), Failure> {
        let Answered {
            status,
            upstream,
            backend,
            sent,
            ..
        } = answered;
        if status >= 500 {
            upstream.discard().await;
            return Err(GatewayError::UpstreamFailed(format!("status {status}")).into());
        }
        let model = backend_model(&req, backend);
        let mut tap = match req
            .view
            .stream_tap(backend.protocol, model, &req.raw, &req.neutral)
        {
            Ok(tap) => tap,
            Err(e) => {
                upstream.discard().await;
                return Err(e.into());
            }
        };
        let mut header = upstream.client_header(&backend.id)?;
        // The tap may remove events, so no length the backend declared can stand: the stream
        // goes out in chunks.
        header
            .insert_header("transfer-encoding", "chunked")
            .map_err(|_| GatewayError::Internal)?;
        if translate::pair::translated(&req.view, backend.protocol) {
            // A translated stream is server-sent events whatever the backend's framing.
            header
                .insert_header("content-type", "text/event-stream")
                .map_err(|_| GatewayError::Internal)?;
        }
        answered_model(&mut header, &req, backend)?;
        req.extra.apply(&mut header)?;
        ctx.status = status;
        if let Some(rules) = &rt.filter.output[req.consumer.role.index()] {
            tap = tap.with_checks(Arc::clone(rules));
        }
        let piped = upstream.pipe(header, session, &mut tap).await;
        // A translated stream whose backend never finished its answer is cut, however its body
        // ended: settled at the worst case, as a broken stream.
        let whole = tap.translated_whole();
        let complete = matches!(piped, Ok(PipeEnd::Complete)) && whole;
        self.stream_ended(ctx, &req, backend, sent, &tap, complete);
        let withheld = tap.blocked().map(str::to_string);
        if let Some(m) = metrics::get() {
            for delay in tap.hold_delays() {
                m.hold_back.observe(delay.as_secs_f64());
            }
        }
        // Headers are gone: what the rules did is counted and logged only.
        let _ = answer::report(
            Stage::Response,
            &tap.findings(),
            None,
            &req.consumer,
            ctx,
            None,
        );
        match piped? {
            PipeEnd::ClientGone => {
                // Gone, or too slow to read (a write stalled past `write_ms`): the connection
                // is not reused.
                session.set_keepalive(None);
                ctx.error = Some(GatewayError::ClientGone.label());
            }
            PipeEnd::Withheld => {
                // The stream ended early: settled at its worst case (the backend was cut off),
                // and the connection is not reused.
                session.set_keepalive(None);
                let e = GatewayError::AnswerBlocked {
                    rule: withheld.unwrap_or_default(),
                };
                ctx.error = Some(e.label());
            }
            PipeEnd::Complete if !whole => {
                // A translated stream the backend never finished: it ended with an error event.
                ctx.error = Some(GatewayError::UpstreamFailed(String::new()).label());
            }
            PipeEnd::Complete => {}
        }
        Ok(())
    }

    /// What a stream leaves for `logging` to settle: its own usage when it reported one. A
    /// stream that completed without one is estimated from the prompt and the output delivered
    /// (text, reasoning, tool-call arguments). A stream cut before its usage (the client left, or
    /// the backend broke off) may have cost the backend more than it delivered (tokens in
    /// flight, hidden reasoning): it is settled at the reservation's worst case, so the charge
    /// is never under the backend's bill. Either is marked estimated.
    fn stream_ended(
        &self,
        ctx: &mut RequestCtx,
        req: &Admitted,
        backend: &Backend,
        sent: Instant,
        tap: &SseTap,
        complete: bool,
    ) {
        ctx.backend_ms = Some(ms_since(sent));
        if let Some(first) = tap.first_chunk {
            let ttft = first.duration_since(sent).as_secs_f64();
            ctx.ttft_ms = Some(ttft * 1000.0);
            if let Some(m) = metrics::get() {
                m.ttft
                    .with_label_values(&[backend.id.as_str()])
                    .observe(ttft);
            }
        }
        if ctx.usage.is_some() {
            return;
        }
        if let Some(reported) = tap.usage() {
            ctx.usage = Some(reported);
            return;
        }
        if !complete {
            // Settled in `logging` at the worst case (see `settle_open`).
            return;
        }
        if let Some(m) = metrics::get() {
            m.streams_without_usage
                .with_label_values(&[backend.id.as_str()])
                .inc();
        }
        log::warn!(
            target: "tollgate::usage",
            "backend {} ended a stream without usage; settling on an estimate",
            backend.id
        );
        ctx.usage = Some(Usage::estimate(
            req.prompt_estimate,
            tap.delivered_chars().div_ceil(4),
        ));
    }

    /// Settles a whole answer, stores it when it may be cached, and answers the client.
    async fn answer_whole(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        mut req: Admitted,
        plan: &CachePlan,
        whole: Whole<'_>,
    ) -> Result<(), Failure> {
        let Whole {
            status,
            mut header,
            body,
            backend,
        } = whole;
        let translated = translate::pair::translated(&req.view, backend.protocol);
        let (body, answer_text, reported) = match &req.view {
            RequestView::Lab(_) if backend.protocol == Protocol::LabAgent => {
                let text = lab::answer_text(&body, backend.protocol)?;
                (body, Some(text), None)
            }
            _ if translated && (200..300).contains(&status) => {
                let mut answer = translate::pair::decode_answer(backend.protocol, &body)?;
                if answer.model.is_empty() {
                    backend_model(&req, backend).clone_into(&mut answer.model);
                }
                super::spans::note_answer(ctx, &answer.model, answer.finish);
                let client = translate::pair::Client::of(&req.view, &req.raw, &req.neutral)?;
                let text = matches!(client, translate::pair::Client::Lab).then(|| answer.text());
                let body = translate::pair::encode_answer(&client, &answer);
                (body, text, answer.usage)
            }
            _ => {
                let usage = req.view.reported_usage(&body);
                (body, None, usage)
            }
        };
        if translated {
            header
                .insert_header("content-type", "application/json")
                .map_err(|_| GatewayError::Internal)?;
        }
        answered_model(&mut header, &req, backend)?;
        let reported = ctx.usage.or(reported);
        let usage = reported.unwrap_or_else(|| match &answer_text {
            Some(text) => Usage::estimate(req.prompt_estimate, estimate_tokens(text)),
            None => self::estimated(ctx),
        });
        let settled = self.settle_now(ctx, usage, status).await;
        req.extra.cost(settled.cost);
        refresh_headroom(ctx, &mut req, settled.headroom);
        // Checked before the cache stores it: the cache keeps what the client receives.
        let (body, answer_text) = match &rt.filter.output[req.consumer.role.index()] {
            Some(rules) => checked(rules, body, answer_text, ctx, &mut req)?,
            None => (body, answer_text),
        };
        if status == 200 {
            if let Some(key) = plan.store_key() {
                let stored = answer_text.clone().map(Bytes::from).unwrap_or(body.clone());
                let entry = Entry {
                    body: stored,
                    expires: Instant::now() + rt.config.cache.ttl,
                    input_tokens: usage.input,
                    output_tokens: usage.output,
                };
                self.state.cache.store(key, entry, &rt.config.cache);
            }
        }
        ctx.status = status;
        let Some(text) = answer_text else {
            header
                .insert_header("content-length", body.len().to_string())
                .map_err(|_| GatewayError::Internal)?;
            req.extra.apply(&mut header)?;
            return response::write_whole(session, header, body)
                .await
                .map_err(client_gone);
        };
        let backend_ms = ctx.backend_ms.unwrap_or(0.0);
        let meta = record::metadata(
            ctx,
            &req.consumer,
            Some(&backend.id),
            backend_ms,
            &req.extra,
        );
        req.extra.push("x-tollgate-backend", backend.id.clone());
        response::write_json(session, 200, lab::answer(&text, meta), &req.extra)
            .await
            .map_err(client_gone)
    }
}

/// The answer as the client may read it, after the rules that check answers: the `/chat` text,
/// or the texts of the backend's JSON (redacted in place and the body written again only when a
/// redaction changed it). A body that is not JSON has no texts to check.
fn checked(
    rules: &Arc<OutputRules>,
    body: Bytes,
    text: Option<String>,
    ctx: &mut RequestCtx,
    req: &mut Admitted,
) -> Result<(Bytes, Option<String>), GatewayError> {
    if let Some(mut text) = text {
        let (found, blocked) = answer::check_whole(rules, vec![&mut text]);
        report_answer(&found, blocked, ctx, req)?;
        return Ok((body, Some(text)));
    }
    // Most answers match no rule, and then nothing is found or changed: every text is a string
    // value of the body, so one pass over those (no tree built) tells.
    if protocol::json::any_string_value(&body, |s| rules.any_match(s)) == Some(false) {
        return Ok((body, None));
    }
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Ok((body, None));
    };
    // The body is in the client's dialect: its own backend's, or translated into it.
    let texts = match &req.view {
        RequestView::Responses(_) => responses::answer_texts_mut(&mut v),
        RequestView::Chat(_) | RequestView::Embeddings(_) => openai::answer_texts_mut(&mut v),
        RequestView::Messages(_) => anthropic::answer_texts_mut(&mut v),
        RequestView::Lab(_) => match v.get_mut("response") {
            Some(serde_json::Value::String(s)) => vec![s],
            _ => Vec::new(),
        },
    };
    let (found, blocked) = answer::check_whole(rules, texts);
    let redacted = found
        .iter()
        .any(|f| f.mode == Mode::Enforce && f.action == OutputAction::Redact);
    report_answer(&found, blocked, ctx, req)?;
    if !redacted {
        return Ok((body, None));
    }
    let rewritten = serde_json::to_vec(&v).map_err(|_| GatewayError::Internal)?;
    Ok((Bytes::from(rewritten), None))
}

/// The model the backend was asked for: the alias's target, or the public name.
fn backend_model<'a>(req: &'a Admitted, backend: &'a Backend) -> &'a str {
    backend
        .renamed(req.view.model())
        .unwrap_or(req.view.model())
}

/// `x-tollgate-model`: the model the backend that answered was asked for (with
/// `x-tollgate-backend`, which answered a cross-provider pool's request).
fn answered_model(
    header: &mut pingora::http::ResponseHeader,
    req: &Admitted,
    backend: &Backend,
) -> Result<(), GatewayError> {
    header
        .insert_header("x-tollgate-model", backend_model(req, backend))
        .map_err(|_| GatewayError::Internal)
}

/// Reports what the rules on answers found in a whole answer (its headers are still to go).
fn report_answer(
    found: &[Finding],
    blocked: Option<String>,
    ctx: &mut RequestCtx,
    req: &mut Admitted,
) -> Result<(), GatewayError> {
    let extra = Some(&mut req.extra);
    answer::report(Stage::Response, found, blocked, &req.consumer, ctx, extra)
}

/// Reports the tightest window after settlement (`now`, read from the store that enforces the
/// limits), when the real usage replaced the reservation; the window that was tightest at
/// admission keeps its name.
fn refresh_headroom(ctx: &mut RequestCtx, req: &mut Admitted, now: Option<Headroom>) {
    if let (Some(at_admission), Some(now)) = (ctx.headroom, now) {
        req.extra.rate_limit(&Headroom {
            window: at_admission.window,
            ..now
        });
        ctx.headroom = Some(now);
    }
}

/// A backend's answer whose header has arrived, its body not read yet.
struct Answered<'u, 'b> {
    status: u16,
    upstream: crate::upstream::forward::Upstream<'u>,
    backend: &'b Backend,
    /// When the request went to the backend.
    sent: Instant,
    deadline: Option<Instant>,
}

/// A whole answer, read.
struct Whole<'a> {
    status: u16,
    header: pingora::http::ResponseHeader,
    body: Bytes,
    backend: &'a Backend,
}

/// The usage to settle on when a non-streamed OpenAI answer reports none: the reserved worst
/// case, never zero.
fn estimated(ctx: &RequestCtx) -> Usage {
    ctx.reservation
        .as_ref()
        .map(|r| r.worst_case())
        .unwrap_or_default()
}
