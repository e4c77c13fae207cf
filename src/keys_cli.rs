//! `tollgate keys create|list|revoke|rotate`: the admin API's key routes from the command line
//! (through [`crate::admin_client`]). The admin token is read from an environment variable
//! (`--token-env`, default `TOLLGATE_ADMIN_TOKEN`), never taken as an argument. A new key is
//! printed once, on standard output; everything else is metadata.
//!
//! Exit status: 0 done; 1 the gateway refused (its error printed); 2 it could not be asked.

use crate::admin_client::{self, encode, Reply, DEFAULT_TOKEN_ENV, DEFAULT_URL};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// `tollgate keys …`
#[derive(Args)]
pub struct KeysArgs {
    /// The admin plane's URL.
    #[arg(long, global = true, default_value = DEFAULT_URL)]
    admin: String,
    /// The environment variable holding the admin token (the token is never an argument).
    #[arg(long, global = true, default_value = DEFAULT_TOKEN_ENV)]
    token_env: String,
    /// The CA certificates (PEM) to trust for an https:// admin URL.
    #[arg(long, global = true)]
    cacert: Option<PathBuf>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Issue a key for a configured consumer; the key is printed this once.
    Create {
        /// The consumer's id (as configured).
        #[arg(long)]
        consumer: String,
        /// A name for the key (who holds it, where it is deployed).
        #[arg(long)]
        label: Option<String>,
        /// When it stops working: 2027-01-31 or 2027-01-31T12:00:00Z (UTC).
        #[arg(long)]
        expires: Option<String>,
        /// A model the key may use (repeat for more; within the consumer's allowlist). None:
        /// every model the consumer may use.
        #[arg(long = "model")]
        models: Vec<String>,
    },
    /// List issued keys: metadata only, never a key.
    List {
        /// Only this consumer's keys.
        #[arg(long)]
        consumer: Option<String>,
        /// Print the JSON the gateway answered instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: refused from now on.
    Revoke {
        /// The key's id (`key_…`).
        id: String,
    },
    /// Replace a key: a new one is printed once; the old one keeps working for the overlap.
    Rotate {
        /// The key's id (`key_…`).
        id: String,
        /// How long the old key keeps working (default: the gateway's
        /// `keys.rotation_overlap_seconds`).
        #[arg(long)]
        overlap_seconds: Option<u64>,
    },
}

/// Runs one `tollgate keys` command.
pub fn run(args: KeysArgs) -> ExitCode {
    let client = match admin_client::from_env_or_exit(
        "tollgate keys",
        &args.admin,
        &args.token_env,
        args.cacert.as_deref(),
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (reply, show): (_, fn(&Value)) = match args.command {
        KeysCommand::Create {
            consumer,
            label,
            expires,
            models,
        } => {
            let mut body = json!({ "consumer": consumer });
            if let Some(l) = label {
                body["label"] = json!(l);
            }
            if let Some(e) = expires {
                body["expires"] = json!(e);
            }
            if !models.is_empty() {
                body["models"] = json!(models);
            }
            (client.post("/keys", &body), print_new_key)
        }
        KeysCommand::List { consumer, json } => {
            let path = match consumer {
                Some(c) => format!("/keys?consumer={}", encode(&c)),
                None => "/keys".to_string(),
            };
            let show: fn(&Value) = if json { print_json } else { print_table };
            (client.get(&path), show)
        }
        KeysCommand::Revoke { id } => (
            client.delete(&format!("/keys/{}", encode(&id))),
            print_revoked,
        ),
        KeysCommand::Rotate {
            id,
            overlap_seconds,
        } => {
            let body = match overlap_seconds {
                Some(s) => json!({ "overlap_seconds": s }),
                None => json!({}),
            };
            (
                client.post(&format!("/keys/{}/rotate", encode(&id)), &body),
                print_new_key,
            )
        }
    };
    finish(reply, show)
}

fn finish(reply: Result<Reply, String>, show: fn(&Value)) -> ExitCode {
    match admin_client::answered("tollgate keys", reply)
        .and_then(|r| admin_client::json_or_exit("tollgate keys", &r))
    {
        Ok(v) => {
            show(&v);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn or_dash(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "(consumer's)".into(),
        Value::Array(a) => a
            .iter()
            .map(|m| m.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

fn print_new_key(v: &Value) {
    println!("key:      {}", or_dash(&v["key"]));
    println!("id:       {}", or_dash(&v["id"]));
    println!("consumer: {}", or_dash(&v["consumer"]));
    println!("label:    {}", or_dash(&v["label"]));
    let expires = v["expires"].as_str().unwrap_or("never");
    println!("expires:  {expires}");
    println!("models:   {}", or_dash(&v["models"]));
    if v["rotated_from"].is_string() {
        println!(
            "replaces: {} (works until {})",
            or_dash(&v["rotated_from"]),
            or_dash(&v["old_key_expires"])
        );
    }
    eprintln!("The key is shown only now: give it to its holder. Tollgate keeps only its digest.");
}

fn print_revoked(v: &Value) {
    println!(
        "key {} of consumer {} revoked at {}",
        or_dash(&v["id"]),
        or_dash(&v["consumer"]),
        or_dash(&v["revoked"])
    );
}

fn print_json(v: &Value) {
    println!("{v:#}");
}

/// The keys as a table, one line each, columns padded to their widest cell.
fn print_table(v: &Value) {
    const COLUMNS: [(&str, &str); 8] = [
        ("ID", "id"),
        ("CONSUMER", "consumer"),
        ("STATUS", "status"),
        ("LABEL", "label"),
        ("CREATED", "created"),
        ("EXPIRES", "expires"),
        ("LAST USED", "last_used"),
        ("MODELS", "models"),
    ];
    let keys = v["keys"].as_array().cloned().unwrap_or_default();
    let mut rows: Vec<Vec<String>> = vec![COLUMNS.iter().map(|(h, _)| h.to_string()).collect()];
    rows.extend(
        keys.iter()
            .map(|k| COLUMNS.iter().map(|(_, f)| or_dash(&k[*f])).collect()),
    );
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    if keys.is_empty() {
        println!("(no issued keys)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_values_are_percent_encoded() {
        assert_eq!(encode("key_00ff"), "key_00ff");
        assert_eq!(encode("a b/c?"), "a%20b%2Fc%3F");
    }

    #[test]
    fn cells_show_dashes_for_nothing_and_lists_joined() {
        assert_eq!(or_dash(&Value::Null), "-");
        assert_eq!(or_dash(&json!([])), "(consumer's)");
        assert_eq!(or_dash(&json!(["a", "b"])), "a,b");
    }
}
