//! Assembling the daemon: a Pingora server with the consumer plane, the admin plane and,
//! for `tollgate demo`, the built-in mock backend, all in one process.

use crate::access_log::AccessLog;
use crate::admin::Admin;
use crate::downstream::connections::Connections;
use crate::downstream::tls::Plane;
use crate::gateway::Gateway;
use crate::mock::{Mock, MockOptions};
use crate::reload::{Reloader, SighupService};
use crate::runtime::{LiveState, Runtime};
use crate::state::store::{self, Store};
use crate::state::unix_now;
use crate::state::State;
use crate::trace::Tracer;
use crate::upstream::health::{HealthChecker, HealthService};
use crate::upstream::peer::Resolver;
use crate::upstream::webhook::WebhookService;
use pingora::apps::http_app::HttpServer;
use pingora::apps::HttpServerOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A mock backend to run inside the same process.
pub struct MockService {
    pub listen: String,
    pub threads: usize,
    pub options: MockOptions,
}

/// How the process runs: in the foreground or as a daemon, fresh or taking over listeners.
#[derive(Debug, Clone)]
pub struct Process {
    pub daemon: bool,
    pub pid_file: String,
    pub upgrade: bool,
    pub upgrade_sock: String,
}

impl Default for Process {
    fn default() -> Self {
        Process {
            daemon: false,
            pid_file: "/tmp/tollgate.pid".into(),
            upgrade: false,
            upgrade_sock: "/tmp/tollgate_upgrade.sock".into(),
        }
    }
}

