//! The deployment files: the systemd unit and its sysusers entry (checked by systemd's own tools
//! on a throw-away root where the shipped sysusers file created the unit's user), the container
//! files, the compose configuration (checked by the real binary) and the Grafana dashboard.
//!
//! The systemd checks need `systemd-analyze` and `systemd-sysusers` (package `systemd`; `make
//! deps` installs it). Without them these tests fail, unless `TOLLGATE_SKIP_SYSTEMD=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT: &str = include_str!("../deploy/tollgate.service");
const SYSUSERS: &str = include_str!("../deploy/tollgate.sysusers");
const DOCKERFILE: &str = include_str!("../Dockerfile");
const COMPOSE: &str = include_str!("../deploy/compose.yaml");
const COMPOSE_CONFIG: &str = "deploy/compose.tollgate.yaml";

/// The exposure `systemd-analyze security --offline=yes` gave the unit (systemd 252), in tenths:
/// 1.2 ("OK"; the unit it replaced scored 8.5). Hardening removed raises it and fails the test.
const MAX_EXPOSURE_TENTHS: u32 = 12;

/// Where the unit installs the binary (its ExecStart).
const INSTALLED_BIN: &str = "/usr/local/bin/tollgate";

fn unit_values(key: &str) -> Vec<&'static str> {
    UNIT.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

fn unit_value(key: &str) -> &'static str {
    match unit_values(key).as_slice() {
        [v] => v,
        [] => panic!("{key}= missing from the unit"),
        many => panic!("{key}= set {} times in the unit", many.len()),
    }
}

/// The directories systemd creates for the unit before it starts, owned by its user.
fn created_dirs() -> Vec<String> {
    let mut dirs = Vec::new();
    for (key, base) in [
        ("StateDirectory", "/var/lib"),
        ("LogsDirectory", "/var/log"),
        ("RuntimeDirectory", "/run"),
        ("CacheDirectory", "/var/cache"),
        ("ConfigurationDirectory", "/etc"),
    ] {
        for value in unit_values(key) {
            dirs.extend(value.split_whitespace().map(|d| format!("{base}/{d}")));
        }
    }
    dirs
}

fn is_under(path: &str, dir: &str) -> bool {
    Path::new(path).starts_with(dir)
}

/// The value following `flag` on the ExecStart command line.
fn exec_start_arg(flag: &str) -> Option<&'static str> {
    let words: Vec<&str> = unit_value("ExecStart").split_whitespace().collect();
    let at = words.iter().position(|w| *w == flag)?;
    words.get(at + 1).copied()
}

