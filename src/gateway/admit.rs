//! The admission phases of `request_filter`: accept the request (route, framing, declared size),
//! authenticate it, screen its body (parse, model allowlist, context, content filter, output cap)
//! and reserve its worst case. Each refusal is a `GatewayError`, rendered by the caller.

use super::answer::{self, Stage};
use super::ctx::{FilterOutcome, RequestCtx};
use super::Gateway;
use crate::access_log::{ClassifierEntry, GuardrailEntry};
use crate::config::filter::{Action, Category};
use crate::config::screen::Mode;
use crate::config::{Consumer, Role};
use crate::digest::KeyDigest;
use crate::downstream::body::{self, Declared};
use crate::downstream::response::Extra;
use crate::downstream::{client_addr, tls};
use crate::error::GatewayError;
use crate::metrics;
use crate::protocol::translate::pair::Neutral;
use crate::protocol::{self, RequestView, Route, Text};
use crate::runtime::Runtime;
use crate::stages::admission::{self, OutputCap};
use crate::stages::auth;
use crate::stages::filter::{Filter, Verdict};
use crate::stages::output;
use crate::stages::routing;
use crate::state::keys::IssuedKeys;
use crate::state::unix_now;
use crate::upstream::guardrail::Verdict as Said;
use bytes::Bytes;
use pingora::proxy::Session;
use std::sync::Arc;

/// A request admission let through, as the later phases need it.
pub(super) struct Admitted {
    pub consumer: Arc<Consumer>,
    pub route: Route,
    pub view: RequestView,
    /// The body as the client sent it.
    pub raw: Bytes,
    /// Counted once: it walks every text of the prompt.
    pub prompt_estimate: u64,
    pub cap: OutputCap,
    /// Headers every answer to it carries (rate limits, warnings, cache, cost).
    pub extra: Extra,
    /// The request in the neutral form, once a backend of another dialect needs it.
    pub neutral: Neutral,
}

/// The route, with the framing and declared size checked first: smuggling shapes and oversized
/// header blocks are refused (and the connection is not reused after the answer), an oversized
/// upload before anything is read or continued.
pub(super) fn accept(
    session: &mut Session,
    ctx: &mut RequestCtx,
    max_body_bytes: usize,
) -> Result<(Route, Declared), GatewayError> {
    let req = session.req_header();
    let route = Route::resolve(&req.method, req.uri.path())?;
    ctx.route = Some(route);
    let raw_head = || {
        session
            .as_downstream()
            .as_http1()
            .map(|h| h.get_headers_raw_bytes())
    };
    if let Err(e) = body::check_framing(&req.headers, raw_head) {
        session.set_keepalive(None);
        return Err(e);
    }
    let declared = body::check_declared(
        req.headers
            .get(http::header::CONTENT_LENGTH)
            .map(|v| v.as_bytes()),
        max_body_bytes,
    )?;
    Ok((route, declared))
}

/// Who is asking, below the key, recorded for every request (refusals included): the client's
/// address (the peer, or, from a trusted proxy, the client its `X-Forwarded-For` names), the
/// protocol, and the `X-Forwarded-For` the backends get when the gateway forwards one. With
/// `server.proxy_protocol` the PROXY header alone names the client: behind a layer-4 balancer
/// every `X-Forwarded-For` byte is the client's own, so it is never walked (a header naming no
/// source, `LOCAL`, would otherwise let the client choose its address).
pub(super) fn identify(
    session: &Session,
    server: &crate::config::ServerConfig,
    ctx: &mut RequestCtx,
) {
    let downstream = session.as_downstream();
    ctx.http_version = match (downstream.is_http2(), session.req_header().version) {
        (true, _) => "2",
        (false, http::Version::HTTP_10) => "1.0",
        _ => "1.1",
    };
    ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let Some(peer) = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_canonical())
    else {
        return;
    };
    let trusted = !server.proxy_protocol && server.trusted_proxies.contains(peer);
    // An untrusted peer's chain is neither believed nor passed on: not even read.
    let forwarded: Vec<&[u8]> = if trusted {
        let values = session.req_header().headers.get_all("x-forwarded-for");
        values.iter().map(|v| v.as_bytes()).collect()
    } else {
        Vec::new()
    };
    let client = if trusted {
        client_addr::client_ip(peer, &forwarded, &server.trusted_proxies)
    } else {
        peer
    };
    ctx.client = Some(client);
    if server.forward_client_address {
        ctx.forwarded_for = Some(client_addr::forwarded_for(&forwarded, peer, trusted));
    }
}

