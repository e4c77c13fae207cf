//! Entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_corpus.rs`, which replays the
//! committed corpora on every `cargo test`. Each takes arbitrary bytes and must return without
//! panicking, whatever they hold; the invariants checked here hold for every input.

use crate::protocol::Route;

/// The configuration loader: any text gives a configuration or a list of problems.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = crate::runtime::load_str(text, &|_| None) {
        assert!(
            !problems.is_empty(),
            "a refused configuration names a problem"
        );
    }
}

/// The request-body view of every route: a view or a 4xx, never anything else.
pub fn request_view(data: &[u8]) {
    for route in [
        Route::ChatCompletions,
        Route::LabChat,
        Route::Messages,
        Route::Embeddings,
        Route::Responses,
    ] {
        match crate::protocol::parse(route, data) {
            Ok(view) => {
                let texts = view.texts();
                let _ = view.prompt_estimate(&texts);
                let _ = view.client_output_cap();
            }
            Err(e) => assert!((400..500).contains(&e.status()), "{e:?}"),
        }
    }
}

/// The SSE usage parser, fed the stream in pieces whose sizes come from the first byte: what it
/// forwards is exactly what it was fed when it strips nothing.
pub fn sse(data: &[u8]) {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let mut tap = crate::protocol::sse::SseTap::new(false);
    let mut out = Vec::with_capacity(stream.len());
    for chunk in stream.chunks(step) {
        out.extend_from_slice(&tap.feed(chunk));
    }
    out.extend_from_slice(&tap.finish());
    assert_eq!(out, stream, "pass-through must be byte-exact");
    let mut strip = crate::protocol::sse::SseTap::new(true);
    for chunk in stream.chunks(step) {
        let _ = strip.feed(chunk);
    }
    let _ = strip.finish();
}

/// The filter's normaliser and the demo rules: any text is scanned, and normalising is
/// idempotent on its own output.
pub fn normalize(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scans = crate::stages::filter::normalize::scan_texts(text, 24);
    let first = scans.first().cloned().unwrap_or_default();
    // Without base64 decoding (which appends decoded text), normalising again changes nothing.
    let plain = crate::stages::filter::normalize::scan_texts(text, usize::MAX);
    let again = crate::stages::filter::normalize::scan_texts(&plain[0], usize::MAX);
    assert_eq!(again[0], plain[0], "normalisation is idempotent");
    let _ = first;
}
