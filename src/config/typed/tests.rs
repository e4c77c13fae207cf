use super::super::file::ConsumerSection;
use super::super::schema::{self, Parsed};
use super::scan::{Event, Scanner};
use super::*;

/// The typed parse of `text`, checked against the value-tree pass: when it reads the file, the
/// tree pass must read it too, without a problem, into the same shapes. Returns whether it did.
fn agrees(text: &str) -> bool {
    let Some(file) = parse::<Vec<ConsumerSection>>(text) else {
        return false;
    };
    let fast = Parsed::from_file(file);
    let mut problems = Vec::new();
    let tree = schema::parse(text, &mut problems);
    assert!(
        problems.is_empty(),
        "typed parse read a file the tree pass refuses: {problems:?}\n{text}"
    );
    assert_eq!(
        format!("{fast:?}"),
        format!("{:?}", tree.expect("the tree pass read it")),
        "\n{text}"
    );
    // Loading (consumers built as they are read, the tree pass only after a problem) gives what
    // the tree pass and the build give.
    let mut problems = Vec::new();
    let tree = schema::parse(text, &mut problems)
        .and_then(|p| super::super::build::build(p, &|_| None, &mut problems));
    let want = match tree {
        Some(c) if problems.is_empty() => Ok(format!("{c:?}")),
        _ => Err(problems),
    };
    let got = super::super::load_str(text, &|_| None).map(|c| format!("{c:?}"));
    assert_eq!(got, want, "\n{text}");
    true
}

const HEAD: &str = "server:\n  admin: {token_sha256: \"00\"}\n";

fn events(text: &str) -> Result<Vec<String>, Declined> {
    let mut s = Scanner::new(text)?;
    let mut out = Vec::new();
    let mut depth = 0;
    loop {
        let e = s.event()?;
        out.push(match &e {
            Event::MapStart => "{".to_string(),
            Event::MapEnd => "}".to_string(),
            Event::SeqStart => "[".to_string(),
            Event::SeqEnd => "]".to_string(),
            Event::Scalar(x) if x.plain => x.text.to_string(),
            Event::Scalar(x) => format!("'{}'", x.text),
        });
        match e {
            Event::MapStart | Event::SeqStart => depth += 1,
            Event::MapEnd | Event::SeqEnd => depth -= 1,
            Event::Scalar(_) => {}
        }
        if depth == 0 {
            s.finish()?;
            return Ok(out);
        }
    }
}

#[test]
fn scans_block_and_flow_collections_into_events() {
    let text = "a: 1\nb:\n  - x\n  - {c: 'q''s', d: [e, \"f\\u00e9\"]}\n  - g: h\n    i: j # note\n\nk:\n- l\n";
    assert_eq!(
        events(text).unwrap().join(" "),
        "{ a 1 b [ x { c 'q's' d [ e 'fé' ] } { g h i j } ] k [ l ] }"
    );
}

#[test]
fn an_empty_value_is_an_empty_plain_scalar() {
    assert_eq!(events("a:\nb: # c\n").unwrap().join("|"), "{|a||b||}");
}

#[test]
fn plain_scalars_keep_inner_spaces_colons_and_hashes() {
    assert_eq!(
        events("a: Team 5 # c\nb: http://h:1/x#y\n")
            .unwrap()
            .join("|"),
        "{|a|Team 5|b|http://h:1/x#y|}"
    );
    assert_eq!(
        events("a: {u: Team 5, v: a:b}\n").unwrap().join("|"),
        "{|a|{|u|Team 5|v|a:b|}|}"
    );
}

#[test]
fn declines_what_it_leaves_to_libyaml() {
    for text in [
        "a: &x 1\nb: *x\n",
        "a: !tag 1\n",
        "a: |\n  text\n",
        "a: >\n  text\n",
        "a: one\n  two\n",
        "a: 'one\n  two'\n",
        "? a\n: b\n",
        "---\na: 1\n",
        "a: 1\n...\n",
        "%YAML 1.1\n---\na: 1\n",
        "a:\tb\n",
        "a: b\r\n",
        "\u{feff}a: b\n",
        "a: b: c\n",
        "a: [b: c]\n",
        "a: {b: 1,}\n",
        "a: {b}\n",
        "a: {b: 1} c\n",
        "a: 'b'c\n",
        "a: 'b'# c\n",
        "- a\n",
        "a: - b\n",
        "a: \"\\\nb\"\n",
        "a: \"\\q\"\n",
        "a: {b: 1,\nc: 2}\n",
        "",
        "# only a comment\n",
        "a: 1\n b: 2\n",
        "a:\n  - b\n - c\n",
        "a: \u{85}\n",
    ] {
        assert!(
            events(text).is_err(),
            "{text:?} was read: {:?}",
            events(text)
        );
    }
}

