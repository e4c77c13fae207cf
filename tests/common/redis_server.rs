//! A private `redis-server` for the tests that share state through Redis: on a free loopback
//! port (nothing assumes 6379), without persistence, killed on drop. Without `redis-server` on
//! the machine those tests are skipped, unless `TOLLGATE_REQUIRE_REDIS` is set.

use super::proc::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private Redis on a free port; killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    /// `None` when redis-server is not installed and not required.
    pub fn start() -> Option<Redis> {
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
        let mut r = Redis {
            port: free_port(),
            child: None,
        };
        r.run();
        Some(r)
    }

    pub fn run(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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

    /// Sends `SIGSTOP` (`pause`) or `SIGCONT` to the server: it keeps its connections and
    /// answers nothing while stopped.
    pub fn signal(&self, pause: bool) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let sig = if pause { "-STOP" } else { "-CONT" };
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    }

    /// How many keys match `pattern` (an inline `KEYS` command).
    pub fn count_keys(&self, pattern: &str) -> usize {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(format!("KEYS {pattern}\r\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line.trim_start_matches('*').trim().parse().unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
