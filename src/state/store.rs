//! The embedded store: one SQLite database (the library compiled in, so a fresh machine needs
//! nothing) holding what must outlive the process — the per-request spend ledger, the daily
//! spend budgets restart from, and issued keys.
//!
//! Writes: one writer thread owns the write connection and commits in groups: a request's
//! settlement sends its ledger row and waits (asynchronously) for the commit that holds it, so a
//! whole answer is written to the client only after its row is committed, and a crash — even
//! `kill -9` — loses no settled spend. Rows that arrive while a commit runs go into the next one,
//! so many requests share one commit. WAL mode with `synchronous = NORMAL`: a commit survives the
//! process dying at any point; only an operating-system crash or power loss can take the last
//! commits back (`state.durability: machine` closes that too, at one fsync per commit).
//!
//! Reads (reports, start-up) use their own connection: WAL lets them run beside the writer.
//!
//! Schema: migrations numbered in `migrations/`, applied in order inside a transaction each and
//! recorded in SQLite's `user_version`; a database newer than this binary is refused.

use super::spend::{DaySpend, Ledger};
pub use crate::config::types::Durability;
use crate::usage::Usage;
use rusqlite::{params, Connection, OpenFlags, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The schema's migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_ledger.sql"),
    include_str!("../../migrations/0002_api_keys.sql"),
];

/// Settlements waiting for the writer; beyond this, settling waits for room (back-pressure on
/// the requests, never a lost row).
const QUEUE: usize = 16_384;
/// Most jobs in one commit.
const MAX_BATCH: usize = 1_024;
/// How often the WAL is copied into the database (so it holds about this much of the writes).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How long a connection waits for a lock held by another (a backup, a second process).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in the store (no secret, no prompt text: paths and SQLite's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// One settled request, as the ledger records it. Never prompt or answer text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// When it settled (Unix seconds).
    pub at: u64,
    /// The UTC day its cost counts on (the day it was admitted).
    pub day: u64,
    pub request_id: String,
    pub consumer: String,
    pub team: String,
    pub key_id: String,
    pub model: String,
    pub backend: String,
    pub usage: Usage,
    pub cost_nanos: u64,
    pub status: u16,
    pub outcome: &'static str,
}

/// Run by the writer inside the group's transaction (in a savepoint of its own); returns whether
/// it succeeded and what to tell its caller once the group is committed (or not).
type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;
/// Told whether the group holding a write was committed.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

enum Job {
    Record(Box<LedgerRow>, oneshot::Sender<Result<(), StoreError>>),
    Write(WriteJob),
}

/// The embedded database.
///
/// Its connections and its writer thread are made on first use, not when it is opened: the
/// daemon forks after building everything (`run -d`), and neither a thread nor an SQLite
/// connection survives a fork.
pub struct Store {
    path: PathBuf,
    durability: Durability,
    /// Ledger rows are kept (`state.ledger`); otherwise only the daily spend.
    keep_rows: bool,
    /// The writer's queue, once it runs.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// The read connection, once opened.
    reader: Arc<Mutex<Option<Connection>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("keep_rows", &self.keep_rows)
            .finish()
    }
}

impl Store {
    /// Opens (creating it if needed) the database at `path` in WAL mode and brings its schema
    /// up to date; its connection is closed again (see [`Store`]).
    pub fn open(path: &Path, durability: Durability, keep_rows: bool) -> Result<Store, StoreError> {
        // Made absolute now: connections are opened later, after `run -d` has changed the
        // working directory to `/`.
        let path = &std::path::absolute(path)
            .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut c = open_writer(path, durability)?;
        migrate(&mut c).map_err(|e| StoreError(format!("{}: {}", path.display(), e.0)))?;
        Ok(Store {
            path: path.to_path_buf(),
            durability,
            keep_rows,
            jobs: Mutex::new(None),
            reader: Arc::new(Mutex::new(None)),
        })
    }