fn server_conf(threads: usize, grace_period_seconds: u64, process: &Process) -> ServerConf {
    ServerConf {
        threads,
        grace_period_seconds: Some(grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(grace_period_seconds.saturating_add(5)),
        daemon: process.daemon,
        pid_file: process.pid_file.clone(),
        upgrade_sock: process.upgrade_sock.clone(),
        ..ServerConf::default()
    }
}

/// The assembled daemon: the Pingora server plus what must be finished after it stops.
pub struct Daemon {
    server: Server,
    access_log: Arc<AccessLog>,
    tracer: Option<Arc<Tracer>>,
}

/// Longest wait at exit for the last spans to reach the collector.
const TRACE_FLUSH: Duration = Duration::from_secs(3);

impl Daemon {
    /// Runs until a signal stops the server (after its graceful shutdown), writes out the access
    /// log's last lines and exports the last spans (each bounded in time), and exits.
    pub fn run_forever(self) -> ! {
        self.server.run(RunArgs::default());
        self.access_log.flush(Duration::from_secs(2));
        if let Some(t) = &self.tracer {
            t.flush(TRACE_FLUSH);
        }
        std::process::exit(0)
    }
}

/// Builds the Pingora server for `runtime` (loaded from `path`, plus an optional in-process
/// mock). Fails only when the persisted spend cannot be read.
pub fn build(runtime: Runtime, path: &Path, mock: Option<MockService>) -> Result<Daemon, String> {
    build_process(runtime, path, mock, Process::default())
}

/// As [`build`], with daemon and upgrade settings.
pub fn build_process(
    runtime: Runtime,
    path: &Path,
    mock: Option<MockService>,
    process: Process,
) -> Result<Daemon, String> {
    let config = &runtime.config;
    let server_cfg = config.server.clone();
    let state_cfg = config.state.clone();
    let shared = match &state_cfg.shared {
        Some(cfg) => Some(crate::state::Shared::new(cfg)?),
        None => None,
    };
    let upkeep = shared
        .as_ref()
        .map(|s| crate::state::redis::Upkeep(Arc::clone(&s.store)));
    let store = Store::open(&state_cfg.database, state_cfg.durability, state_cfg.ledger)
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let state = State::new(shared);
    store::restore_spend(&store, &state.spend, unix_now())
        .map_err(|e| format!("cannot read spend from the database: {e}"))?;
    let state = state.with_store(Arc::new(store));
    state
        .keys
        .load_now()
        .map_err(|e| format!("cannot read the issued keys: {e}"))?;
    let state = Arc::new(state);
    let resolver = Arc::new(Resolver::default());
    let opt = Opt {
        upgrade: process.upgrade,
        daemon: process.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(
        opt,
        server_conf(
            server_cfg.threads,
            server_cfg.grace_period_seconds,
            &process,
        ),
    );
    server.bootstrap();
    let access_log = Arc::new(AccessLog::start(
        config.access_log.clone(),
        config.access_log_queue,
    ));
    crate::metrics::prime(config);
    let tracer = Tracer::start(&config.tracing);
    let live = LiveState::new(runtime);
    let reloader = Arc::new(Reloader::new(
        path.to_path_buf(),
        live.clone(),
        Arc::clone(&access_log),
    ));

    // The consumer plane runs Pingora's HTTP/1 loop itself, over guarded client streams (header
    // deadline, idle-connection cap; see `connections`); HTTP/2 connections go to Pingora's.
    let mut gateway = pingora::proxy::http_proxy(
        &server.configuration,
        Gateway::new(
            live.clone(),
            Arc::clone(&state),
            Arc::clone(&resolver),
            Arc::clone(&access_log),
            tracer.clone(),
        ),
    );
    gateway.server_options = Some(http_options(server_cfg.h2c));
    let mut proxy = Service::new(
        "tollgate consumer plane".to_string(),
        Connections::new(gateway, live.clone(), Plane::Consumer),
    );
    listen(&mut proxy, &live, Plane::Consumer, &server_cfg)?;
    if server_cfg.proxy_protocol && server_cfg.tls.is_some() {
        proxy
            .endpoints()
            .set_pre_tls_callback(Arc::new(crate::downstream::proxied::PreTls {
                live: live.clone(),
            }));
    }
    proxy.threads = Some(server_cfg.threads);
    server.add_service(proxy);

    let mut admin_app = HttpServer::new_app(Admin::new(
        live.clone(),
        Arc::clone(&state),
        Arc::clone(&reloader),
    ));
    admin_app.server_options = Some(http_options(false));
    let mut admin = Service::new(
        "tollgate admin plane".to_string(),
        Connections::new(admin_app, live.clone(), Plane::Admin),
    );
    listen(&mut admin, &live, Plane::Admin, &server_cfg)?;
    admin.threads = Some(1);
    server.add_service(admin);

    server.add_service(background_service("sighup reload", SighupService(reloader)));
    if let Some(queue) = state.alerts.take_receiver() {
        server.add_service(background_service(
            "budget alert webhook",
            WebhookService::new(queue, Arc::clone(&resolver)),
        ));
    }
    server.add_service(background_service(
        "health checks",
        HealthService(HealthChecker::new(
            live.clone(),
            Arc::clone(&state),
            resolver,
        )),
    ));
    server.add_service(background_service(
        "issued keys",
        crate::state::keys::Upkeep(Arc::clone(&state.keys)),
    ));

    if let Some(u) = upkeep {
        server.add_service(background_service("shared state upkeep", u));
    }
    if let Some(m) = mock {
        server.add_service(mock_service(m));
    }
    Ok(Daemon {
        server,
        access_log,
        tracer,
    })
}

/// How long an HTTP/2 connection with no stream open is kept.
const H2_IDLE: Duration = Duration::from_secs(60);

/// Pingora's options for a plane: prior-knowledge HTTP/2 on a plain listener when `h2c`, and
/// idle HTTP/2 connections closed after [`H2_IDLE`].
fn http_options(h2c: bool) -> HttpServerOptions {
    let mut o = HttpServerOptions::default();
    o.h2c = h2c;
    o.h2_idle_timeout = Some(H2_IDLE);
    o
}

/// Adds the plane's listener, as the configuration `server` says: plain TCP, or TLS with the
/// live certificate.
fn listen<A>(
    service: &mut Service<A>,
    live: &LiveState,
    plane: Plane,
    server: &crate::config::ServerConfig,
) -> Result<(), String> {
    let (addr, tls) = match plane {
        Plane::Consumer => (server.listen, server.tls.as_ref()),
        Plane::Admin => (server.admin.listen, server.admin.tls.as_ref()),
    };
    let http2 = server.http2;
    let endpoint = ListenerConfig::tcp(addr.to_string()).l4_buffer(CLIENT_READ_BUFFER);
    service.add_listener(match tls {
        None => endpoint,
        Some(tls) => endpoint.tls(crate::downstream::tls::settings(live, plane, tls, http2)?),
    });
    Ok(())
}

/// The read buffer of each client connection. Pingora's default is 64 KiB, zero-filled at
/// accept, so each open connection (a stream waiting on its backend, an idle keep-alive client)
/// held 64 KiB of resident memory whatever it sent. Reads of a request's header and body go to
/// buffers of their own at least this large, which a smaller buffer passes straight through (no
/// extra copy); a TLS record is read whole across several reads.
const CLIENT_READ_BUFFER: L4BufferSettings = L4BufferSettings {
    read: Some(4096),
    write: None,
};

fn mock_service(m: MockService) -> Service<Mock> {
    let mut service = Service::new("tollgate mock".to_string(), Mock::new(m.options));
    service.add_tcp(&m.listen);
    service.threads = Some(m.threads.max(1));
    service
}

/// Builds a server that runs only the mock; with `tls` (certificate and key PEM files) it
/// serves HTTPS.
pub fn build_mock(m: MockService, tls: Option<(String, String)>) -> Result<Server, String> {
    let mut server = Server::new_with_opt_and_conf(
        Opt::default(),
        server_conf(m.threads.max(1), 1, &Process::default()),
    );
    server.bootstrap();
    let service = match tls {
        None => mock_service(m),
        Some((cert, key)) => {
            let mut service = Service::new("tollgate mock (TLS)".to_string(), Mock::new(m.options));
            service
                .add_tls(&m.listen, &cert, &key)
                .map_err(|e| format!("cannot serve TLS with {cert} and {key}: {e}"))?;
            service.threads = Some(m.threads.max(1));
            service
        }
    };
    server.add_service(service);
    Ok(server)
}