#[test]
fn resolves_plain_scalars_as_serde_yaml_does() {
    let cases = [
        ("", Resolved::Null),
        ("~", Resolved::Null),
        ("NULL", Resolved::Null),
        ("True", Resolved::Bool(true)),
        ("yes", Resolved::Str("yes")),
        ("10", Resolved::U64(10)),
        ("+10", Resolved::U64(10)),
        ("0x1f", Resolved::U64(31)),
        ("0o17", Resolved::U64(15)),
        ("0b101", Resolved::U64(5)),
        ("-7", Resolved::I64(-7)),
        ("-0x10", Resolved::I64(-16)),
        ("007", Resolved::Str("007")),
        ("12.50", Resolved::F64(12.5)),
        ("1e3", Resolved::F64(1000.0)),
        (".5", Resolved::F64(0.5)),
        ("1_000", Resolved::Str("1_000")),
        ("v1.2", Resolved::Str("v1.2")),
    ];
    for (text, want) in cases {
        assert_eq!(resolve(text, true), Ok(want), "{text}");
    }
    assert_eq!(resolve("10", false), Ok(Resolved::Str("10")));
    for text in [".inf", "-.Inf", ".nan", "1e999", "99999999999999999999"] {
        assert_eq!(resolve(text, true), Err(Declined), "{text}");
    }
}

#[test]
fn reads_the_shipped_configurations_as_the_tree_pass_does() {
    for (name, text) in [
        ("demo", include_str!("../../../conf/demo.yaml")),
        ("lab", include_str!("../../../conf/lab.yaml")),
        (
            "example",
            include_str!("../../../conf/tollgate.example.yaml"),
        ),
    ] {
        assert!(agrees(text), "conf/{name}.yaml was left to the tree pass");
    }
}

#[test]
fn a_flow_consumer_over_two_lines_is_read() {
    let text = format!(
        "{HEAD}consumers:\n  - {{id: a, team: a, key_sha256: \"{}\", daily_budget_usd: 1000000,\n     tokens_per_minute: 1000000000, tokens_per_hour: 1000000000}}\n",
        "ab".repeat(32)
    );
    assert!(agrees(&text));
}

#[test]
fn scalars_the_tree_pass_rewrites_are_left_to_it() {
    // The tree pass writes `0x10` back as `16`, `~` as `null`, `1.50` as `1.5`: a text field
    // given one of these is declined, so the tree pass decides.
    for value in ["0x10", "~", "1.50", "true", "12", "-3"] {
        let text = format!("{HEAD}consumers:\n  - id: a\n    team: {value}\n");
        assert!(!agrees(&text), "team: {value} was read");
    }
    for value in ["'0x10'", "\"~\"", "Team 1", "x-1"] {
        let text = format!("{HEAD}consumers:\n  - id: a\n    team: {value}\n");
        assert!(agrees(&text), "team: {value} was declined");
    }
}

#[test]
fn money_and_numbers_read_as_the_tree_pass_reads_them() {
    for value in [
        "10", "0x10", "12.5", "'12.50'", "\"7\"", "1e2", "-1", "~", "", "abc",
    ] {
        let text = format!("{HEAD}consumers:\n  - id: a\n    daily_budget_usd: {value}\n");
        assert!(agrees(&text), "daily_budget_usd: {value} was declined");
    }
    for value in ["10", "0x10", "+5"] {
        let text = format!("{HEAD}consumers:\n  - id: a\n    tokens_per_minute: {value}\n");
        assert!(agrees(&text), "tokens_per_minute: {value} was declined");
    }
    let text = format!("{HEAD}tracing: {{sample_ratio: 1}}\n");
    assert!(agrees(&text));
}

#[test]
fn unknown_repeated_and_mistyped_keys_are_left_to_the_tree_pass() {
    for body in [
        "consumers:\n  - id: a\n    tem: b\n",
        "consumers:\n  - id: a\n    id: b\n",
        "consumers:\n  - {id: a, 'id': b}\n",
        "pricing: {m: {input_per_million_usd: 1, output_per_million_usd: 1}, m: {input_per_million_usd: 2, output_per_million_usd: 1}}\n",
        "consumers:\n  - id: a\n    tokens_per_minute: lots\n",
        "consumers:\n  - id: [a]\n",
        "teams: {payments: }\n",
        "cache:\n",
        "consumers:\n",
        "unknown: 1\n",
        "cache: {enabled: yes}\n",
    ] {
        assert!(!agrees(&format!("{HEAD}{body}")), "{body:?} was read");
    }
}

/// A small deterministic generator (xorshift), so the run is the same every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'x>(&mut self, from: &[&'x str]) -> &'x str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

const IDS: &[&str] = &["a", "b-2", "'c'", "\"d\"", "e.f"];

