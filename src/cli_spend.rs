//! `tollgate spend`: the admin plane's spend report (`GET /spend`) printed as a table, or passed
//! through as CSV or JSON (through [`crate::admin_client`]; the admin token from an environment
//! variable, never an argument).
//!
//! Exit status: 0 done; 1 the gateway refused (its error printed); 2 it could not be asked.

use crate::admin_client::{self, encode, DEFAULT_TOKEN_ENV, DEFAULT_URL};
use clap::Args;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// `tollgate spend …`
#[derive(Args)]
pub struct SpendArgs {
    /// The first UTC day, YYYY-MM-DD (default: today).
    #[arg(long)]
    from: Option<String>,
    /// The last UTC day, YYYY-MM-DD, included (default: today).
    #[arg(long)]
    to: Option<String>,
    /// consumer, team, model, day or key.
    #[arg(long, default_value = "consumer")]
    group_by: String,
    /// Print the gateway's CSV instead of a table.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Print the gateway's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The admin plane's URL.
    #[arg(long, default_value = DEFAULT_URL)]
    admin: String,
    /// The environment variable holding the admin token (the token is never an argument).
    #[arg(long, default_value = DEFAULT_TOKEN_ENV)]
    token_env: String,
    /// The CA certificates (PEM) to trust for an https:// admin URL.
    #[arg(long)]
    cacert: Option<PathBuf>,
}

/// Runs `tollgate spend`.
pub fn run(args: SpendArgs) -> ExitCode {
    const CMD: &str = "tollgate spend";
    let client = match admin_client::from_env_or_exit(
        CMD,
        &args.admin,
        &args.token_env,
        args.cacert.as_deref(),
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let q = query(
        args.from.as_deref(),
        args.to.as_deref(),
        &args.group_by,
        args.csv,
    );
    let reply = match admin_client::answered(CMD, client.get(&format!("/spend?{q}"))) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if args.csv {
        print!("{}", String::from_utf8_lossy(&reply.body));
        return ExitCode::SUCCESS;
    }
    let report = match admin_client::json_or_exit(CMD, &reply) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if args.json {
        println!("{report:#}");
        return ExitCode::SUCCESS;
    }
    match table(&report) {
        Ok(t) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{CMD}: {e}");
            ExitCode::from(2)
        }
    }
}

/// The report's columns: its JSON name and the heading printed.
const COLUMNS: [(&str, &str); 8] = [
    ("requests", "requests"),
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cached_tokens", "cached"),
    ("cache_write_tokens", "cache writes"),
    ("reasoning_tokens", "reasoning"),
    ("cost_usd", "cost USD"),
    ("estimated_requests", "estimated"),
];

/// The query string for `GET /spend`, every value percent-encoded.
pub fn query(from: Option<&str>, to: Option<&str>, group_by: &str, csv: bool) -> String {
    let mut q = format!("group_by={}", encode(group_by));
    for (name, v) in [("from", from), ("to", to)] {
        if let Some(v) = v {
            q.push_str(&format!("&{name}={}", encode(v)));
        }
    }
    if csv {
        q.push_str("&format=csv");
    }
    q
}

/// The JSON report as an aligned text table: one line per group, then the total.
pub fn table(report: &Value) -> Result<String, String> {
    let group = report["group_by"]
        .as_str()
        .ok_or("the answer is not a spend report")?;
    let rows = report["rows"]
        .as_array()
        .ok_or("the answer is not a spend report")?;
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut lines: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 2);
    let mut head = vec![group.to_string()];
    head.extend(COLUMNS.iter().map(|(_, h)| h.to_string()));
    lines.push(head);
    for r in rows.iter().chain(std::iter::once(&report["total"])) {
        let name = if std::ptr::eq(r, &report["total"]) {
            "total".to_string()
        } else {
            cell(&r[group])
        };
        let mut line = vec![name];
        line.extend(COLUMNS.iter().map(|(k, _)| cell(&r[*k])));
        lines.push(line);
    }
    let widths: Vec<usize> = (0..=COLUMNS.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "spend from {} to {} by {group}\n",
        cell(&report["from"]),
        cell(&report["to"])
    );
    for l in &lines {
        let mut text = String::new();
        for (i, c) in l.iter().enumerate() {
            if i == 0 {
                text.push_str(&format!("{c:<w$}", w = widths[i]));
            } else {
                text.push_str(&format!("  {c:>w$}", w = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_report_prints_as_an_aligned_table_ending_with_its_total() {
        let line = |n: u64, cost: &str| {
            json!({"requests": n, "input_tokens": 10 * n, "output_tokens": 5, "cached_tokens": 0,
                   "cache_write_tokens": 0, "reasoning_tokens": 0, "cost_usd": cost,
                   "cost_nanos": 1, "estimated_requests": 0})
        };
        let mut a = line(2, "0.000600000");
        a["team"] = json!("payments");
        let mut b = line(12, "0.012000000");
        b["team"] = json!("qa");
        let report = json!({"from": "2026-11-01", "to": "2026-11-28", "group_by": "team",
                            "rows": [a, b], "total": line(14, "0.012600000")});
        let t = table(&report).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "spend from 2026-11-01 to 2026-11-28 by team");
        assert!(lines[1].starts_with("team      requests  input"), "{t}");
        assert!(lines[2].starts_with("payments         2     20"), "{t}");
        assert!(lines[4].starts_with("total           14    140"), "{t}");
        assert!(lines[4].contains("0.012600000"), "{t}");
        assert!(table(&json!({"error": "x"})).is_err());
    }

    #[test]
    fn the_query_names_only_what_was_given() {
        assert_eq!(query(None, None, "consumer", false), "group_by=consumer");
        assert_eq!(
            query(Some("2026-11-01"), Some("2026-11-02"), "day", true),
            "group_by=day&from=2026-11-01&to=2026-11-02&format=csv"
        );
    }
}
