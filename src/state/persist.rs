//! Persisting spend to the local state file, so a restart in the middle of the day keeps
//! everyone's spent-today. Writes are atomic (write a temporary file, fsync, rename) and happen
//! off the request path: a background service writes changed spend every
//! `state.persist_interval_ms` and once more on shutdown. A crash loses at most one interval.

use super::spend::{Ledger, SavedAccount};
use super::State;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
struct SpendFile {
    version: u32,
    consumers: BTreeMap<String, SavedAccount>,
}

/// Reads the state file; a missing file is an empty state, a corrupt one an error.
pub fn load(path: &Path) -> Result<BTreeMap<String, SavedAccount>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: SpendFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a Tollgate spend file ({e}); move it away to start with no recorded spend",
            path.display()
        )
    })?;
    if file.version != 1 {
        return Err(format!(
            "{}: unknown version {}",
            path.display(),
            file.version
        ));
    }
    Ok(file.consumers)
}

/// Writes the snapshot atomically.
pub fn save(path: &Path, consumers: BTreeMap<String, SavedAccount>) -> std::io::Result<()> {
    let body = serde_json::to_vec_pretty(&SpendFile {
        version: 1,
        consumers,
    })
    .map_err(std::io::Error::other)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("tollgate-spend")
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes changed spend periodically and on shutdown.
pub struct Persister {
    pub state: Arc<State>,
    pub path: PathBuf,
    pub interval: Duration,
}

impl Persister {
    fn flush(&self, ledger: &Ledger) {
        if let Some(snapshot) = ledger.snapshot_if_dirty() {
            if let Err(e) = save(&self.path, snapshot) {
                log::error!("cannot write spend to {}: {e}", self.path.display());
                // Try again next tick.
                ledger.mark_dirty();
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Persister {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(self.interval);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(&self.state.spend),
                _ = shutdown.changed() => {
                    self.flush(&self.state.spend);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_a_missing_file_is_empty() {
        let dir = std::env::temp_dir().join(format!("tollgate-persist-{}", std::process::id()));
        let path = dir.join("spend.json");
        assert!(load(&path).unwrap().is_empty());
        let mut m = BTreeMap::new();
        m.insert(
            "c".to_string(),
            SavedAccount {
                day: 1,
                spent_nanos: 2,
                total_nanos: 3,
            },
        );
        save(&path, m.clone()).unwrap();
        assert_eq!(load(&path).unwrap(), m);
        std::fs::write(&path, "garbage").unwrap();
        assert!(load(&path).unwrap_err().contains("move it away"));
    }
}
