use crate::config::{load_str, Problem, Protocol, Role};

const ADMIN: &str = "91c16f0d6cc1bec3c3603972182a07c66ff4fa71618a975e963d6dbe42b6dd37";
const KEY_A: &str = "35aa5085c1991080747f020f2807d382ac78cfacc7ec76105eb83a1fe8bde29e";
const KEY_B: &str = "35d19f761b29dfaa721aacd85c36a807a71eee25e62e82bc70c42c9cef7f4a20";

fn no_env(_: &str) -> Option<String> {
    None
}

fn config(body: &str) -> String {
    format!(
        "server:\n  admin:\n    token_sha256: \"{ADMIN}\"\npricing:\n  default: {{input_per_million_usd: 1, output_per_million_usd: 2}}\n{body}"
    )
}

fn problems(text: &str) -> Vec<Problem> {
    load_str(text, &no_env).expect_err("expected problems")
}

fn paths(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|p| p.path).collect()
}

#[test]
fn demo_config_is_valid() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml")).unwrap();
    let c = load_str(&text, &no_env).unwrap();
    assert_eq!(
        c.consumers.len(),
        5,
        "four of the lab's and one for the load tests"
    );
    let support = &c.consumers[0];
    assert_eq!(support.id, "team-support");
    assert_eq!(support.role, Role::Standard);
    assert_eq!(support.daily_budget_micros, 100_000_000);
    assert_eq!(support.allowed_models, ["gpt-4", "default"]);
    assert_eq!(c.backends[0].protocol, Protocol::LabAgent);
    assert_eq!(c.pricing["gpt-35-turbo"].input_micros_per_million, 500_000);
}

#[test]
fn a_consumer_gets_the_labs_defaults_and_may_always_ask_for_default() {
    let text = config(&format!(
        "consumers:\n  - {{id: a, key_sha256: \"{KEY_A}\", allowed_models: [gpt-4]}}\n"
    ));
    let c = load_str(&text, &no_env).unwrap();
    let a = &c.consumers[0];
    assert_eq!(a.daily_budget_micros, 10_000_000, "the lab's $10");
    assert_eq!(a.role, Role::Standard);
    assert_eq!(
        (a.tokens_per_minute, a.tokens_per_hour, a.tokens_per_day),
        (10_000, 100_000, 500_000)
    );
    assert!(a.may_use("gpt-4") && a.may_use("default"));
    assert!(!a.may_use("gpt-4o"));
}

#[test]
fn the_lab_configuration_is_the_demo_in_front_of_the_agent_on_8000() {
    let read = |name: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("conf")
            .join(name);
        load_str(&std::fs::read_to_string(path).unwrap(), &no_env).unwrap()
    };
    let (lab, demo) = (read("lab.yaml"), read("demo.yaml"));
    assert!(lab.backends.iter().all(|b| b.protocol == Protocol::LabAgent
        && (b.url.host.as_str(), b.url.port) == ("127.0.0.1", 8000)));
    let ids = |c: &crate::config::Config| -> Vec<String> {
        c.consumers
            .iter()
            .map(|c| {
                format!(
                    "{}:{:?}",
                    c.id,
                    c.keys.iter().map(|k| k.digest.to_hex()).collect::<Vec<_>>()
                )
            })
            .collect()
    };
    assert_eq!(ids(&lab)[..], ids(&demo)[..4], "the lab's four consumers");
    let rules = |c: &crate::config::Config| -> Vec<String> {
        c.filter
            .rules
            .iter()
            .map(|r| format!("{}:{:?}:{}", r.id, r.matcher, r.case_sensitive))
            .collect()
    };
    assert_eq!(rules(&lab), rules(&demo), "the same filter");
    assert_eq!(lab.routing.rules.len(), demo.routing.rules.len());
}

#[test]
fn no_shipped_configuration_but_the_demo_and_lab_ones_carries_a_demo_key() {
    let demo = load_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml")).unwrap(),
        &no_env,
    )
    .unwrap();
    let mut public: Vec<String> = demo
        .consumers
        .iter()
        .flat_map(|c| c.keys.iter().map(|k| k.digest.to_hex()))
        .collect();
    public.push(demo.server.admin.token.to_hex());
    let dirs = ["conf", "deploy"].map(|d| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(d));
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let is_yaml = path.extension().is_some_and(|e| e == "yaml");
            // The lab's is the demo in front of the lab agent, with its public keys.
            if !is_yaml || path.ends_with("demo.yaml") || path.ends_with("lab.yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for digest in &public {
                assert!(
                    !text.contains(digest.as_str()),
                    "{} ships a demo digest",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn example_config_is_valid_with_its_environment() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/conf/tollgate.example.yaml"
    ))
    .unwrap();
    let env = |name: &str| Some(format!("value-of-{name}-long-enough"));
    load_str(&text, &env).unwrap();
}

