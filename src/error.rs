//! The gateway's one error type, grouped by who is at fault, and the single place that maps an
//! error to what the client is told: HTTP status, message, `Retry-After`, and a short label for
//! logs and metrics. The JSON body wrapping the message is the route's dialect's
//! (`protocol::error_body`). Clients never see internal text, hostnames or upstream headers.

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Upstream,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    // --- the client's fault ---
    NotFound,
    /// The route exists; `allow` is the method it takes (sent in `Allow`).
    MethodNotAllowed {
        allow: &'static str,
    },
    /// A report the admin plane serves, asked of the consumer listener with
    /// `server.lab_endpoints` off.
    AdminOnly {
        path: &'static str,
    },
    /// Missing, malformed or unknown key: one message for all, so nothing is learned by probing.
    Unauthorized,
    /// The client's address is on the deny list (`server.deny_ips`).
    ClientDenied,
    /// The consumer's key was used from an address outside its `allowed_ips`.
    AddressNotAllowed {
        consumer: String,
    },
    /// The consumer is bound to a client certificate the connection did not present.
    CertificateRequired {
        consumer: String,
    },
    ModelNotAllowed {
        consumer: String,
        model: String,
    },
    /// No configured backend serves the model on this route.
    ModelNotServed {
        model: String,
    },
    BadRequest(String),
    /// The request has a field the backend's dialect cannot express (and the backend's
    /// `drop_unsupported` does not list it); `target` names that dialect.
    Untranslatable {
        field: String,
        target: String,
    },
    PayloadTooLarge {
        limit: usize,
    },
    /// The request's header or body did not arrive in time (too slow between reads, or in
    /// total).
    RequestTimeout {
        part: &'static str,
    },
    /// The request's header block is larger than the gateway accepts.
    HeadersTooLarge {
        limit: usize,
    },
    /// The content filter blocked the request.
    ContentBlocked {
        rule: String,
        severity: &'static str,
        reason: String,
    },
    /// A screening stage after the rules (the classifier, the external guardrail) found an
    /// attack; `detail` names the stage and its evidence (a score, the part flagged).
    ScreenBlocked {
        stage: &'static str,
        detail: String,
    },
    /// A rule that checks answers withheld the backend's answer.
    AnswerBlocked {
        rule: String,
    },
    /// A token window cannot hold the request's worst case now.
    RateLimited {
        window: &'static str,
        limit: u64,
        used: u64,
        needed: u64,
        remaining: u64,
        retry_after: u64,
    },
    /// This minute's requests are all taken (`who`: `consumer` or `team`).
    RequestRateLimited {
        who: &'static str,
        limit: u64,
        retry_after: u64,
    },
    /// A budget cannot hold the request's worst-case cost (nano-dollars): `scope` names it
    /// (`consumer daily`, `team monthly`, …), `team` the team for a team budget; the retry
    /// waits for its period to end.
    BudgetExceeded {
        scope: &'static str,
        team: Option<String>,
        spent: u64,
        budget: u64,
        needed: u64,
        retry_after: u64,
    },
    /// The client went away before the request could be answered.
    ClientGone,
    // --- the upstream's fault ---
    /// No backend serving the model is usable now (unhealthy or circuit open).
    NoBackendAvailable {
        retry_after: u64,
    },
    UpstreamUnreachable,
    UpstreamTimeout,
    UpstreamFailed(String),
    // --- ours ---
    /// More requests are in flight than `server.max_in_flight`.
    Overloaded {
        retry_after: u64,
    },
    /// The shared state (Redis) could not decide a limit or budget in time; fails closed.
    StateUnavailable {
        retry_after: u64,
    },
    /// The external guardrail could not give a verdict (`why`: timeout, unreachable, an error
    /// status, an unreadable answer) and the role's policy fails closed.
    GuardrailUnavailable {
        why: &'static str,
    },
    Internal,
}

impl GatewayError {
    pub fn fault(&self) -> Fault {
        use GatewayError::*;
        match self {
            NotFound
            | MethodNotAllowed { .. }
            | AdminOnly { .. }
            | Unauthorized
            | ClientDenied
            | AddressNotAllowed { .. }
            | CertificateRequired { .. }
            | ModelNotAllowed { .. }
            | ModelNotServed { .. }
            | BadRequest(_)
            | Untranslatable { .. }
            | PayloadTooLarge { .. }
            | HeadersTooLarge { .. }
            | RequestTimeout { .. }
            | ContentBlocked { .. }
            | ScreenBlocked { .. }
            | AnswerBlocked { .. }
            | RateLimited { .. }
            | RequestRateLimited { .. }
            | BudgetExceeded { .. }
            | ClientGone => Fault::Client,
            NoBackendAvailable { .. }
            | UpstreamUnreachable
            | UpstreamTimeout
            | UpstreamFailed(_) => Fault::Upstream,
            Overloaded { .. }
            | StateUnavailable { .. }
            | GuardrailUnavailable { .. }
            | Internal => Fault::Internal,
        }
    }

