//! Stage calls of the pipeline that touch the request context: the content filter's verdict
//! and settling reservations.

use super::*;

impl Gateway {
    /// Stage 3: blocks, or records warnings and audited bypasses.
    pub(super) fn content_filter(
        &self,
        rt: &Runtime,
        consumer: &Consumer,
        view: &RequestView,
        ctx: &mut RequestCtx,
        extra: &mut Extra,
    ) -> Result<(), GatewayError> {
        let verdict = rt.config.filter.check(view.texts(), consumer.role);
        if let Some(m) = metrics::get() {
            for (rules, action) in [
                (verdict.blocked.iter().copied().collect::<Vec<_>>(), "block"),
                (verdict.warned.clone(), "warn"),
                (verdict.audited.clone(), "audit"),
            ] {
                for r in rules {
                    m.filter.with_label_values(&[r.id.as_str(), action]).inc();
                }
            }
        }
        if let Some(rule) = verdict.blocked {
            ctx.filter = "blocked";
            ctx.filter_rule = Some(rule.id.clone());
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
        ctx.filter = if !verdict.warned.is_empty() {
            let ids: Vec<&str> = verdict.warned.iter().map(|r| r.id.as_str()).collect();
            extra.push("x-tollgate-filter-warning", ids.join(","));
            ctx.filter_rule = Some(ids.join(","));
            "warned"
        } else if !verdict.audited.is_empty() {
            ctx.filter_rule = Some(
                verdict
                    .audited
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            "audited"
        } else {
            "passed"
        };
        Ok(())
    }

    /// Settles a reservation still open when the request ends early or streams: released if no
    /// backend saw the request; otherwise the known usage, else the worst case (estimated).
    pub(super) async fn settle_open(&self, ctx: &mut RequestCtx) {
        if let Some(r) = ctx.reservation.take() {
            let now = unix_now();
            if ctx.upstream_called {
                let usage = ctx.usage.unwrap_or_else(|| r.worst_case());
                ctx.cost_nanos = Some(accounting::settle(&self.state, &r, usage, now).await);
                ctx.usage = Some(usage);
            } else {
                accounting::release(&self.state, &r, now).await;
            }
        }
    }

    pub(super) async fn settle_now(&self, ctx: &mut RequestCtx, usage: Usage) -> u64 {
        let cost = match ctx.reservation.take() {
            Some(r) => accounting::settle(&self.state, &r, usage, unix_now()).await,
            None => 0,
        };
        ctx.usage = Some(usage);
        ctx.cost_nanos = Some(cost);
        cost
    }

    /// A cached answer another instance stored in Redis (`state.shared_cache`), copied into the
    /// local cache; `None` on a miss or when Redis is unavailable (the cache fails open).
    pub(super) async fn shared_cache_get(
        &self,
        key: &crate::state::cache::CacheKey,
        cfg: &crate::config::CacheConfig,
    ) -> Option<Entry> {
        let shared = self.state.shared.as_ref().filter(|s| s.cache)?;
        let raw = shared.store.cache_get(&crate::digest::to_hex(key)).await?;
        let entry = crate::state::cache::decode_shared(&raw, Instant::now())?;
        self.state.cache.put(*key, entry.clone(), cfg);
        Some(entry)
    }

    /// Stores an answer in Redis for the other instances, in the background: best effort, and
    /// the client's answer never waits for it.
    pub(super) fn shared_cache_put(
        &self,
        key: &crate::state::cache::CacheKey,
        entry: &Entry,
        cfg: &crate::config::CacheConfig,
    ) {
        if !self.state.shared.as_ref().is_some_and(|s| s.cache)
            || entry.body.len() > cfg.max_entry_bytes
        {
            return;
        }
        let raw = crate::state::cache::encode_shared(entry, cfg.ttl);
        let key = crate::digest::to_hex(key);
        let ttl = cfg.ttl;
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            if let Some(shared) = &state.shared {
                shared.store.cache_put(&key, &raw, ttl).await;
            }
        });
    }
}