    /// The writer's queue, starting the writer (its connection and thread) if it is not running.
    fn jobs(&self) -> Result<mpsc::Sender<Job>, StoreError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = jobs.as_ref().filter(|j| !j.is_closed()) {
            return Ok(j.clone());
        }
        let c = open_writer(&self.path, self.durability)?;
        // Checkpoints (copying the WAL into the database, with the file's fsync) are left to a
        // thread of their own, so no request waits behind one.
        c.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = open_writer(&self.path, self.durability)?;
        let (tx, queue) = mpsc::channel(QUEUE);
        let keep_rows = self.keep_rows;
        std::thread::Builder::new()
            .name("tollgate-store".into())
            .spawn(move || write_loop(c, queue, keep_rows))
            .map_err(|e| StoreError(format!("cannot start the store's writer: {e}")))?;
        let writer = tx.downgrade();
        std::thread::Builder::new()
            .name("tollgate-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoints, &writer))
            .map_err(|e| StoreError(format!("cannot start the store's checkpoints: {e}")))?;
        *jobs = Some(tx.clone());
        Ok(tx)
    }

    /// Whether one ledger row is kept per request (`state.ledger`).
    pub fn keeps_rows(&self) -> bool {
        self.keep_rows
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a settled request; returns once the commit holding it is done.
    pub async fn record(&self, row: LedgerRow) -> Result<(), StoreError> {
        let (done, committed) = oneshot::channel();
        self.jobs()?
            .send(Job::Record(Box::new(row), done))
            .await
            .map_err(|_| closed())?;
        committed.await.map_err(|_| closed())?
    }

    /// Runs `f` in the writer's next commit (after every job sent before it); returns its
    /// result once that commit is done. A failing `f` is rolled back alone.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (done, committed) = oneshot::channel();
        let job: WriteJob = Box::new(move |c: &Connection| -> (bool, Finish) {
            let out = f(c).map_err(StoreError::from);
            let ok = out.is_ok();
            let finish: Finish = Box::new(move |commit: Result<(), StoreError>| {
                let _ = done.send(commit.and(out));
            });
            (ok, finish)
        });
        self.jobs()?
            .send(Job::Write(job))
            .await
            .map_err(|_| closed())?;
        committed.await.map_err(|_| closed())?
    }

    /// Runs `f` on the read connection (opened on first use), off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let reader = Arc::clone(&self.reader);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = reader.lock().unwrap_or_else(|p| p.into_inner());
            if c.is_none() {
                *c = Some(open_reader(&path)?);
            }
            match c.as_ref() {
                Some(c) => f(c).map_err(StoreError::from),
                None => Err(closed()),
            }
        })
        .await
        .map_err(|e| StoreError(format!("the read was cancelled: {e}")))?
    }

    /// Runs `f` on a read connection of its own, now (start-up, tests).
    pub fn read_now<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        f(&open_reader(&self.path)?).map_err(StoreError::from)
    }
}

/// A connection for the writer: WAL mode, the durability asked, a bounded wait for locks.
fn open_writer(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let named = |e: rusqlite::Error| StoreError(format!("{}: {e}", path.display()));
    let c = Connection::open(path).map_err(named)?;
    c.busy_timeout(BUSY_TIMEOUT).map_err(named)?;
    let mode: String = c
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(named)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError(format!(
            "{}: the database cannot use WAL mode (got `{mode}`)",
            path.display()
        )));
    }
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::Machine => "FULL",
    };
    c.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
    ))
    .map_err(named)?;
    Ok(c)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let named = |e: rusqlite::Error| StoreError(format!("{}: {e}", path.display()));
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(named)?;
    c.busy_timeout(BUSY_TIMEOUT).map_err(named)?;
    Ok(c)
}

fn closed() -> StoreError {
    StoreError("the store's writer has stopped".into())
}