#[test]
fn the_systemd_unit_reloads_with_sighup_and_stops_gracefully() {
    assert_eq!(unit_value("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(unit_value("KillSignal"), "SIGTERM");
    assert!(unit_value("ExecStart").starts_with("/usr/local/bin/tollgate run -c "));
    assert!(unit_value("ExecStartPre").contains("tollgate check -c"));
    let stop: u64 = unit_value("TimeoutStopSec").parse().unwrap();
    assert!(
        stop > 30,
        "systemd must wait longer than the 30 s grace period"
    );
}

#[test]
fn the_unit_writes_only_where_systemd_creates_directories_for_it() {
    let created = created_dirs();
    for dir in ["/var/lib/tollgate", "/var/log/tollgate", "/run/tollgate"] {
        assert!(created.iter().any(|d| d == dir), "{dir} not in {created:?}");
    }
    // A relative state.database (the default) lands in the state directory.
    assert_eq!(unit_value("WorkingDirectory"), "/var/lib/tollgate");
    // A path made writable must exist, or the service fails to start (226/NAMESPACE) on a host
    // where nothing created it; a leading `-` makes a missing path harmless.
    for value in unit_values("ReadWritePaths") {
        for path in value.split_whitespace().filter(|p| !p.starts_with('-')) {
            assert!(
                created.iter().any(|d| is_under(path, d)),
                "ReadWritePaths={path}: nothing creates it (created: {created:?})"
            );
        }
    }
    let sock = exec_start_arg("--upgrade-sock").expect("ExecStart names the upgrade socket");
    assert!(is_under(sock, "/run/tollgate"), "{sock}");
    if let Some(pid) = exec_start_arg("--pid-file") {
        assert!(is_under(pid, "/run/tollgate"), "{pid}");
    }
}

#[test]
fn the_unit_carries_the_hardening_a_network_daemon_needs() {
    let required = [
        "User=tollgate",
        "Group=tollgate",
        "UMask=0027",
        "CapabilityBoundingSet=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
    ];
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|line| !UNIT.lines().any(|l| l.trim() == *line))
        .collect();
    assert!(missing.is_empty(), "missing from the unit: {missing:?}");
    // No capability comes back through another door.
    for value in unit_values("AmbientCapabilities") {
        assert_eq!(value, "", "AmbientCapabilities={value}");
    }
}

/// `true` when systemd's tools are installed; `false` (the caller returns) only when
/// `TOLLGATE_SKIP_SYSTEMD=1`; otherwise the test fails saying what to install.
fn systemd_tools() -> bool {
    let found = ["systemd-analyze", "systemd-sysusers"]
        .iter()
        .all(|tool| Command::new(tool).arg("--version").output().is_ok());
    if found {
        return true;
    }
    if std::env::var("TOLLGATE_SKIP_SYSTEMD").as_deref() == Ok("1") {
        eprintln!("systemd-analyze/systemd-sysusers not found: skipped (TOLLGATE_SKIP_SYSTEMD=1)");
        return false;
    }
    panic!(
        "systemd-analyze and systemd-sysusers are needed to check deploy/tollgate.service: \
         install systemd (`make deps`, or `apt-get install systemd`), \
         or set TOLLGATE_SKIP_SYSTEMD=1 to skip these checks"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.env_remove("SYSTEMD_UNIT_PATH")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A throw-away root laid out as a fresh host after the install steps in the unit's header;
/// removed on drop.
struct Root(PathBuf);

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Root {
    fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    fn write(&self, abs: &str, contents: &str) {
        let path = self.path(abs);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Puts the host's file `host` at `abs` (a hard link when the file systems allow it: the
    /// debug binary is large). Never copies over an existing file: it may be a link to `host`.
    fn install(&self, host: &Path, abs: &str) {
        let path = self.path(abs);
        if path.exists() {
            return;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if std::fs::hard_link(host, &path).is_err() {
            std::fs::copy(host, &path)
                .unwrap_or_else(|e| panic!("{} -> {}: {e}", host.display(), path.display()));
        }
    }

    /// The unit as shipped, its user created by the shipped sysusers file (`systemd-sysusers
    /// --root`), this build's binary where ExecStart expects it, the other commands the unit
    /// runs taken from the host, and empty targets for the ones it orders itself against.
    fn provisioned() -> Root {
        let root = Root(temp_dir());
        root.write("/usr/lib/sysusers.d/tollgate.conf", SYSUSERS);
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        let out = run(Command::new("systemd-sysusers").arg(format!("--root={}", root.0.display())));
        assert!(out.status.success(), "systemd-sysusers: {}", text(&out));

        root.write("/etc/systemd/system/tollgate.service", UNIT);
        for line in UNIT.lines().filter(|l| l.starts_with("Exec")) {
            let (_, command) = line.split_once('=').unwrap();
            let program = command
                .trim_start_matches(['-', '@', ':', '+', '!'])
                .split_whitespace()
                .next()
                .unwrap();
            if program == INSTALLED_BIN {
                root.install(Path::new(&bin()), program);
            } else {
                assert!(
                    Path::new(program).exists(),
                    "{line}: {program} is not on this host"
                );
                root.install(Path::new(program), program);
            }
        }
        // The default dependencies (sysinit, basic, shutdown) and the targets the unit names.
        let mut targets = vec!["sysinit.target", "basic.target", "shutdown.target"];
        targets.extend(
            UNIT.split(|c: char| c.is_whitespace() || c == '=')
                .filter(|w| w.ends_with(".target")),
        );
        for target in targets {
            root.write(
                &format!("/usr/lib/systemd/system/{target}"),
                &format!("[Unit]\nDescription={target}\n"),
            );
        }
        root
    }
}

#[test]
fn systemd_verifies_the_unit_on_a_host_where_the_sysusers_file_created_its_user() {
    if !systemd_tools() {
        return;
    }
    let root = Root::provisioned();

    let passwd = std::fs::read_to_string(root.path("/etc/passwd")).unwrap();
    let group = std::fs::read_to_string(root.path("/etc/group")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{}:", unit_value("User"))))
        .unwrap_or_else(|| panic!("the sysusers file does not create User=: {passwd}"));
    let fields: Vec<&str> = user.split(':').collect();
    assert_eq!(fields[5], "/var/lib/tollgate", "home: {user}");
    assert!(fields[6].ends_with("/nologin"), "shell: {user}");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "a system user: {user}");
    assert!(
        group
            .lines()
            .any(|l| l.starts_with(&format!("{}:", unit_value("Group")))),
        "the sysusers file does not create Group=: {group}"
    );

    // `--recursive-errors=yes`: a warning (unknown key, bad value) fails too, not only an error.
    let unit = root.path("/etc/systemd/system/tollgate.service");
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.0.display()))
        .arg("--recursive-errors=yes")
        .arg("--man=no")
        .arg(&unit));
    let said = text(&out);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("tollgate.service"))
        .collect();
    assert!(complaints.is_empty(), "systemd-analyze verify: {said}");
}

#[test]
fn the_units_exposure_score_stays_where_it_was_measured() {
    if !systemd_tools() {
        return;
    }
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/tollgate.service");
    let out = run(Command::new("systemd-analyze")
        .arg("security")
        .arg("--offline=yes")
        .arg(format!("--threshold={MAX_EXPOSURE_TENTHS}"))
        .arg(&unit));
    let said = text(&out);
    let score = said
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for tollgate.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no overall exposure in: {said}"));
    // "1.2" in tenths, without floating point.
    let (whole, tenth) = score.split_once('.').unwrap_or((score, "0"));
    let tenths = whole.parse::<u32>().unwrap() * 10 + tenth.parse::<u32>().unwrap();
    assert!(
        tenths <= MAX_EXPOSURE_TENTHS && out.status.success(),
        "exposure {score}, at most {}.{} expected:\n{said}",
        MAX_EXPOSURE_TENTHS / 10,
        MAX_EXPOSURE_TENTHS % 10
    );
}

/// The JSON array of a Dockerfile instruction (`CMD ["run", ...]`).
fn dockerfile_array(instruction: &str) -> Vec<String> {
    let line = DOCKERFILE
        .lines()
        .find_map(|l| l.strip_prefix(instruction)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"));
    serde_json::from_str(line).unwrap()
}

fn dockerfile_value(instruction: &str) -> &'static str {
    DOCKERFILE
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(instruction)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"))
        .trim()
}

#[test]
fn the_container_runs_the_units_command_line_as_its_user_in_its_state_directory() {
    let mut command = dockerfile_array("ENTRYPOINT");
    command.extend(dockerfile_array("CMD"));
    assert_eq!(command.join(" "), unit_value("ExecStart"));
    assert_eq!(dockerfile_value("USER"), unit_value("User"));
    assert_eq!(dockerfile_value("WORKDIR"), unit_value("WorkingDirectory"));
    // Only the consumer plane is published.
    assert_eq!(dockerfile_value("EXPOSE"), "9000");
}

#[test]
fn the_compose_stack_publishes_the_consumer_plane_of_a_configuration_the_binary_accepts() {
    let out = Command::new(bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "-c", COMPOSE_CONFIG])
        .env("TOLLGATE_ADMIN_TOKEN", "compose-test-admin-token")
        .output()
        .unwrap();
    assert!(out.status.success(), "tollgate check: {}", text(&out));

    let config: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(COMPOSE_CONFIG))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["server"]["listen"].as_str(), Some("0.0.0.0:9000"));
    assert_eq!(config["state"]["backend"].as_str(), Some("redis"));

    let compose: serde_yaml::Value = serde_yaml::from_str(COMPOSE).unwrap();
    let gateway = &compose["services"]["tollgate"];
    let strings = |v: &serde_yaml::Value| -> Vec<String> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        strings(&gateway["volumes"])
            .contains(&"./compose.tollgate.yaml:/etc/tollgate/tollgate.yaml:ro".to_string()),
        "{gateway:?}"
    );
    assert_eq!(strings(&gateway["ports"]), ["9000:9000"]);
    assert!(compose["services"]["redis"].is_mapping());
}

