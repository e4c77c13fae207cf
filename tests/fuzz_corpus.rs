//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/*`) through the same entry points the
//! fuzz targets use, so every input a fuzzing run kept stays covered by `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        run(&data);
        n += 1;
    }
    n
}

#[test]
fn every_corpus_input_is_handled_without_a_panic() {
    assert!(replay("config", tollgate::fuzzing::config) >= 4);
    assert!(replay("request_view", tollgate::fuzzing::request_view) >= 5);
    assert!(replay("sse", tollgate::fuzzing::sse) >= 3);
    assert!(replay("normalize", tollgate::fuzzing::normalize) >= 4);
}

#[test]
fn a_yaml_alias_bomb_is_refused_not_expanded() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config/alias_bomb.yaml"),
    )
    .unwrap();
    let problems = tollgate::config::load_str(&text, &|_| None).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.to_string().contains("repetition limit")),
        "{problems:?}"
    );
}