/// Brings the schema to the newest version this binary knows.
fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError(format!(
            "the database is at schema version {current}, newer than this binary knows \
             ({known}); run a newer Tollgate or restore an older backup"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let t = c.transaction()?;
        t.execute_batch(sql)?;
        t.pragma_update(None, "user_version", i as i64 + 1)?;
        t.commit()?;
    }
    Ok(())
}

/// The writer: takes what is queued, commits it as one transaction, tells every sender.
fn write_loop(mut c: Connection, mut queue: mpsc::Receiver<Job>, keep_rows: bool) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
        let committed = commit_group(&mut c, &mut batch, &mut finishes, keep_rows);
        if let Err(e) = &committed {
            log::error!("the store could not commit {} writes: {e}", finishes.len());
            if let Some(m) = crate::metrics::get() {
                m.store_errors.inc();
            }
        }
        for f in finishes {
            f(committed.clone());
        }
    }
}

/// Copies the WAL into the database every [`CHECKPOINT_EVERY`] without blocking the writer
/// (`PASSIVE`), until the writer's queue is gone.
fn checkpoint_loop(c: &Connection, writer: &mpsc::WeakSender<Job>) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if writer.upgrade().is_none() {
            return;
        }
        if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            log::warn!("the store's checkpoint failed: {e}");
        }
    }
}

/// Runs every job of `batch` in one transaction; collects what to tell each sender.
fn commit_group(
    c: &mut Connection,
    batch: &mut Vec<Job>,
    finishes: &mut Vec<Finish>,
    keep_rows: bool,
) -> Result<(), StoreError> {
    let mut jobs = batch.drain(..);
    let t = match c.transaction() {
        Ok(t) => t,
        Err(e) => {
            for job in jobs {
                finishes.push(failed_finish(job));
            }
            return Err(e.into());
        }
    };
    for job in jobs.by_ref() {
        match job {
            Job::Record(row, done) => {
                // In a savepoint of its own: a row is recorded whole (ledger and daily spend)
                // or not at all, and its failure leaves the rest of the group.
                let out = t
                    .execute_batch("SAVEPOINT row")
                    .and_then(|()| insert_row(&t, &row, keep_rows))
                    .map_err(StoreError::from);
                let end = if out.is_ok() {
                    "RELEASE row"
                } else {
                    "ROLLBACK TO row; RELEASE row"
                };
                let out = out.and(t.execute_batch(end).map_err(StoreError::from));
                finishes.push(Box::new(move |commit: Result<(), StoreError>| {
                    let _ = done.send(commit.and(out));
                }));
            }
            Job::Write(f) => finishes.push(in_savepoint(&t, f)),
        }
    }
    t.commit().map_err(StoreError::from)
}

