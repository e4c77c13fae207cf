//! AWS Signature Version 4 for requests to a Bedrock backend, with the `aws-sigv4` crate.
//!
//! Input: the credentials, the region and service, and the request as it will be sent (method,
//! URL with its path already percent-encoded, headers including `host` and `content-type`, the
//! body). Decision: the headers to add — `x-amz-date`, `authorization`, and
//! `x-amz-security-token` when the credentials carry a session token (signed, as the AWS SDKs
//! do). `x-amz-content-sha256` is not sent: Bedrock, like every service but S3, hashes the body
//! itself. The settings are the SDKs' defaults for non-S3 services, notably the canonical path
//! encoded a second time (a model id's `%3A` is signed as `%253A`).
//!
//! Secrets stay in [`Secret`]s; nothing here prints them.

use crate::config::AwsAuth;
use crate::error::GatewayError;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign as sign_request, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::time::SystemTime;

/// The headers to add (`x-amz-date`, `authorization`, and `x-amz-security-token` when a session
/// token is set) for a request with these `headers` (must include `host` and `content-type`)
/// and `body`, signed with `creds` (a backend's [`AwsAuth`]) for `service` (`bedrock`) in the
/// credentials' region at `time`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    creds: &AwsAuth,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>, GatewayError> {
    let failed = |what: &str, why: &dyn std::fmt::Display| {
        log::warn!("cannot sign the {service} request to {url}: {what}: {why}");
        GatewayError::Internal
    };
    let identity: Identity = Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.expose(),
        creds.session_token.as_ref().map(|t| t.expose().to_string()),
        None,
        "tollgate",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(creds.region.as_str())
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed("signing parameters", &e))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed("request", &e))?;
    let (instructions, _signature) = sign_request(request, &params)
        .map_err(|e| failed("signature", &e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Secret;
    use std::time::{Duration, UNIX_EPOCH};

    /// The AWS SigV4 test suite's credentials and instant (2015-08-30T12:36:00Z).
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn creds(token: Option<&str>) -> AwsAuth {
        AwsAuth {
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new(SECRET.into()),
            session_token: token.map(|t| Secret::new(t.into())),
        }
    }

    fn suite(method: &str, token: Option<&str>) -> Vec<(String, String)> {
        sign(
            &creds(token),
            "service",
            method,
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
            b"",
            suite_time(),
        )
        .unwrap()
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn get_vanilla_and_post_vanilla_match_the_aws_test_suite() {
        // aws-sig-v4-test-suite/get-vanilla and post-vanilla, header-signed-request.txt.
        let get = suite("GET", None);
        assert_eq!(header(&get, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&get, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        let post = suite("POST", None);
        assert_eq!(
            header(&post, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
        assert_eq!(header(&post, "x-amz-security-token"), None);
        assert_eq!(post.len(), 2, "{post:?}");
    }

    #[test]
    fn a_session_token_is_sent_and_signed_as_in_the_suites_post_sts_header_before() {
        let signed = suite("POST", Some(TOKEN));
        assert_eq!(header(&signed, "x-amz-security-token"), Some(TOKEN));
        assert_eq!(
            header(&signed, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead")
        );
    }

    #[test]
    fn a_bedrock_request_signs_its_body_and_content_type_for_the_region() {
        let url = "https://bedrock-runtime.eu-west-3.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
        let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
        let headers = [
            ("host", "bedrock-runtime.eu-west-3.amazonaws.com"),
            ("content-type", "application/json"),
        ];
        let eu = AwsAuth {
            region: "eu-west-3".into(),
            ..creds(None)
        };
        let sign_body =
            |body: &[u8]| sign(&eu, "bedrock", "POST", url, &headers, body, suite_time()).unwrap();
        let signed = sign_body(body);
        let auth = header(&signed, "authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-3/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="),
            "{auth}"
        );
        assert_ne!(
            header(&sign_body(b"{}"), "authorization"),
            Some(auth),
            "the body is signed"
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret_or_the_token() {
        let shown = format!("{:?}", creds(Some(TOKEN)));
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("wJalr"),
            "{shown}"
        );
        assert!(!shown.contains("AQoDYXdz"), "{shown}");
    }
}
