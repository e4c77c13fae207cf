//! The content filter measured on the labelled corpus (`tollgate eval-filter`): the demo rules
//! must keep detecting at least 95 % of the direct-injection, instruction-override and
//! prompt-leak texts with at most 1 % false positives on benign ones. The held-out corpus (written
//! after the rules, never tuned against) is reported in `docs/content-filter.md`, not asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

fn report(corpus: &str) -> serde_json::Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(common::bin())
        .args([
            "eval-filter",
            &format!("{root}/eval/{corpus}"),
            "-c",
            &format!("{root}/conf/demo.yaml"),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_demo_rules_meet_the_detection_and_false_positive_targets_on_the_corpus() {
    let r = report("filter-corpus.jsonl");
    for class in ["direct_injection", "instruction_override", "prompt_leak"] {
        let pct = r[class]["percent"].as_f64().unwrap();
        assert!(pct >= 95.0, "{class}: {pct}% detected");
    }
    let fp = r["benign"]["percent"].as_f64().unwrap();
    assert!(fp <= 1.0, "{fp}% false positives");
    assert!(r["benign"]["texts"].as_u64().unwrap() >= 100);
}

#[test]
fn the_held_out_corpus_is_evaluated_too() {
    let r = report("filter-heldout.jsonl");
    assert_eq!(r["benign"]["texts"], 30);
    assert_eq!(r["prompt_leak"]["texts"], 15);
}
