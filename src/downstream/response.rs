//! Writing answers to the client: whole JSON responses, and the headers every answer carries
//! (`x-ratelimit-*`, `x-tollgate-cache`, `x-tollgate-cost-usd`, budget warnings, `Retry-After`).

use crate::error::GatewayError;
use crate::state::limits::Headroom;
use crate::state::spend::{usd, Standing};
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// Extra response headers collected along the pipeline.
#[derive(Debug, Default, Clone)]
pub struct Extra(Vec<(&'static str, String)>);

impl Extra {
    pub fn push(&mut self, name: &'static str, value: String) {
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, value));
    }

    /// Adds `value` to the list `name` holds (comma-separated), or sets it.
    pub fn append(&mut self, name: &'static str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(value);
            }
            None => self.0.push((name, value.to_string())),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The tightest token window.
    pub fn rate_limit(&mut self, h: &Headroom) {
        self.push("x-ratelimit-limit-tokens", h.limit.to_string());
        self.push("x-ratelimit-remaining-tokens", h.remaining.to_string());
        self.push("x-ratelimit-reset-tokens", format!("{}s", h.resets_in));
    }

    pub fn budget_warning(&mut self, s: &Standing) {
        self.push(
            "x-tollgate-budget-warning",
            format!(
                "At {}% of daily budget (${} / ${})",
                s.percent_used(),
                usd(s.spent, 4),
                usd(s.budget, 2)
            ),
        );
    }

    pub fn cache(&mut self, outcome: &'static str) {
        self.push("x-tollgate-cache", outcome.to_string());
    }

    /// The request's cost in dollars (nano-dollar precision rounded to micro-dollars).
    pub fn cost(&mut self, nanos: u64) {
        self.push("x-tollgate-cost-usd", usd(nanos, 6));
    }

    /// Headers for an error: `Retry-After`, and the window that refused a rate-limited request.
    pub fn for_error(e: &GatewayError) -> Extra {
        let mut x = Extra::default();
        if let Some(secs) = e.retry_after() {
            x.push("retry-after", secs.to_string());
        }
        if let GatewayError::MethodNotAllowed { allow } = e {
            x.push("allow", (*allow).to_string());
        }
        if let GatewayError::RateLimited {
            limit,
            remaining,
            retry_after,
            ..
        } = e
        {
            x.push("x-ratelimit-limit-tokens", limit.to_string());
            x.push("x-ratelimit-remaining-tokens", remaining.to_string());
            x.push("x-ratelimit-reset-tokens", format!("{retry_after}s"));
        }
        x
    }

    pub fn apply(&self, h: &mut ResponseHeader) -> Result<(), GatewayError> {
        for (k, v) in &self.0 {
            h.insert_header(*k, v.as_str())
                .map_err(|_| GatewayError::Internal)?;
        }
        Ok(())
    }
}

/// Writes a complete JSON response.
pub async fn write_json(
    session: &mut Session,
    status: u16,
    body: Bytes,
    extra: &Extra,
) -> pingora::Result<()> {
    let mut h = ResponseHeader::build(status, Some(3 + extra.0.len()))?;
    h.insert_header("content-type", "application/json")?;
    h.insert_header("content-length", body.len().to_string())?;
    for (k, v) in &extra.0 {
        h.insert_header(*k, v.as_str())?;
    }
    write_whole(session, h, body).await
}

/// Writes a prepared header and a whole body.
pub async fn write_whole(
    session: &mut Session,
    header: ResponseHeader,
    body: Bytes,
) -> pingora::Result<()> {
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}