/// A client on the deny list is refused before anything else is read.
pub(super) fn check_denied(
    server: &crate::config::ServerConfig,
    ctx: &RequestCtx,
) -> Result<(), GatewayError> {
    match ctx.client {
        Some(ip) if server.deny_ips.contains(ip) => Err(GatewayError::ClientDenied),
        _ => Ok(()),
    }
}

/// A consumer whose key is bound to addresses (`allowed_ips`) is refused from any other.
pub(super) fn check_address(consumer: &Consumer, ctx: &RequestCtx) -> Result<(), GatewayError> {
    if consumer.allowed_ips.is_empty()
        || ctx
            .client
            .is_some_and(|ip| consumer.allowed_ips.contains(ip))
    {
        return Ok(());
    }
    log::info!(
        target: "tollgate::audit",
        "key of consumer {} used from {} outside its allowed_ips: refused",
        consumer.id,
        ctx.client.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string())
    );
    Err(GatewayError::AddressNotAllowed {
        consumer: consumer.id.clone(),
    })
}

/// The consumer whose key the request presents (401 for every kind of failure): a configured
/// key first, then an issued one (503 when the shared store cannot vouch for it); either sets
/// the request's key id.
/// With mutual TLS, a consumer may be known by its verified client certificate instead of a
/// key, and a consumer bound to a certificate is refused without it, key or not (403).
pub(super) async fn authenticate(
    session: &mut Session,
    rt: &Runtime,
    issued: &IssuedKeys,
    ctx: &mut RequestCtx,
) -> Result<Arc<Consumer>, GatewayError> {
    ctx.mark();
    // Hashed at once: nothing borrowed from the session is held across the lookup below.
    let presented = auth::presented_key(&session.req_header().headers)
        .map(|k| (KeyDigest::of(k), crate::digest::is_issued_key_shape(k)));
    let consumer = match presented {
        Some((digest, issuable)) => by_key(&digest, issuable, rt, issued, ctx).await?,
        None => {
            let peer = tls::peer_identity(session.digest());
            let cert = peer.map(|p| auth::Certificate {
                subject: &p.subject,
                uris: &p.uris,
            });
            cert.and_then(|c| rt.keys.by_certificate(c))
                .cloned()
                .ok_or(GatewayError::Unauthorized)?
        }
    };
    ctx.consumer = Some(consumer.id.clone());
    if let Some(binding) = &consumer.client_cert {
        let peer = tls::peer_identity(session.digest());
        if !peer.is_some_and(|p| binding.matches(&p.subject, &p.uris)) {
            return Err(GatewayError::CertificateRequired {
                consumer: consumer.id.clone(),
            });
        }
    }
    ctx.phase("auth");
    Ok(consumer)
}

