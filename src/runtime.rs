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
use std::sync::Arc;

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
pub struct LiveState(Arc<ArcSwap<Runtime>>);

impl LiveState {
    pub fn new(runtime: Runtime) -> Self {
        LiveState(Arc::new(ArcSwap::from_pointee(runtime)))
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Runtime> {
        self.0.load_full()
    }

    /// Makes `runtime` the current snapshot; requests already running keep the one they loaded.
    pub fn swap(&self, runtime: Runtime) {
        self.0.store(Arc::new(runtime));
    }
}