/// Scalars as a file may spell them: the first 16 the typed parse reads as text.
const TEXTS: &[&str] = &[
    "a",
    "Team 5",
    "'q''s'",
    "\"d\\\"q\"",
    "\"\\u00e9t\\x41\"",
    "x-1",
    "a#b",
    "''",
    "\"\"",
    "'12.50'",
    "http://h:1/p",
    "é",
    "a ] b",
    "'0x10'",
    "\"~\"",
    "v1.2",
    // Others, many declined or refused:
    "a #c",
    "~",
    "null",
    "0x10",
    "010",
    "1e3",
    "true",
    "yes",
    "-1",
    ".5",
    "+1",
    "12.50",
    "a: b",
    "[a, b]",
    "{}",
    "[]",
    "*x",
    "&y z",
    "!t v",
    "'open",
    "a,b",
    "- a",
    "?",
    ": a",
];

/// Random files built from the pieces a configuration is made of, spelt in many ways, some of
/// them wrong: whenever the typed parse reads one, it reads it as the tree pass does.
#[test]
fn generated_files_read_as_the_tree_pass_reads_them() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut read = 0;
    for _ in 0..3000 {
        let mut text = String::from(HEAD);
        if rng.next() % 3 == 0 {
            text.push_str("# a comment\n\n");
        }
        let fields = [
            "id",
            "team",
            "role",
            "description",
            "daily_budget_usd",
            "tokens_per_minute",
            "allowed_models",
            "tem",
        ];
        text.push_str("consumers:\n");
        let seq_indent = rng.pick(&["", "  ", "    "]);
        for _ in 0..(rng.next() % 4) {
            let n = 1 + rng.next() % 4;
            let mut pairs: Vec<(String, String)> = vec![("id".into(), rng.pick(IDS).into())];
            for _ in 0..n {
                let known = if rng.next() % 20 == 0 { 8 } else { 7 };
                let f = rng.pick(&fields[1..known]);
                // A repeated key now and then; mostly distinct ones.
                if pairs.iter().any(|(k, _)| k == f) && rng.next() % 8 != 0 {
                    continue;
                }
                let v = match f {
                    "allowed_models" => rng.pick(&["[a, b]", "[]", "[ 'x' ]", "a"]),
                    "tokens_per_minute" => rng.pick(&["10", "0x10", "1e3", "-1", "'5'"]),
                    _ if rng.next() % 4 == 0 => rng.pick(TEXTS),
                    _ => rng.pick(&TEXTS[..16]),
                };
                pairs.push((f.to_string(), v.to_string()));
            }
            if rng.next() % 2 == 0 {
                let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                let sep = rng.pick(&[", ", ",", " , ", ",\n      "]);
                text.push_str(&format!("{seq_indent}- {{{}}}\n", body.join(sep)));
            } else {
                for (i, (k, v)) in pairs.iter().enumerate() {
                    let lead = if i == 0 {
                        format!("{seq_indent}- ")
                    } else {
                        format!("{seq_indent}  ")
                    };
                    let tail = rng.pick(&["", "  ", " # c", "#c"]);
                    text.push_str(&format!("{lead}{k}: {v}{tail}\n"));
                }
            }
        }
        if rng.next() % 2 == 0 {
            let v = rng.pick(&["30", "'30'", "0.5", "~", "x"]);
            text.push_str(&format!(
                "pricing:\n  default: {{input_per_million_usd: {v}, output_per_million_usd: 1}}\n"
            ));
        }
        if rng.next() % 3 == 0 {
            text.push_str(rng.pick(&[
                "teams:\n  a: {requests_per_minute: 5}\n",
                "teams: {a: {}}\n",
                "teams:\n  a:\n",
            ]));
        }
        if agrees(&text) {
            read += 1;
        }
    }
    // The generator must exercise both outcomes.
    eprintln!("{read} of 3000 generated files read");
    assert!(read > 300, "only {read} files were read");
}

#[test]
fn a_file_with_problems_gets_every_one_at_its_path_from_the_tree_pass() {
    let key = |n: u8| format!("\"{}\"", format!("{n:02x}").repeat(32));
    let text = format!(
        "{HEAD}pricing: {{default: {{input_per_million_usd: 1, output_per_million_usd: 1}}}}\n\
         consumers:\n  - {{id: a, key_sha256: {}}}\n  - {{id: b, key_sha256: {}, daily_budget_usd: -1}}\n  \
         - {{id: c, key_sha256: {}, tokens_per_minit: 5}}\n  - {{id: d, key_sha256: {}}}\n",
        key(1),
        key(2),
        key(3),
        key(1)
    );
    let problems = super::super::load_str(&text, &|_| None).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for want in [
        "consumers[1].daily_budget_usd",
        "consumers[2].tokens_per_minit",
        "consumers[3].key_sha256",
    ] {
        assert!(paths.contains(&want), "{want} not in {problems:?}");
    }
    // Exactly what the tree pass and the build say, in their order.
    let mut tree = Vec::new();
    let _ = schema::parse(&text, &mut tree)
        .and_then(|p| super::super::build::build(p, &|_| None, &mut tree));
    assert_eq!(problems, tree);
}