/// The consumer a presented key's digest names: one lookup among the configured keys, then, for
/// a key shaped as the gateway issues them (`issuable`), one among the issued keys (in memory;
/// Redis only for a digest this instance has not seen). Any other unknown key is refused without
/// asking Redis: a stream of made-up keys costs no Redis round trip and is told 401 even while
/// Redis is down.
async fn by_key(
    digest: &KeyDigest,
    issuable: bool,
    rt: &Runtime,
    issued: &IssuedKeys,
    ctx: &mut RequestCtx,
) -> Result<Arc<Consumer>, GatewayError> {
    let now = unix_now();
    if let Some((id, consumer)) = rt.keys.find(digest, now) {
        ctx.key_id = Some(id);
        return Ok(Arc::clone(consumer));
    }
    if !issuable {
        return Err(GatewayError::Unauthorized);
    }
    let entry = issued
        .find(digest)
        .await
        .map_err(|_| GatewayError::StateUnavailable { retry_after: 1 })?
        .ok_or(GatewayError::Unauthorized)?;
    let key = &entry.record;
    let consumer = auth::issued_consumer(key, digest, now, &rt.keys)
        .cloned()
        .ok_or(GatewayError::Unauthorized)?;
    entry.touch(now);
    ctx.key_id = Some(auth::KeyId::Named(Arc::clone(&key.id)));
    ctx.key_models = (!key.models.is_empty()).then(|| Arc::clone(&key.models));
    Ok(consumer)
}

/// Parses the body and decides whether it may go ahead, cheapest checks first: the model
/// allowlist, the context of the backends serving it, the content filter, the output cap.
pub(super) fn screen(
    rt: &Runtime,
    ctx: &mut RequestCtx,
    consumer: Arc<Consumer>,
    route: Route,
    raw: Bytes,
) -> Result<Admitted, GatewayError> {
    let cfg = &rt.config;
    let mut extra = Extra::default();
    // Redacting rules rewrite the body before anything reads it: the filter, the estimate,
    // the cache key and the backend all see the redacted text.
    let raw = match &rt.filter.request_redact {
        Some(rules) => {
            let (redacted, found) = output::redact_json(rules, &raw);
            answer::report(
                Stage::Request,
                &found,
                None,
                &consumer,
                ctx,
                Some(&mut extra),
            )?;
            redacted.map_or(raw, Bytes::from)
        }
        None => raw,
    };
    let mut view = protocol::parse(route, &raw)?;
    view.bind_consumer(&consumer.id);
    let model = view.model();
    ctx.model = Some(model.to_string());
    admission::check_model(&consumer, model)?;
    admission::check_key_model(&consumer, ctx.key_models.as_deref(), model)?;
    let texts = view.texts();
    let prompt_estimate = view.prompt_estimate(&texts);
    let largest = routing::largest_context(&cfg.backends, model, route);
    admission::check_context(prompt_estimate, largest, model)?;
    // The body upload before this point is the client's time, not the filter's.
    ctx.mark();
    content_filter(&rt.filter, &consumer, &texts, ctx, &mut extra)?;
    drop(texts);
    ctx.phase("filter");
    let cap = admission::output_cap(
        view.client_output_cap(),
        view.choices(),
        cfg.server.max_choices,
        cfg.output_caps.cap_for(model),
    )?;
    Ok(Admitted {
        consumer,
        route,
        view,
        raw,
        prompt_estimate,
        cap,
        extra,
        neutral: Neutral::default(),
    })
}

