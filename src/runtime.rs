//! The live state: one validated configuration and everything derived from it, behind an atomic
//! pointer. A request loads it once and runs to the end on that snapshot.

use crate::auth::KeyIndex;
use crate::config::Config;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// A configuration plus the indexes built from it.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub keys: KeyIndex,
    /// The configuration file's version (a prefix of its SHA-256).
    pub version: String,
    /// When it was loaded, Unix seconds.
    pub loaded_at: u64,
}

impl Runtime {
    pub fn new(config: Config, version: String) -> Self {
        let keys = KeyIndex::new(&config.consumers);
        Runtime {
            config,
            keys,
            version,
            loaded_at: crate::state::unix_now(),
        }
    }
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