#[test]
fn a_misspelt_key_and_an_empty_url_are_both_reported_with_paths() {
    let text = config(&format!(
        r#"consumers:
  - id: a
    key_sha256: "{KEY_A}"
    daily_budget_usd: 1
    tokens_per_minit: 5
backends:
  - id: x
    url: ""
    protocol: openai
    provider: compatible
    models: [m]
"#
    ));
    let p = paths(&text);
    assert!(
        p.contains(&"consumers[0].tokens_per_minit".to_string()),
        "{p:?}"
    );
    assert!(p.contains(&"backends[0].url".to_string()), "{p:?}");
}

#[test]
fn a_bad_item_does_not_hide_problems_in_later_items() {
    let text = config(&format!(
        r#"consumers:
  - id: a
    key_sha256: "{KEY_A}"
    daily_budget_usd: 1
    tokens_per_hour: lots
  - id: b
    key_sha256: "nothex"
    daily_budget_usd: 1
"#
    ));
    let p = paths(&text);
    assert!(
        p.contains(&"consumers[0].tokens_per_hour".to_string()),
        "{p:?}"
    );
    assert!(p.contains(&"consumers[1].key_sha256".to_string()), "{p:?}");
}

#[test]
fn duplicate_ids_and_duplicate_keys_are_rejected() {
    let text = config(&format!(
        r#"consumers:
  - {{id: a, key_sha256: "{KEY_A}", daily_budget_usd: 1}}
  - {{id: a, key_sha256: "{KEY_B}", daily_budget_usd: 1}}
  - {{id: c, key_sha256: "{KEY_A}", daily_budget_usd: 1}}
"#
    ));
    let p = paths(&text);
    assert!(p.contains(&"consumers[1].id".to_string()), "{p:?}");
    assert!(p.contains(&"consumers[2].key_sha256".to_string()), "{p:?}");
}

#[test]
fn limits_roles_tiers_and_protocols_are_checked() {
    let text = config(&format!(
        r#"consumers:
  - id: a
    key_sha256: "{KEY_A}"
    daily_budget_usd: "-1"
    role: superuser
    tokens_per_minute: 0
backends:
  - {{id: b, url: "ftp://x", protocol: grpc, models: [], cost_tier: cheap}}
"#
    ));
    let p = paths(&text);
    for want in [
        "consumers[0].daily_budget_usd",
        "consumers[0].role",
        "consumers[0].tokens_per_minute",
        "backends[0].url",
        "backends[0].protocol",
        "backends[0].models",
        "backends[0].cost_tier",
    ] {
        assert!(p.contains(&want.to_string()), "{want} missing in {p:?}");
    }
}

#[test]
fn negative_numbers_are_type_errors_not_wraparounds() {
    let text = config(&format!(
        "consumers:\n  - {{id: a, key_sha256: \"{KEY_A}\", daily_budget_usd: 1, tokens_per_day: -5}}\n"
    ));
    assert_eq!(paths(&text), ["consumers[0].tokens_per_day"]);
}

#[test]
fn the_admin_token_is_required_and_must_not_be_a_consumer_key() {
    assert!(paths("consumers: []\n").contains(&"server.admin".to_string()));
    let text = format!(
        "server:\n  admin: {{token_sha256: \"{KEY_A}\"}}\nconsumers:\n  - {{id: a, key_sha256: \"{KEY_A}\", daily_budget_usd: 1}}\n"
    );
    assert!(paths(&text).contains(&"server.admin".to_string()));
}

#[test]
fn missing_environment_variables_are_reported() {
    let text = "server:\n  admin: {token_env: TG_ADMIN}\nbackends:\n  - {id: b, url: \"http://127.0.0.1:1\", protocol: openai, models: [m], credential_env: OPENAI_KEY}\n".to_string();
    let p = paths(&text);
    assert!(p.contains(&"server.admin.token_env".to_string()), "{p:?}");
    assert!(
        p.contains(&"backends[0].credential_env".to_string()),
        "{p:?}"
    );
}

#[test]
fn invalid_yaml_and_alias_bombs_are_problems_not_panics() {
    assert!(!problems("server: [unclosed").is_empty());
    assert!(!problems("- just\n- a list\n").is_empty());
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    assert!(!problems(bomb).is_empty());
}

#[test]
fn backend_urls_are_split_for_the_connector() {
    use crate::config::BackendUrl;
    let u = BackendUrl::parse("https://api.example.com/openai/").unwrap();
    assert_eq!(
        (u.tls, u.port, u.path_prefix.as_str()),
        (true, 443, "/openai")
    );
    assert_eq!(u.authority(), "api.example.com");
    let u = BackendUrl::parse("http://[::1]:8080").unwrap();
    assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
    assert_eq!(u.authority(), "[::1]:8080");
    assert!(BackendUrl::parse("http://user:pw@host").is_err());
    assert!(BackendUrl::parse("http://host:99999").is_err());
    assert!(BackendUrl::parse("http://:80").is_err());
}

