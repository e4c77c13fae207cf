//! The content filter measured on the labelled corpus (`tollgate eval-filter`): the demo rules
//! must keep detecting at least 95 % of the direct-injection, instruction-override and
//! prompt-leak texts with at most 1 % false positives on benign ones. The held-out corpus (written
//! after the rules, never tuned against) is reported in `docs/content-filter.md`, not asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

fn report(corpus: &str) -> serde_json::Value {
    report_with(corpus, &[])
}

/// The report with the optional intent-rule pack applied.
fn report_with_pack(corpus: &str) -> serde_json::Value {
    let pack = format!(
        "{}/conf/filter-intent-rules.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    report_with(corpus, &["--rules", &pack])
}

fn report_with(corpus: &str, extra: &[&str]) -> serde_json::Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(common::bin())
        .args([
            "eval-filter",
            &format!("{root}/eval/{corpus}"),
            "-c",
            &format!("{root}/conf/demo.yaml"),
            "--json",
        ])
        .args(extra)
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

fn percent(r: &serde_json::Value, label: &str) -> f64 {
    r[label]["percent"].as_f64().unwrap()
}

#[test]
fn the_intent_rule_pack_meets_the_targets_on_what_it_was_written_against_and_blocks_no_benign_text()
{
    // Tuned against: the corpus and the first two held-out sets.
    for corpus in [
        "filter-corpus.jsonl",
        "filter-heldout.jsonl",
        "filter-heldout2.jsonl",
    ] {
        let r = report_with_pack(corpus);
        for class in ["direct_injection", "instruction_override", "prompt_leak"] {
            assert!(
                percent(&r, class) >= 95.0,
                "{corpus} {class}: {}",
                percent(&r, class)
            );
        }
    }
    // Every benign text of every corpus passes, held-out ones included (320 texts).
    for corpus in [
        "filter-corpus.jsonl",
        "filter-heldout.jsonl",
        "filter-heldout2.jsonl",
        "filter-heldout3.jsonl",
        "filter-heldout4.jsonl",
    ] {
        let r = report_with_pack(corpus);
        assert_eq!(r["benign"]["caught"], 0, "{corpus}: {}", r["benign"]);
    }
    // The last held-out set, never tuned against for detection: the figures of
    // docs/content-filter.md, kept as floors so a change that loses coverage fails.
    let r = report_with_pack("filter-heldout4.jsonl");
    assert_eq!(r["direct_injection"]["texts"], 40);
    assert!(percent(&r, "direct_injection") >= 90.0);
    assert!(percent(&r, "instruction_override") >= 65.0);
    assert!(percent(&r, "prompt_leak") >= 67.5);
    // Without the pack, the demo rules catch far less of it.
    let plain = report("filter-heldout4.jsonl");
    assert!(percent(&plain, "instruction_override") < percent(&r, "instruction_override"));
}

#[test]
fn the_committed_intent_pack_is_what_its_generator_prints() {
    let root = env!("CARGO_MANIFEST_DIR");
    let Ok(out) = Command::new("python3")
        .arg(format!("{root}/eval/injection_rules.py"))
        .output()
    else {
        // `make test` installs python3; a bare `cargo test` without it cannot regenerate.
        eprintln!("python3 not found: generator not compared");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read(format!("{root}/conf/filter-intent-rules.yaml")).unwrap();
    assert!(
        out.stdout == committed,
        "conf/filter-intent-rules.yaml differs from `python3 eval/injection_rules.py`: regenerate it"
    );
}