    pub fn status(&self) -> u16 {
        use GatewayError::*;
        match self {
            NotFound | AdminOnly { .. } => 404,
            MethodNotAllowed { .. } => 405,
            Unauthorized => 401,
            ClientDenied | AddressNotAllowed { .. } | CertificateRequired { .. } => 403,
            ModelNotAllowed { .. } => 403,
            ModelNotServed { .. } => 404,
            BadRequest(_) | Untranslatable { .. } => 400,
            PayloadTooLarge { .. } => 413,
            HeadersTooLarge { .. } => 431,
            RequestTimeout { .. } => 408,
            ContentBlocked { .. } | ScreenBlocked { .. } | AnswerBlocked { .. } => 400,
            RateLimited { .. } | RequestRateLimited { .. } | BudgetExceeded { .. } => 429,
            // nginx's convention for "client closed request"; never sent, only logged.
            ClientGone => 499,
            UpstreamUnreachable | NoBackendAvailable { .. } => 503,
            UpstreamTimeout => 504,
            UpstreamFailed(_) => 502,
            StateUnavailable { .. } | Overloaded { .. } | GuardrailUnavailable { .. } => 503,
            Internal => 500,
        }
    }

    /// Short, fixed label for logs and metrics.
    pub fn label(&self) -> &'static str {
        use GatewayError::*;
        match self {
            NotFound | AdminOnly { .. } => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            Unauthorized => "unauthorized",
            ClientDenied => "client_denied",
            AddressNotAllowed { .. } => "address_not_allowed",
            CertificateRequired { .. } => "certificate_required",
            ModelNotAllowed { .. } => "model_not_allowed",
            ModelNotServed { .. } => "model_not_served",
            BadRequest(_) => "bad_request",
            Untranslatable { .. } => "unsupported_field",
            PayloadTooLarge { .. } => "payload_too_large",
            HeadersTooLarge { .. } => "request_header_fields_too_large",
            RequestTimeout { .. } => "request_timeout",
            ContentBlocked { .. } | ScreenBlocked { .. } | AnswerBlocked { .. } => {
                "content_policy_violation"
            }
            RateLimited { .. } | RequestRateLimited { .. } => "rate_limit_exceeded",
            BudgetExceeded { .. } => "budget_exceeded",
            ClientGone => "client_gone",
            NoBackendAvailable { .. } => "no_backend_available",
            UpstreamUnreachable => "upstream_unreachable",
            UpstreamTimeout => "upstream_timeout",
            UpstreamFailed(_) => "upstream_failed",
            StateUnavailable { .. } => "state_unavailable",
            GuardrailUnavailable { .. } => "guardrail_unavailable",
            Overloaded { .. } => "overloaded",
            Internal => "internal",
        }
    }

    /// The message the client reads.
    pub fn message(&self) -> String {
        use GatewayError::*;
        match self {
            NotFound => "No such route. Use POST /v1/chat/completions or POST /chat.".into(),
            MethodNotAllowed { allow } => format!("Method not allowed on this route; use {allow}."),
            AdminOnly { path } => format!(
                "GET {path} is served by the admin plane (server.admin.listen, with the admin \
                 token). Set server.lab_endpoints: true to serve it on this listener as well."
            ),
            Unauthorized => {
                "Invalid or missing API key. Provide X-API-Key header or Authorization: Bearer."
                    .into()
            }
            ClientDenied => "Requests from this address are refused.".into(),
            AddressNotAllowed { consumer } => {
                format!("Consumer '{consumer}' may not be used from this address.")
            }
            CertificateRequired { consumer } => format!(
                "Consumer '{consumer}' must present its client certificate (mutual TLS)."
            ),
            ModelNotAllowed { consumer, model } => {
                format!("Consumer '{consumer}' is not authorized for model '{model}'.")
            }
            ModelNotServed { model } => format!("No backend serves model '{model}' on this route."),
            BadRequest(reason) => format!("Invalid request: {reason}"),
            Untranslatable { field, target } => format!(
                "Invalid request: `{field}` cannot be expressed for the {target} backend that \
                 serves this model (its drop_unsupported may list it to drop it instead)."
            ),
            PayloadTooLarge { limit } => {
                format!("Request body is larger than the gateway's limit of {limit} bytes.")
            }
            RequestTimeout { part } => format!("The request {part} did not arrive in time."),
            HeadersTooLarge { limit } => {
                format!("Request headers are larger than the gateway's limit of {limit} bytes.")
            }
            ContentBlocked {
                rule,
                severity,
                reason,
            } => format!(
                "Request blocked by content policy: {reason} (rule {rule}, severity {severity})"
            ),
            ScreenBlocked { stage, detail } => format!(
                "Request blocked by content policy: it reads as a prompt injection or jailbreak \
                 (stage {stage}, {detail})"
            ),
            AnswerBlocked { rule } => format!(
                "The answer was withheld by content policy (rule {rule}, on the response)."
            ),
            RateLimited {
                window,
                limit,
                used,
                needed,
                retry_after,
                ..
            } => format!(
                "Token rate limit exceeded (per-{window}). Used {used}/{limit} tokens; this request \
                 may use up to {needed}. Retry after {retry_after}s."
            ),
            RequestRateLimited {
                who,
                limit,
                retry_after,
            } => format!(
                "Request rate limit exceeded ({who} requests per minute). {limit} requests a \
                 minute are allowed. Retry after {retry_after}s."
            ),
            BudgetExceeded {
                scope,
                team,
                spent,
                budget,
                needed,
                ..
            } => {
                // The consumer's daily budget keeps the seed's wording.
                let title = match *scope {
                    "consumer daily" => "Daily",
                    "consumer monthly" => "Monthly",
                    "team daily" => "Team daily",
                    _ => "Team monthly",
                };
                let of_team = team
                    .as_deref()
                    .map(|t| format!(" (team {t})"))
                    .unwrap_or_default();
                format!(
                    "{title} budget exceeded. Spent ${} of ${} limit; this request may cost up \
                     to ${}. Budget: {scope}{of_team}.",
                    crate::config::money::usd(*spent, 4),
                    crate::config::money::usd(*budget, 2),
                    crate::config::money::usd(*needed, 4),
                )
            }
            ClientGone => "Client closed the request.".into(),
            NoBackendAvailable { retry_after } => format!(
                "No backend for this model is available (all unhealthy or cooling down). Retry after {retry_after}s."
            ),
            UpstreamUnreachable => "Backend is unreachable. Try again later.".into(),
            UpstreamTimeout => "Backend did not answer in time.".into(),
            UpstreamFailed(what) => format!("Backend error: {what}"),
            Overloaded { retry_after } => format!(
                "The gateway is handling as many requests as it is allowed to. Retry after {retry_after}s."
            ),
            StateUnavailable { retry_after } => format!(
                "Rate-limit and budget state is unavailable, so the request was not sent. Retry after {retry_after}s."
            ),
            GuardrailUnavailable { why } => format!(
                "The content guardrail service gave no verdict ({why}), and requests are not sent \
                 without one. Retry later."
            ),
            Internal => "Internal gateway error.".into(),
        }
    }

    /// A refusal by policy: the content filter, the model allowlist, a token window or the
    /// budget (what the seed's statistics count as "blocked").
    pub fn is_policy_refusal(&self) -> bool {
        matches!(
            self,
            GatewayError::ContentBlocked { .. }
                | GatewayError::ScreenBlocked { .. }
                | GatewayError::AnswerBlocked { .. }
                | GatewayError::ModelNotAllowed { .. }
                | GatewayError::RateLimited { .. }
                | GatewayError::RequestRateLimited { .. }
                | GatewayError::BudgetExceeded { .. }
        )
    }

    /// Seconds after which a retry may succeed (`Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GatewayError::RateLimited { retry_after, .. }
            | GatewayError::RequestRateLimited { retry_after, .. }
            | GatewayError::BudgetExceeded { retry_after, .. }
            | GatewayError::NoBackendAvailable { retry_after }
            | GatewayError::StateUnavailable { retry_after }
            | GatewayError::Overloaded { retry_after } => Some(*retry_after),
            GatewayError::UpstreamUnreachable | GatewayError::GuardrailUnavailable { .. } => {
                Some(1)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_design() {
        assert_eq!(GatewayError::Unauthorized.status(), 401);
        assert_eq!(
            GatewayError::ModelNotAllowed {
                consumer: "c".into(),
                model: "m".into()
            }
            .status(),
            403
        );
        assert_eq!(GatewayError::BadRequest("x".into()).status(), 400);
        assert_eq!(GatewayError::PayloadTooLarge { limit: 1 }.status(), 413);
        assert_eq!(GatewayError::UpstreamUnreachable.status(), 503);
        assert_eq!(GatewayError::UpstreamFailed("500".into()).status(), 502);
        assert_eq!(GatewayError::UpstreamTimeout.status(), 504);
    }
}