/// The content filter's verdict on every text the model will read: a block refuses the
/// request; warnings go to the client in a header; audited bypasses are logged (rule ids only,
/// never the text). Counted per rule and action. The classifier's verdict, when the rules let
/// the request through, is applied the same way (see [`screened`]).
fn content_filter(
    filter: &Filter,
    consumer: &Consumer,
    texts: &[Text<'_>],
    ctx: &mut RequestCtx,
    extra: &mut Extra,
) -> Result<(), GatewayError> {
    let verdict = filter.check_request(texts, consumer.role);
    count(&verdict, consumer.role);
    if !verdict.shadowed.is_empty() {
        let shadow: Vec<String> = verdict
            .shadowed
            .iter()
            .map(|(r, a)| format!("{}:{}", r.id, a.as_str()))
            .collect();
        ctx.filter_shadow = Some(shadow.join(","));
    }
    for (rule, action) in &verdict.shadowed {
        log::info!(
            target: "tollgate::shadow",
            "shadow rule would {}: consumer={} role={} rule={}",
            action.as_str(),
            consumer.id,
            consumer.role.as_str(),
            rule.id
        );
    }
    if let Some(rule) = verdict.blocked {
        ctx.filter = FilterOutcome::Blocked;
        ctx.filter_rule = Some(rule.id.clone());
        ctx.filter_stage = Some("rules");
        return Err(GatewayError::ContentBlocked {
            rule: rule.id.clone(),
            severity: rule.severity.as_str(),
            reason: rule.reason.clone(),
        });
    }
    for rule in &verdict.audited {
        log::warn!(
            target: "tollgate::audit",
            "audited content-filter bypass: consumer={} role={} rule={}",
            consumer.id,
            consumer.role.as_str(),
            rule.id
        );
    }
    let ids = |rules: &[&crate::stages::filter::Rule]| {
        rules
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    ctx.filter = if !verdict.warned.is_empty() {
        let warned = ids(&verdict.warned);
        extra.push("x-tollgate-filter-warning", warned.clone());
        ctx.filter_rule = Some(warned);
        FilterOutcome::Warned
    } else if !verdict.audited.is_empty() {
        ctx.filter_rule = Some(ids(&verdict.audited));
        FilterOutcome::Audited
    } else {
        FilterOutcome::Passed
    };
    if ctx.filter != FilterOutcome::Passed {
        ctx.filter_stage = Some("rules");
    }
    if let Some(s) = verdict.classifier {
        ctx.classifier = Some(ClassifierEntry {
            score: (s.score * 1000.0).round() / 1000.0,
            threshold: s.threshold,
            action: s.action_str(),
            mode: s.mode.as_str(),
        });
        let detail = format!("score {:.3}, threshold {:.3}", s.score, s.threshold);
        screened(
            "classifier",
            s.action,
            s.mode,
            &detail,
            consumer,
            ctx,
            extra,
        )?;
    }
    Ok(())
}

/// Applies the action a screening stage after the rules (the classifier, the guardrail) chose
/// for a flagged request: a block refuses it naming the stage and its evidence; a warning joins
/// the rules' warning header; an audit is logged. In shadow mode nothing is applied: what would
/// have happened is logged.
pub(super) fn screened(
    stage: &'static str,
    action: Option<Action>,
    mode: Mode,
    detail: &str,
    consumer: &Consumer,
    ctx: &mut RequestCtx,
    extra: &mut Extra,
) -> Result<(), GatewayError> {
    let Some(action) = action else {
        return Ok(());
    };
    if mode == Mode::Shadow {
        log::info!(
            target: "tollgate::shadow",
            "shadow {stage} would {}: consumer={} role={} ({detail})",
            action.as_str(),
            consumer.id,
            consumer.role.as_str()
        );
        return Ok(());
    }
    // The stage joins the rules' list of the same outcome, or replaces a milder one.
    let mark = |outcome: FilterOutcome, ctx: &mut RequestCtx| {
        match &mut ctx.filter_rule {
            Some(ids) if ctx.filter == outcome => {
                ids.push(',');
                ids.push_str(stage);
            }
            _ => {
                ctx.filter_rule = Some(stage.to_string());
                ctx.filter_stage = Some(stage);
            }
        }
        ctx.filter = outcome;
    };
    match action {
        // A role policy never says `redact` (checked at load); were it to, the safe reading.
        Action::Block | Action::Redact => {
            ctx.filter = FilterOutcome::Blocked;
            ctx.filter_rule = Some(stage.to_string());
            ctx.filter_stage = Some(stage);
            return Err(GatewayError::ScreenBlocked {
                stage,
                detail: detail.to_string(),
            });
        }
        Action::Warn => {
            extra.append("x-tollgate-filter-warning", stage);
            mark(FilterOutcome::Warned, ctx);
        }
        Action::Audit => {
            log::warn!(
                target: "tollgate::audit",
                "audited content-filter bypass: consumer={} role={} stage={stage} ({detail})",
                consumer.id,
                consumer.role.as_str(),
            );
            if ctx.filter != FilterOutcome::Warned {
                mark(FilterOutcome::Audited, ctx);
            }
        }
        Action::Allow => {}
    }
    Ok(())
}

/// Counts a verdict's rules by action (rule ids are a configured, bounded label set), and the
/// classifier's verdict and score by role.
fn count(verdict: &Verdict<'_>, role: Role) {
    let Some(m) = metrics::get() else {
        return;
    };
    let blocked: Vec<_> = verdict.blocked.iter().copied().collect();
    for (rules, action) in [
        (&blocked, "block"),
        (&verdict.warned, "warn"),
        (&verdict.audited, "audit"),
    ] {
        for r in rules {
            m.filter
                .with_label_values(&["request", r.id.as_str(), action, "enforce"])
                .inc();
        }
    }
    for (r, action) in &verdict.shadowed {
        m.filter
            .with_label_values(&["request", r.id.as_str(), action.as_str(), "shadow"])
            .inc();
    }
    if let Some(s) = verdict.classifier {
        m.classifier
            .with_label_values(&[role.as_str(), s.action_str(), s.mode.as_str()])
            .inc();
        m.classifier_score
            .with_label_values(&[role.as_str()])
            .observe(s.score);
    }
}

impl Gateway {
    /// The external guardrail's verdict on every text the model will read, when one is
    /// configured: flagged, the role's `injection` action (see [`screened`]); no verdict, the
    /// role's fail mode (`closed`: refused with 503; `open`: let through, counted and logged).
    pub(super) async fn guard(
        &self,
        rt: &Runtime,
        ctx: &mut RequestCtx,
        req: &mut Admitted,
    ) -> Result<(), GatewayError> {
        let Some(cfg) = &rt.config.filter.guardrail else {
            return Ok(());
        };
        ctx.mark();
        let role = req.consumer.role;
        let texts = req.view.texts();
        let (verdict, took) = self.guardrail.check(cfg, &texts, role.as_str()).await;
        drop(texts);
        let fail_open = cfg.fail_open[role.index()];
        let (word, action) = match &verdict {
            Said::Clean => ("clean", "pass"),
            Said::Flagged(_) => (
                "flagged",
                rt.config.filter.action(role, Category::Injection).as_str(),
            ),
            Said::Failed(why) if fail_open => (*why, "fail_open"),
            Said::Failed(why) => (*why, "fail_closed"),
        };
        if let Some(m) = metrics::get() {
            m.guardrail_seconds
                .with_label_values(&[] as &[&str])
                .observe(took.as_secs_f64());
            m.guardrail
                .with_label_values(&[role.as_str(), action, cfg.mode.as_str()])
                .inc();
            if let Said::Failed(why) = verdict {
                m.guardrail_errors.with_label_values(&[why]).inc();
            }
        }
        ctx.guardrail = Some(GuardrailEntry {
            verdict: word,
            action,
            mode: cfg.mode.as_str(),
            ms: (took.as_secs_f64() * 10_000.0).round() / 10.0,
        });
        ctx.phase("guardrail");
        match verdict {
            Said::Clean => Ok(()),
            Said::Flagged(detail) => screened(
                "guardrail",
                Some(rt.config.filter.action(role, Category::Injection)),
                cfg.mode,
                &detail,
                &req.consumer,
                ctx,
                &mut req.extra,
            ),
            Said::Failed(why) => {
                log::warn!(
                    "guardrail gave no verdict ({why}) for consumer={} role={}: {}",
                    req.consumer.id,
                    role.as_str(),
                    if fail_open || cfg.mode == Mode::Shadow {
                        "let through (fail open)"
                    } else {
                        "refused (fail closed)"
                    }
                );
                if fail_open || cfg.mode == Mode::Shadow {
                    Ok(())
                } else {
                    ctx.filter_stage = Some("guardrail");
                    Err(GatewayError::GuardrailUnavailable { why })
                }
            }
        }
    }

    /// Reserves the request's worst case (prompt estimate + output cap) in every token window,
    /// one request in each request rate, and its price against every budget that applies; the
    /// answer carries where the consumer stands.
    pub(super) async fn reserve(
        &self,
        rt: &Runtime,
        ctx: &mut RequestCtx,
        req: &mut Admitted,
    ) -> Result<(), GatewayError> {
        let model = req.view.model();
        // Priced at the most any backend that may serve it charges; settled at the price of
        // the one that answered.
        let route = req.route;
        let price = rt
            .config
            .price_bound(model, |b| b.serves(model) && route.accepts(b.protocol));
        let ask = admission::Ask {
            model,
            price,
            prompt_estimate: req.prompt_estimate,
            output_cap: req.cap.reserved,
        };
        let admitted = admission::admit(
            &self.state,
            &req.consumer,
            &rt.config.alerts,
            ask,
            unix_now(),
        )
        .await?;
        ctx.headroom = Some(admitted.headroom);
        req.extra.rate_limit(&admitted.headroom);
        if admitted.standing.warn() {
            req.extra.budget_warning(&admitted.standing);
        }
        ctx.reservation = Some(admitted.reservation);
        ctx.phase("limits");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{screen, Admitted};
    use crate::error::GatewayError;
    use crate::gateway::ctx::{FilterOutcome, RequestCtx};
    use crate::protocol::Route;
    use crate::runtime::Runtime;
    use bytes::Bytes;
    use std::sync::Arc;

    fn runtime(extra_yaml: &str) -> Runtime {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"))
            .unwrap();
        crate::runtime::load_str(&format!("{text}\n{extra_yaml}"), &|_| None).unwrap()
    }

    fn screen_as(
        rt: &Runtime,
        key: &str,
        body: &str,
    ) -> (Result<Admitted, GatewayError>, RequestCtx) {
        let mut ctx = RequestCtx::new();
        let consumer = Arc::clone(rt.keys.authenticate(key.as_bytes()).unwrap());
        let out = screen(
            rt,
            &mut ctx,
            consumer,
            Route::ChatCompletions,
            Bytes::from(body.to_string()),
        );
        (out, ctx)
    }

    #[test]
    fn screening_refuses_in_order_and_records_the_filter_outcome() {
        let rt = runtime("");
        let chat = |model: &str, text: &str| {
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"{text}"}}]}}"#)
        };
        let (out, ctx) = screen_as(&rt, "key-team-intern", &chat("gpt-4", "SSN 123-45-6789"));
        assert_eq!(
            out.map(|_| ()).unwrap_err().status(),
            403,
            "allowlist first"
        );
        assert_eq!(ctx.filter, FilterOutcome::NotRun);
        let (out, ctx) = screen_as(&rt, "key-team-support", &chat("gpt-4", "SSN 123-45-6789"));
        assert!(matches!(
            out.map(|_| ()),
            Err(GatewayError::ContentBlocked { .. })
        ));
        assert_eq!(ctx.filter, FilterOutcome::Blocked);
        assert_eq!(ctx.filter_rule.as_deref(), Some("pii_input_ssn"));
        let (out, ctx) = screen_as(&rt, "key-team-support", &chat("gpt-4", "hello"));
        let admitted = out.map_err(|e| e.message()).unwrap();
        assert_eq!(ctx.filter, FilterOutcome::Passed);
        assert_eq!(
            admitted.cap.inject,
            Some(rt.config.output_caps.cap_for("gpt-4"))
        );
        assert_eq!(ctx.model.as_deref(), Some("gpt-4"));
    }
}
