//! The official `openai` Python SDK, pointed at the gateway, gets a completion and streams (every
//! chunk; the usage chunk only when it asked for it), and a bad key surfaces as the SDK's
//! `AuthenticationError`.
//!
//! `make test` installs the SDK and sets `TOLLGATE_REQUIRE_SDK=1`, so there this test cannot be
//! skipped; a bare `cargo test` on a machine without the SDK skips it with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::Command;

#[test]
fn the_official_openai_sdk_gets_a_chat_completion_through_the_gateway() {
    let python = std::env::var("TOLLGATE_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_sdk = Command::new(&python)
        .args(["-c", "import openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        assert!(
            std::env::var_os("TOLLGATE_REQUIRE_SDK").is_none(),
            "TOLLGATE_REQUIRE_SDK is set but `{python} -c 'import openai'` fails"
        );
        eprintln!("skipped: the openai Python SDK is not installed (make test installs it)");
        return;
    }
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_chat.py");
    let out = Command::new(&python)
        .args([
            script,
            &format!("http://127.0.0.1:{}/v1", gw.port),
            KEY_STANDARD,
            "gpt-4",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "SDK run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 ";
    assert_eq!(v["content"], expected);
    assert_eq!(v["streamed"], expected);
    assert_eq!(v["completion_tokens"], 16);
    assert_eq!(v["denied_status"], 401);
    // Role chunk + 16 token chunks + the finish chunk; the usage chunk the gateway asked for is
    // removed when the client did not ask, and passed through when it did.
    assert_eq!(v["chunks_plain"], 18);
    assert_eq!(v["usage_chunks_plain"], 0);
    assert_eq!(v["chunks_with_usage"], 19);
    assert_eq!(v["usage_chunks_asked"], 1);
    assert_eq!(v["usage_asked"], 16);
}