/// A write run in a savepoint of its own, so its failure leaves the rest of the group.
fn in_savepoint(t: &Transaction<'_>, f: WriteJob) -> Finish {
    if let Err(e) = t.execute_batch("SAVEPOINT job") {
        let e = StoreError::from(e);
        // Not run: its caller is told why (its sender goes with it).
        drop(f);
        return Box::new(move |_| drop(e));
    }
    let (ok, finish) = f(t);
    let end = if ok {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    let _ = t.execute_batch(end);
    finish
}

fn failed_finish(job: Job) -> Finish {
    match job {
        Job::Record(_, done) => Box::new(move |commit| {
            let _ = done.send(commit);
        }),
        Job::Write(f) => Box::new(move |commit| {
            // Never run: tell its caller the group failed.
            drop(f);
            let _ = commit;
        }),
    }
}

/// SQLite's integers are signed: values past `i64::MAX` (never reached by real spend) are
/// stored as the largest it holds.
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn insert_row(t: &Transaction<'_>, row: &LedgerRow, keep_rows: bool) -> rusqlite::Result<()> {
    if keep_rows {
        let u = &row.usage;
        t.prepare_cached(
            "INSERT INTO ledger (at, day, request_id, consumer, team, key_id, model, backend,
               input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
               cost_nanos, estimated, status, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?
        .execute(params![
            int(row.at),
            int(row.day),
            row.request_id,
            row.consumer,
            row.team,
            row.key_id,
            row.model,
            row.backend,
            int(u.input),
            int(u.output),
            int(u.cached),
            int(u.cache_write),
            int(u.reasoning),
            int(row.cost_nanos),
            u.estimated,
            row.status,
            row.outcome,
        ])?;
    }
    t.prepare_cached(
        "INSERT INTO spend_daily (day, consumer, team, cost_nanos, requests)
         VALUES (?1, ?2, ?3, ?4, 1)
         ON CONFLICT (day, consumer, team) DO UPDATE SET
           cost_nanos = MIN(cost_nanos + excluded.cost_nanos, 9223372036854775807),
           requests = requests + 1",
    )?
    .execute(params![
        int(row.day),
        row.consumer,
        row.team,
        int(row.cost_nanos)
    ])?;
    Ok(())
}

impl Store {
    /// Settled spend per day, consumer and team from `first_day` on (what budgets restart from).
    pub fn spent_since(&self, first_day: u64) -> Result<Vec<DaySpend>, StoreError> {
        self.read_now(|c| {
            let mut q = c.prepare(
                "SELECT day, consumer, team, cost_nanos FROM spend_daily WHERE day >= ?1
                 ORDER BY day, consumer, team",
            )?;
            let rows = q.query_map([int(first_day)], |r| {
                Ok(DaySpend {
                    day: unsigned(r.get(0)?),
                    consumer: r.get(1)?,
                    team: r.get(2)?,
                    cost_nanos: unsigned(r.get(3)?),
                })
            })?;
            rows.collect()
        })
    }

    /// All-time settled spend per consumer.
    pub fn totals(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        self.read_now(|c| {
            // Added here, saturating: SQLite's SUM stops with an error on overflow.
            let mut q = c.prepare("SELECT consumer, cost_nanos FROM spend_daily")?;
            let mut totals = std::collections::BTreeMap::<String, u64>::new();
            for row in q.query_map([], |r| Ok((r.get::<_, String>(0)?, unsigned(r.get(1)?))))? {
                let (consumer, cost) = row?;
                let t = totals.entry(consumer).or_default();
                *t = t.saturating_add(cost);
            }
            Ok(totals)
        })
    }
}

/// Copies the database at `from` to the new file `to` with SQLite's online backup: a
/// consistent copy (every committed transaction up to its end) while a gateway keeps writing.
/// Returns the pages copied.
pub fn backup(from: &Path, to: &Path) -> Result<i32, StoreError> {
    if !from.exists() {
        return Err(StoreError(format!("{} does not exist", from.display())));
    }
    if to.exists() {
        return Err(StoreError(format!(
            "{} exists; choose a new file",
            to.display()
        )));
    }
    let src = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    src.busy_timeout(BUSY_TIMEOUT)?;
    let mut dst = Connection::open(to)?;
    let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
    // In steps, pausing between them, so a large copy does not hold the writer back.
    b.run_to_completion(256, Duration::from_millis(5), None)?;
    Ok(b.progress().pagecount)
}

/// Puts settled spend back into the in-memory accounts at start-up: every consumer's all-time
/// total, and the spend of today and of this month for consumers and teams (what their budgets
/// count).
pub fn restore_spend(store: &Store, ledger: &Ledger, now: u64) -> Result<(), StoreError> {
    let today = super::utc_day(now);
    ledger.restore_totals(store.totals()?);
    let month_start = super::utc_month_start(super::utc_month(today));
    ledger.restore_days(&store.spent_since(month_start)?, today);
    Ok(())
}

/// Back from SQLite's signed integers (the store never writes a negative one).
pub fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-store-{}-{name}-{}",
            std::process::id(),
            crate::state::unix_now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("tollgate.db")
    }

    fn row(consumer: &str, day: u64, cost: u64) -> LedgerRow {
        LedgerRow {
            at: day * 86_400 + 5,
            day,
            request_id: format!("r-{consumer}-{cost}"),
            consumer: consumer.into(),
            team: "t".into(),
            key_id: "sha256:0123456789ab".into(),
            model: "m".into(),
            backend: "b".into(),
            usage: Usage {
                input: 10,
                output: 5,
                ..Usage::default()
            },
            cost_nanos: cost,
            status: 200,
            outcome: "ok",
        }
    }

    fn ledger_rows(s: &Store) -> i64 {
        s.read_now(|c| c.query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0)))
            .unwrap()
    }

    #[tokio::test]
    async fn recorded_rows_are_committed_and_survive_reopening() {
        let path = temp_db("reopen");
        let s = Store::open(&path, Durability::Process, true).unwrap();
        s.record(row("a", 10, 7)).await.unwrap();
        s.record(row("a", 11, 5)).await.unwrap();
        s.record(row("b", 11, 3)).await.unwrap();
        assert_eq!(ledger_rows(&s), 3);
        drop(s);
        let s = Store::open(&path, Durability::Process, true).unwrap();
        assert_eq!(ledger_rows(&s), 3);
        let since = s.spent_since(11).unwrap();
        assert_eq!(since.len(), 2);
        assert_eq!((since[0].consumer.as_str(), since[0].cost_nanos), ("a", 5));
        let totals = s.totals().unwrap();
        assert_eq!((totals["a"], totals["b"]), (12, 3));
        let mode: String = s
            .read_now(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn many_settlements_at_once_are_each_committed_once() {
        let s = Arc::new(Store::open(&temp_db("many"), Durability::Process, true).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move { s.record(row("a", 1, i)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(ledger_rows(&s), 200);
        assert_eq!(s.totals().unwrap()["a"], (0..200).sum::<u64>());
    }

    #[tokio::test]
    async fn without_rows_only_the_daily_spend_is_kept() {
        let s = Store::open(&temp_db("norows"), Durability::Process, false).unwrap();
        s.record(row("a", 1, 9)).await.unwrap();
        assert_eq!(ledger_rows(&s), 0);
        assert_eq!(s.totals().unwrap()["a"], 9);
    }

    #[tokio::test]
    async fn a_failing_write_is_rolled_back_alone() {
        let s = Store::open(&temp_db("rollback"), Durability::Process, true).unwrap();
        let bad = s.write(|c| {
            c.execute("INSERT INTO spend_daily VALUES (1, 'x', 't', 1, 1)", [])?;
            c.execute("INSERT INTO no_such_table VALUES (1)", [])
        });
        assert!(bad.await.is_err());
        s.record(row("a", 1, 4)).await.unwrap();
        let totals = s.totals().unwrap();
        assert_eq!(totals.get("x"), None, "the failed write left nothing");
        assert_eq!(totals["a"], 4);
        let n = s.write(|c| c.query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get::<_, i64>(0)));
        assert_eq!(n.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_backup_taken_while_writing_holds_every_committed_row() {
        let path = temp_db("backup");
        let s = Store::open(&path, Durability::Process, true).unwrap();
        for i in 0..50 {
            s.record(row("a", 3, i)).await.unwrap();
        }
        let copy = path.with_file_name("copy.db");
        assert!(backup(&path, &copy).unwrap() > 0);
        assert!(backup(&path, &copy).unwrap_err().0.contains("exists"));
        let c = Store::open(&copy, Durability::Process, true).unwrap();
        assert_eq!(ledger_rows(&c), 50);
        assert_eq!(c.totals().unwrap()["a"], (0..50).sum::<u64>());
    }

    #[test]
    fn a_database_from_a_newer_binary_is_refused() {
        let path = temp_db("newer");
        drop(Store::open(&path, Durability::Process, true).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = Store::open(&path, Durability::Process, true).unwrap_err();
        assert!(e.0.contains("schema version 99"), "{e}");
    }
}