#[test]
fn connection_limits_must_be_positive() {
    let text = format!(
        "server:\n  max_idle_connections: 0\n  timeouts:\n    client_header_ms: 0\n  admin:\n    token_sha256: \"{ADMIN}\"\npricing:\n  default: {{input_per_million_usd: 1, output_per_million_usd: 2}}\n"
    );
    let p = paths(&text);
    assert!(
        p.contains(&"server.max_idle_connections".to_string()),
        "{p:?}"
    );
    assert!(
        p.contains(&"server.timeouts.client_header_ms".to_string()),
        "{p:?}"
    );
}

#[test]
fn a_rule_pack_replaces_and_adds_rules() {
    let dir = std::env::temp_dir().join(format!("tollgate-pack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let demo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml"));
    let pack = dir.join("pack.yaml");
    std::fs::write(
        &pack,
        "replaces: [injection_prompt_leak]\nrules:\n  - {id: extra, category: injection, severity: high, reason: r, patterns: [zebra]}\n",
    )
    .unwrap();
    let c = crate::config::load_file_with_rule_pack(demo, &pack).unwrap();
    let ids: Vec<&str> = c.filter.rules.iter().map(|r| r.id.as_str()).collect();
    assert!(ids.contains(&"extra"));
    assert!(!ids.contains(&"injection_prompt_leak"));
    assert!(ids.contains(&"injection_instruction_override"));
    std::fs::write(&pack, "rules: 5\n").unwrap();
    assert!(crate::config::load_file_with_rule_pack(demo, &pack).is_err());
    std::fs::write(&pack, "replaces: [no_such_rule]\nrules: []\n").unwrap();
    let problems = crate::config::load_file_with_rule_pack(demo, &pack).unwrap_err();
    assert!(problems[0].message.contains("no_such_rule"), "{problems:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_is_priced_by_the_name_its_backend_is_asked_for() {
    let demo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/demo.yaml")).unwrap();
    let text = demo.replace(
        "aliases: {gpt-4o-mini: gpt-4o}",
        "aliases: {gpt-4o-mini: gpt-4o, default: gpt-4}",
    );
    let c = load_str(&text, &no_env).unwrap();
    let openai = c.backends.iter().find(|b| b.id == "mock-openai").unwrap();
    let agent = c.backends.iter().find(|b| b.id == "agent-primary").unwrap();
    let price = |m: &str| c.pricing[m];
    assert_eq!(
        c.price_on("gpt-4o-mini", openai),
        price("gpt-4o"),
        "an alias: its target"
    );
    assert_eq!(
        c.price_on("default", openai),
        price("gpt-4"),
        "`default` named by an alias"
    );
    assert_eq!(
        c.price_on("default", agent),
        price("default"),
        "`default` as it is"
    );
    assert_eq!(c.price_on("gpt-4", openai), price("gpt-4"));
    let bound = c.price_bound("default", |b| b.serves("default"));
    assert_eq!(
        bound,
        price("gpt-4"),
        "the most any backend serving it charges"
    );
}

#[test]
fn a_consumer_needs_a_key_or_a_certificate_and_a_certificate_names_one_keyless_consumer() {
    let ok = config(
        "consumers:\n  - {id: bot, client_cert: {uri: \"spiffe://corp/bot\"}}\n  - {id: both, key_sha256: \"35aa5085c1991080747f020f2807d382ac78cfacc7ec76105eb83a1fe8bde29e\", client_cert: {subject: \"CN=x\"}}\n",
    );
    let c = load_str(&ok, &no_env).unwrap();
    assert!(c.consumers[0].keys.is_empty());
    assert_eq!(
        paths(&config("consumers:\n  - {id: none}\n")),
        ["consumers[0].key_sha256"]
    );
    assert_eq!(
        paths(&config(
            "consumers:\n  - {id: a, client_cert: {uri: \"spiffe://x\"}}\n  - {id: b, client_cert: {uri: \"spiffe://x\"}}\n"
        )),
        ["consumers[1].client_cert"]
    );
    assert_eq!(
        paths(&config(
            "consumers:\n  - {id: a, client_cert: {uri: \"spiffe://x\", subject: \"CN=y\"}}\n"
        )),
        ["consumers[0].client_cert"]
    );
}

#[test]
fn provider_backends_get_their_preset_url_and_bedrock_its_aws_signing() {
    let text = config(
        r#"backends:
  - {id: a, protocol: anthropic, models: [claude]}
  - {id: g, protocol: gemini, models: [gemini], credential_env: GEMINI_KEY}
  - {id: b, protocol: bedrock, models: [nova], drop_unsupported: [logprobs]}
  - {id: o, protocol: openai, models: [gpt]}
"#,
    );
    let env = |name: &str| -> Option<String> {
        let v = match name {
            "GEMINI_KEY" => "AIza-test",
            "AWS_REGION" => "eu-west-3",
            "AWS_ACCESS_KEY_ID" => "AKIDTEST",
            "AWS_SECRET_ACCESS_KEY" => "secret-test",
            _ => return None,
        };
        Some(v.to_string())
    };
    let c = load_str(&text, &env).unwrap();
    let url = |id: &str| {
        let b = c.backends.iter().find(|b| b.id == id).unwrap();
        format!("{}{}", b.url.authority(), b.url.path_prefix)
    };
    assert_eq!(url("a"), "api.anthropic.com");
    assert_eq!(url("g"), "generativelanguage.googleapis.com/v1beta");
    assert_eq!(url("b"), "bedrock-runtime.eu-west-3.amazonaws.com");
    assert_eq!(url("o"), "api.openai.com");
    let b = c.backends.iter().find(|b| b.id == "b").unwrap();
    assert_eq!(b.protocol, Protocol::Bedrock);
    let aws = b.aws.as_ref().unwrap();
    assert_eq!(
        (aws.region.as_str(), aws.access_key_id.as_str()),
        ("eu-west-3", "AKIDTEST")
    );
    assert!(
        !format!("{aws:?}").contains("secret-test"),
        "the secret never shows in Debug"
    );
    assert!(aws.session_token.is_none());
    assert_eq!(b.drop_unsupported, ["logprobs"]);

    // Without the environment a bedrock backend names each missing piece; `aws` on another
    // protocol and an empty URL with no preset are refused too.
    let text = config(
        r#"backends:
  - {id: b, protocol: bedrock, models: [nova]}
  - {id: x, protocol: openai, provider: compatible, models: [m], aws: {region: us-east-1}}
"#,
    );
    let mut p = paths(&text);
    p.sort();
    assert_eq!(
        p,
        [
            "backends[0].aws.access_key_id_env",
            "backends[0].aws.region",
            "backends[0].aws.secret_access_key_env",
            "backends[1].aws",
            "backends[1].url",
        ]
    );
}

#[test]
fn a_consumer_may_have_several_keys_with_expiry_labels_and_disabled_ones() {
    let text = config(&format!(
        r#"consumers:
  - id: a
    key_sha256: "{KEY_A}"
    keys:
      - {{sha256: "{KEY_B}", label: ci, expires: "2027-01-31"}}
      - {{sha256: "{K3}", expires: "2027-01-31T12:30:05Z"}}
      - {{sha256: "{K4}", disabled: true}}
"#,
        K3 = "3".repeat(64),
        K4 = "4".repeat(64),
    ));
    let c = load_str(&text, &no_env).unwrap();
    let keys = &c.consumers[0].keys;
    assert_eq!(keys.len(), 3, "the disabled key is left out: {keys:?}");
    assert_eq!(keys[0].expires, None);
    // 2027-01-31 is day 20,849 since 1970-01-01.
    assert_eq!(keys[1].expires, Some(20_849 * 86_400));
    assert_eq!(keys[1].label.as_deref(), Some("ci"));
    assert_eq!(
        keys[2].expires,
        Some(20_849 * 86_400 + 12 * 3_600 + 30 * 60 + 5)
    );
    assert!(keys[1].valid_at(20_849 * 86_400 - 1) && !keys[1].valid_at(20_849 * 86_400));

    let bad = config(&format!(
        r#"consumers:
  - id: a
    keys:
      - {{sha256: "{KEY_A}", expires: "31/01/2027"}}
      - {{sha256: "nothex"}}
      - {{sha256: "{KEY_A}"}}
  - id: b
    keys: [{{sha256: "{KEY_B}"}}]
    key_sha256: "{KEY_B}"
"#
    ));
    let mut p = paths(&bad);
    p.sort();
    assert_eq!(
        p,
        [
            "consumers[0].keys[0].expires",
            "consumers[0].keys[1].sha256",
            "consumers[0].keys[2].sha256",
            "consumers[1].keys[0].sha256",
        ]
    );
}

#[test]
fn utc_dates_and_times_become_unix_seconds() {
    use super::utc_seconds;
    assert_eq!(utc_seconds("1970-01-01"), Some(0));
    assert_eq!(utc_seconds("2000-03-01"), Some(951_868_800));
    assert_eq!(utc_seconds("2024-02-29T23:59:59Z"), Some(1_709_251_199));
    for bad in [
        "2024-13-01",
        "2024-02-30T25:00:00Z",
        "2027-02-31",
        "2023-02-29",
        "2027-04-31",
        "2024-01-01T00:00:00",
        "tomorrow",
        "",
    ] {
        assert_eq!(utc_seconds(bad), None, "{bad}");
    }
}
