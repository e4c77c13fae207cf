//! A private `redis-server` on a free loopback port, killed on drop (nothing assumes 6379).
//! Without `redis-server` on the machine, [`RedisServer::start`] returns `None` and the test is
//! skipped, unless `TOLLGATE_REQUIRE_REDIS` is set (as `make test` does, after installing it).

use super::proc::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// `None` when redis-server is not installed and not required.
    pub fn start() -> Option<RedisServer> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                std::env::var_os("TOLLGATE_REQUIRE_REDIS").is_none(),
                "redis-server is required (make test installs it)"
            );
            eprintln!("redis-server not found: skipped");
            return None;
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(RedisServer { port, child })
    }

    /// Kills the server (its port stays refused until the test ends).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The `state:` lines for a gateway sharing this Redis.
    pub fn state_yaml(&self) -> String {
        format!(
            "  backend: redis\n  redis_url: \"{}\"\n  key_prefix: \"test:\"\n  redis_timeout_ms: 1000\n",
            self.url()
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
