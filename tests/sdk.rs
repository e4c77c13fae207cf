//! The official `openai` Python SDK, pointed at the gateway, gets a completion and streams (every
//! chunk; the usage chunk only when it asked for it), and a bad key surfaces as the SDK's
//! `AuthenticationError`.
//!
//! `make test` installs the SDK and sets `TOLLGATE_REQUIRE_SDK=1`, so there this test cannot be
//! skipped; a bare `cargo test` on a machine without the SDK skips it with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn the_official_openai_sdk_gets_a_chat_completion_through_the_gateway() {
    let Some(python) = python_with_sdk() else {
        return;
    };
    let mock = MockServer::start(&[]);
    let gw = GatewayServer::start(&backends_for(mock.port), "");
    let v = run_sdk_script(&python, "openai_chat.py", gw.port, "gpt-4");
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
