//! The live state: one validated configuration and everything compiled from it (the content
//! filter's matcher, the key index), behind an atomic pointer. A request loads it once and runs to
//! the end on that snapshot.
//!
//! Loading is here because it spans layers: `config` validates the file (and knows nothing
//! above it), the stages compile their parts from the validated form. Every problem either finds
//! is returned with its YAML path, so `tollgate check` and a reload report them all.

use crate::config::{self, Config, Problem};
use crate::stages::auth::KeyIndex;
use crate::stages::filter::Filter;
use arc_swap::ArcSwap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A configuration plus what is compiled from it.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    /// The content filter's matcher, compiled from `config.filter`.
    pub filter: Filter,
    pub keys: KeyIndex,
    /// The client headers some backend forwards (names or prefixes ending in `*`): part of the
    /// cache key.
    pub vary: Vec<String>,
    /// The configuration file's version (a prefix of its SHA-256).
    pub version: String,
    /// When it was loaded, Unix seconds.
    pub loaded_at: u64,
}

impl Runtime {
    /// Compiles what the request path needs from a validated configuration.
    pub fn build(config: Config, version: String) -> Result<Runtime, Vec<Problem>> {
        let filter = Filter::compile(&config.filter)?;
        let keys = KeyIndex::new(&config.consumers);
        let vary = config
            .forwarded_header_patterns()
            .into_iter()
            .map(str::to_string)
            .collect();
        Ok(Runtime {
            config,
            filter,
            keys,
            vary,
            version,
            loaded_at: crate::state::unix_now(),
        })
    }
}

/// Reads, validates and compiles a configuration file; the version is its digest's prefix.
pub fn load_file(path: &Path) -> Result<Runtime, Vec<Problem>> {
    let (config, version) = config::load_file_versioned(path)?;
    Runtime::build(config, version)
}

/// Validates and compiles configuration text; `env` looks up environment variables.
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Runtime, Vec<Problem>> {
    let config = config::load_str(text, env)?;
    Runtime::build(config, config::version_of(text))
}

/// As [`load_file`], with a content-filter rule pack applied (see
/// [`config::load_file_with_rule_pack`]).
pub fn load_file_with_rule_pack(path: &Path, pack: &Path) -> Result<Runtime, Vec<Problem>> {
    let config = config::load_file_with_rule_pack(path, pack)?;
    Runtime::build(config, String::new())
}

/// The swappable handle every service shares.
#[derive(Debug, Clone)]
pub struct LiveState {
    current: Arc<ArcSwap<Runtime>>,
    /// Snapshots a reload replaced, kept until no request holds them: freeing one (100,000
    /// consumers take tens of milliseconds) must never fall to the request that lets go of it
    /// last. [`LiveState::free_retired`] frees them, off the request path.
    retired: Arc<Mutex<Vec<Arc<Runtime>>>>,
}

impl LiveState {
    pub fn new(runtime: Runtime) -> Self {
        LiveState {
            current: Arc::new(ArcSwap::from_pointee(runtime)),
            retired: Arc::default(),
        }
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// Makes `runtime` the current snapshot; requests already running keep the one they loaded.
    /// The replaced one is retired, not freed here.
    pub fn swap(&self, runtime: Runtime) {
        let old = self.current.swap(Arc::new(runtime));
        self.retired_list().push(old);
    }

    /// Frees the retired snapshots that no request holds any more and returns how many are still
    /// held. Freeing is blocking work: call it from a reload or a background task.
    pub fn free_retired(&self) -> usize {
        let retired = std::mem::take(&mut *self.retired_list());
        let mut held = Vec::new();
        for r in retired {
            // `try_unwrap` succeeds only for the last reference, so no request can be holding it
            // or take it again; the drop happens here, outside the lock.
            if let Err(r) = Arc::try_unwrap(r) {
                held.push(r);
            }
        }
        let mut list = self.retired_list();
        list.extend(held);
        list.len()
    }

    /// How many replaced snapshots wait to be freed.
    pub fn retired(&self) -> usize {
        self.retired_list().len()
    }

    fn retired_list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Runtime>>> {
        self.retired.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(version: &str) -> Runtime {
        let text = include_str!("../conf/demo.yaml");
        let mut rt = load_str(text, &|_| None).unwrap();
        rt.version = version.into();
        rt
    }

    #[test]
    fn a_replaced_snapshot_is_freed_only_by_free_retired_once_no_request_holds_it() {
        let live = LiveState::new(runtime("one"));
        let held = live.current();
        let weak = Arc::downgrade(&held);
        live.swap(runtime("two"));
        assert_eq!(live.current().version, "two");
        // A request still runs on "one": it stays.
        assert_eq!(live.free_retired(), 1);
        drop(held);
        // The request let go, but the snapshot waits for the reloader, not the request.
        assert!(weak.upgrade().is_some());
        assert_eq!(live.free_retired(), 0);
        assert!(weak.upgrade().is_none());
    }
}