#[test]
fn every_dashboard_query_is_filtered_by_job_and_instance() {
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../deploy/grafana/tollgate.json")).unwrap();
    let variables: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["job", "instance"]);
    let matchers = r#"{job=~"$job", instance=~"$instance""#;
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            // Every metric name is followed by a selector that starts with both matchers.
            let mut rest = expr;
            while let Some(at) = rest.find("tollgate_") {
                let name_len = rest[at..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len() - at);
                rest = &rest[at + name_len..];
                assert!(rest.starts_with(matchers), "{expr}");
            }
        }
    }
}

#[test]
fn every_metric_the_dashboard_queries_exists() {
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../deploy/grafana/tollgate.json")).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("tollgate_") {
                    let base = word
                        .trim_end_matches("_bucket")
                        .trim_end_matches("_sum")
                        .trim_end_matches("_count");
                    names.insert(base.to_string());
                }
            }
        }
    }
    assert!(names.len() >= 15, "{names:?}");
    let demo = DemoServer::start();
    // The job and instance variables take their values from a series every gateway exports
    // from start, so an instance that has served nothing yet can be chosen too.
    let variables_metric = "tollgate_config_reloads_total";
    for var in dash["templating"]["list"].as_array().unwrap() {
        let query = var["query"]["query"].as_str().unwrap();
        assert!(
            query.starts_with(&format!("label_values({variables_metric}")),
            "{query}"
        );
    }
    let fresh = scrape_metrics(demo.admin_port);
    assert!(
        fresh.contains(&format!("\n{variables_metric}{{")),
        "{variables_metric} has no sample before any request:\n{fresh}"
    );
    // A short run on the demo configuration, so histograms and counters have samples.
    let body = r#"{"model":"gpt-4o","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(
        post_json(
            demo.port,
            "/v1/chat/completions",
            Some("key-team-engineering"),
            body
        )
        .status,
        200
    );
    let scrape = || scrape_metrics(demo.admin_port);
    let missing = |text: &str| -> Vec<String> {
        names
            .iter()
            .filter(|n| !text.contains(&format!("# TYPE {n} ")))
            .cloned()
            .collect()
    };
    // The request's own samples are recorded when it is logged, just after it is answered.
    wait_until("every dashboard metric is exported", 5, || {
        missing(&scrape()).is_empty()
    });
    assert_eq!(missing(&scrape()), Vec::<String>::new());
}

fn scrape_metrics(admin_port: u16) -> String {
    String::from_utf8(
        request(
            admin_port,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer demo-admin-token")],
            b"",
        )
        .body,
    )
    .unwrap()
}
