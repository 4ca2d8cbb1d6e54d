//! Event storage: SQLite (embedded, the default), PostgreSQL or
//! ClickHouse, behind one interface with the same behaviour: a message id
//! is stored once, and an event is acknowledged only after it is stored.

use crate::clickhouse::ClickHouse;
use crate::figures::{self, Rollup};
use crate::ingest::StoredEvent;
use crate::summary::Summary;
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A storage failure, as text for logs and 503 answers.
pub type DbError = String;

/// The columns read back into a [`StoredEvent`], `body` (or `''` in its
/// place) after them: see [`sqlite_event`], [`postgres_event`].
macro_rules! event_columns {
    () => {
        "message_id, received_at, timestamp, kind, event, anonymous_id, user_id, segments, promo_segment, promo_variation, order_total, order_id, bot"
    };
}
const EVENT_COLUMNS: &str = event_columns!();
const COLUMNS: &str = concat!(event_columns!(), ", body");

/// 20,000 stored events without their bodies, after seq `$1` (the seq is
/// the last column): a step of building the figures of a database an
/// older collector wrote.
const EVENTS_PAGE: &str = concat!(
    "SELECT ",
    event_columns!(),
    ", '', seq FROM events WHERE seq > $1 ORDER BY seq LIMIT 20000"
);

/// The events of one user, by an anonymousId or a userId (`$1`): those
/// of the ids seen together with it, whichever SDK sent them (segmint and
/// Segment's keep anonymous ids of their own; an identify joins them).
const ONE_USER: &str = "WHERE anonymous_id = $1 OR user_id = $1
    OR user_id IN (SELECT user_id FROM events WHERE anonymous_id = $1 AND user_id IS NOT NULL)
    OR anonymous_id IN (SELECT anonymous_id FROM events WHERE anonymous_id IS NOT NULL
        AND (user_id = $1 OR user_id IN
            (SELECT user_id FROM events WHERE anonymous_id = $1 AND user_id IS NOT NULL)))";

/// Where a page of [`Db::user_events_page`] ended.
#[derive(Clone, Debug, PartialEq)]
struct UserCursor {
    /// The anonymous id.
    user: String,
    /// The event's time.
    timestamp: f64,
    /// Its place in storing order (SQLite, PostgreSQL).
    seq: i64,
    /// Its message id (ClickHouse, which has no sequence).
    message_id: String,
}

impl UserCursor {
    /// Before every event.
    fn start() -> UserCursor {
        UserCursor {
            user: String::new(),
            timestamp: f64::MIN,
            seq: i64::MIN,
            message_id: String::new(),
        }
    }

    fn at(e: &StoredEvent, seq: i64) -> UserCursor {
        UserCursor {
            user: e.anonymous_id.clone().unwrap_or_default(),
            timestamp: e.timestamp,
            seq,
            message_id: e.message_id.clone(),
        }
    }
}

/// The segment ids the rules in force define: the only ones the figures
/// count.
pub type Defined = Arc<HashSet<String>>;

/// Where events are stored.
#[derive(Clone)]
pub enum Db {
    /// Embedded SQLite (WAL).
    Sqlite(Sqlite),
    /// A PostgreSQL server, through a pool of connections that are
    /// replaced when they break (a restarted server, a dropped link).
    Postgres(deadpool_postgres::Pool),
    /// A ClickHouse server, over HTTP ([`crate::clickhouse`]).
    ClickHouse(Box<ClickHouse>),
}

const EVENTS_SCHEMA_PG: &str = "CREATE TABLE IF NOT EXISTS events (
   seq BIGSERIAL PRIMARY KEY,
   message_id TEXT NOT NULL UNIQUE,
   received_at DOUBLE PRECISION NOT NULL,
   timestamp DOUBLE PRECISION NOT NULL,
   kind TEXT NOT NULL,
   event TEXT,
   anonymous_id TEXT,
   user_id TEXT,
   segments TEXT NOT NULL,
   promo_segment TEXT,
   promo_variation TEXT,
   order_total DOUBLE PRECISION,
   order_id TEXT,
   bot BOOLEAN NOT NULL DEFAULT false,
   body TEXT NOT NULL);
 CREATE INDEX IF NOT EXISTS events_user ON events (anonymous_id, timestamp, seq);
 CREATE INDEX IF NOT EXISTS events_user_id ON events (user_id);";

impl Db {
    /// Opens `sqlite:path` (or a bare path), `postgres://...` or
    /// `clickhouse://...`, creating the schema if needed, and the figures'
    /// tables from the stored events if a collector that kept its figures
    /// in memory wrote them.
    pub async fn open(url: &str, defined: &Defined) -> Result<Db, DbError> {
        if url.starts_with("clickhouse://") {
            return ClickHouse::open(url)
                .await
                .map(|ch| Db::ClickHouse(Box::new(ch)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = postgres_pool(url)?;
            let mut client = pool
                .get()
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL: {}", explained(&e)))?;
            client
                .batch_execute(EVENTS_SCHEMA_PG)
                .await
                .and(client.batch_execute(figures::SCHEMA).await)
                .map_err(|e| format!("cannot create the schema: {e}"))?;
            postgres_migrate(&client)
                .await
                .map_err(|e| format!("cannot add the new columns: {e}"))?;
            postgres_build_figures(&mut client, defined)
                .await
                .map_err(|e| format!("cannot build the figures: {e}"))?;
            drop(client);
            return Ok(Db::Postgres(pool));
        }
        let path = url.strip_prefix("sqlite:").unwrap_or(url).to_string();
        let defined = defined.clone();
        tokio::task::spawn_blocking(move || Sqlite::open(path, &defined))
            .await
            .map_err(|e| e.to_string())?
            .map(Db::Sqlite)
    }

    /// Stores events and what they add to the figures (counting the
    /// segment ids in `defined`), in one transaction; returns, per event,
    /// whether it was new (false: its message id was already stored).
    pub async fn insert(
        &self,
        events: Vec<StoredEvent>,
        defined: Defined,
    ) -> Result<Vec<bool>, DbError> {
        match self {
            Db::Sqlite(s) => s.insert(events, defined).await,
            Db::Postgres(pool) => {
                let mut client = pool.get().await.map_err(|e| explained(&e))?;
                postgres_insert(&mut client, &events, &defined)
                    .await
                    .map_err(|e| explained(&e))
            }
            Db::ClickHouse(ch) => ch.insert(events).await,
        }
    }

    /// The dashboard's figures, counting the segment ids in `defined`;
    /// `now` in ms.
    pub async fn summary(&self, now: f64, defined: &Defined) -> Result<Summary, DbError> {
        let first_minute = (now / figures::MINUTE).floor() as i64 - 59;
        if let Db::ClickHouse(ch) = self {
            return Ok(Summary::from_rows(
                &ch.summary_rows(first_minute, defined).await?,
            ));
        }
        let since = figures::Param::Int(first_minute);
        let queries = figures::SUMMARY_QUERIES
            .iter()
            .map(|q| {
                let params = if q.contains("$1") {
                    vec![since.clone()]
                } else {
                    Vec::new()
                };
                (*q, params)
            })
            .collect();
        Ok(Summary::from_rows(&self.figure_rows(queries).await?))
    }

    /// Events stored, bots' included (the first of the summary's queries
    /// only: this is printed at start).
    pub async fn stored(&self) -> Result<u64, DbError> {
        if let Db::ClickHouse(ch) = self {
            return ch.stored().await;
        }
        let rows = self
            .figure_rows(vec![(figures::SUMMARY_QUERIES[0], Vec::new())])
            .await?;
        let row = rows.first().and_then(|r| r.first());
        let count = |i: usize| {
            row.and_then(|r| r.get(i))
                .map_or(0.0, figures::Cell::number)
        };
        Ok((count(0) + count(1)) as u64)
    }

    /// The rows of each `(sql, params)` over the figures' tables.
    async fn figure_rows(
        &self,
        queries: Vec<(&'static str, Vec<figures::Param>)>,
    ) -> Result<Vec<Vec<Vec<figures::Cell>>>, DbError> {
        match self {
            Db::Sqlite(s) => {
                let path = s.path.clone();
                tokio::task::spawn_blocking(move || {
                    let conn = read_connection(&path)?;
                    queries
                        .iter()
                        .map(|(q, p)| figures::sqlite::query(&conn, q, p))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Db::Postgres(pool) => {
                let client = pool.get().await.map_err(|e| explained(&e))?;
                let mut results = Vec::with_capacity(queries.len());
                for (q, p) in &queries {
                    results.push(
                        figures::postgres::query(&client, q, p)
                            .await
                            .map_err(|e| explained(&e))?,
                    );
                }
                Ok(results)
            }
            // ClickHouse reads its figures from its views (`summary_rows`).
            Db::ClickHouse(_) => Err("no fig_* tables on ClickHouse".into()),
        }
    }

    /// One user's events with their bodies, in time order.
    pub async fn events_of(&self, id: &str) -> Result<Vec<StoredEvent>, DbError> {
        let order = format!("timestamp, {}", self.storing_order(""));
        self.select(ONE_USER, id.to_string(), true, &order, None)
            .await
    }

    /// Calls `each` with every person's events (bots' left out; by
    /// anonymous id, in time order), reading a page of 20,000 events at a
    /// time: segment discovery and retention read every user this way.
    pub async fn for_each_user(&self, mut each: impl FnMut(&[StoredEvent])) -> Result<(), DbError> {
        let mut cursor = UserCursor::start();
        let mut user: Vec<StoredEvent> = Vec::new();
        loop {
            let page = self.user_events_page(&cursor, 20_000).await?;
            let Some((last, _)) = page.last() else { break };
            cursor = last.clone();
            for (_, event) in page {
                if user
                    .last()
                    .is_some_and(|u| u.anonymous_id != event.anonymous_id)
                {
                    each(&user);
                    user.clear();
                }
                user.push(event);
            }
        }
        if !user.is_empty() {
            each(&user);
        }
        Ok(())
    }

    /// Up to `limit` events of people (bots' left out) with an anonymous
    /// id, with their bodies, ordered by anonymous id, then time, then
    /// storing: those after `after`, and where the page ends. Segment
    /// discovery reads every user's events this way, a page at a time.
    async fn user_events_page(
        &self,
        after: &UserCursor,
        limit: i64,
    ) -> Result<Vec<(UserCursor, StoredEvent)>, DbError> {
        let head = format!("SELECT {EVENT_COLUMNS}, body, ");
        match self {
            Db::Sqlite(s) => {
                let path = s.path.clone();
                let after = after.clone();
                let sql = format!(
                    "{head}seq FROM events WHERE anonymous_id IS NOT NULL AND NOT bot \
                     AND (anonymous_id, timestamp, seq) > (?1, ?2, ?3) \
                     ORDER BY anonymous_id, timestamp, seq LIMIT {limit}"
                );
                tokio::task::spawn_blocking(move || {
                    let conn = read_connection(&path)?;
                    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
                    let rows = stmt
                        .query_map(
                            rusqlite::params![after.user, after.timestamp, after.seq],
                            |r| Ok((r.get::<_, i64>(14)?, sqlite_event(r)?)),
                        )
                        .map_err(|e| e.to_string())?;
                    rows.map(|r| r.map(|(seq, e)| (UserCursor::at(&e, seq), e)))
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Db::Postgres(pool) => {
                let client = pool.get().await.map_err(|e| explained(&e))?;
                let sql = format!(
                    "{head}seq FROM events WHERE anonymous_id IS NOT NULL AND NOT bot \
                     AND (anonymous_id, timestamp, seq) > ($1, $2, $3) \
                     ORDER BY anonymous_id, timestamp, seq LIMIT {limit}"
                );
                let rows = client
                    .query(&sql, &[&after.user, &after.timestamp, &after.seq])
                    .await
                    .map_err(|e| explained(&e))?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        let e = postgres_event(r);
                        (UserCursor::at(&e, r.get(14)), e)
                    })
                    .collect())
            }
            Db::ClickHouse(ch) => {
                // No sequence: the message id breaks ties in time.
                let sql = format!(
                    "{head}0 FROM events FINAL WHERE isNotNull(anonymous_id) AND bot = 0 \
                     AND (assumeNotNull(anonymous_id), timestamp, message_id) > ($1, {:e}, {}) \
                     ORDER BY anonymous_id, timestamp, message_id LIMIT {limit}",
                    after.timestamp,
                    crate::clickhouse::quote(&after.message_id),
                );
                let events = ch.select(&sql, &after.user).await?;
                Ok(events
                    .into_iter()
                    .map(|e| (UserCursor::at(&e, 0), e))
                    .collect())
            }
        }
    }

    /// The latest `limit` events of an anonymous id, without their
    /// bodies, newest first (the demo's panel).
    pub async fn recent_of(&self, id: &str, limit: i64) -> Result<Vec<StoredEvent>, DbError> {
        let order = format!("received_at DESC, {}", self.storing_order(" DESC"));
        self.select(
            "WHERE anonymous_id = $1",
            id.to_string(),
            false,
            &order,
            Some(limit),
        )
        .await
    }

    /// Columns that order events as they were stored (`direction` after
    /// each): SQLite's and PostgreSQL's sequence; ClickHouse has none, so
    /// its time received, then message id.
    fn storing_order(&self, direction: &str) -> String {
        match self {
            Db::ClickHouse(_) => format!("received_at{direction}, message_id{direction}"),
            _ => format!("seq{direction}"),
        }
    }

    /// Events matching `filter` (a WHERE clause whose `$1` is `arg`), in
    /// `order`, with their bodies or without.
    async fn select(
        &self,
        filter: &str,
        arg: String,
        with_body: bool,
        order: &str,
        limit: Option<i64>,
    ) -> Result<Vec<StoredEvent>, DbError> {
        let body = if with_body { "body" } else { "''" };
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        // ClickHouse reads a message stored twice, before its parts merge,
        // once.
        let table = match self {
            Db::ClickHouse(_) => "events FINAL",
            _ => "events",
        };
        let sql =
            format!("SELECT {EVENT_COLUMNS}, {body} FROM {table} {filter} ORDER BY {order}{limit}");
        match self {
            Db::Sqlite(s) => {
                let path = s.path.clone();
                tokio::task::spawn_blocking(move || {
                    let conn = read_connection(&path)?;
                    sqlite_select(&conn, &sql, &[arg]).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Db::Postgres(pool) => {
                let client = pool.get().await.map_err(|e| explained(&e))?;
                let rows = client
                    .query(&sql, &[&arg])
                    .await
                    .map_err(|e| explained(&e))?;
                Ok(rows.iter().map(postgres_event).collect())
            }
            Db::ClickHouse(ch) => ch.select(&sql, &arg).await,
        }
    }
}

/// An error with the errors it wraps: tokio-postgres says only "db
/// error" and keeps the server's message as its source.
fn explained(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn read_connection(path: &str) -> Result<rusqlite::Connection, DbError> {
    let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// An event from a row of [`EVENT_COLUMNS`] and the body.
fn sqlite_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        message_id: r.get(0)?,
        received_at: r.get(1)?,
        timestamp: r.get(2)?,
        kind: r.get(3)?,
        event: r.get(4)?,
        anonymous_id: r.get(5)?,
        user_id: r.get(6)?,
        segments: r.get(7)?,
        promo_segment: r.get(8)?,
        promo_variation: r.get(9)?,
        order_total: r.get(10)?,
        order_id: r.get(11)?,
        bot: r.get(12)?,
        body: r.get(13)?,
    })
}

/// As [`sqlite_event`], for PostgreSQL.
fn postgres_event(r: &tokio_postgres::Row) -> StoredEvent {
    StoredEvent {
        message_id: r.get(0),
        received_at: r.get(1),
        timestamp: r.get(2),
        kind: r.get(3),
        event: r.get(4),
        anonymous_id: r.get(5),
        user_id: r.get(6),
        segments: r.get(7),
        promo_segment: r.get(8),
        promo_variation: r.get(9),
        order_total: r.get(10),
        order_id: r.get(11),
        bot: r.get(12),
        body: r.get(13),
    }
}

/// Rows of `sql` (selecting the event columns) with `args`.
fn sqlite_select(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[String],
) -> rusqlite::Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), sqlite_event)?;
    rows.collect()
}

/// A pool for `url`, encrypted and checked as its `sslmode` and
/// `sslrootcert` ask ([`crate::postgres_tls`]).
fn postgres_pool(url: &str) -> Result<deadpool_postgres::Pool, DbError> {
    let (config, tls) = crate::postgres_tls::connection(url)?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(16)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| format!("cannot make a PostgreSQL pool: {e}"))
}

/// Builds the figures' tables from the stored events, once: a database
/// an older collector wrote has events but no figures. Two collectors
/// starting at once take turns (the table lock), and the second finds
/// the work done.
async fn postgres_build_figures(
    client: &mut deadpool_postgres::Object,
    defined: &Defined,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("LOCK TABLE fig_state IN EXCLUSIVE MODE")
        .await?;
    let built = tx
        .query_opt("SELECT 1 FROM fig_state WHERE name = 'built'", &[])
        .await?
        .is_some();
    if !built {
        let mut after: i64 = 0;
        loop {
            let rows = tx.query(EVENTS_PAGE, &[&after]).await?;
            let Some(last) = rows.last() else { break };
            after = last.get(14);
            let events: Vec<StoredEvent> = rows.iter().map(postgres_event).collect();
            figures::postgres::apply(&tx, &Rollup::of(&events, defined).statements()).await?;
        }
        tx.execute(
            "INSERT INTO fig_state (name, value) VALUES ('built', '1')",
            &[],
        )
        .await?;
    }
    tx.commit().await
}

/// As [`migrate`], for PostgreSQL.
async fn postgres_migrate(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    let mut added = false;
    for (column, kind) in NEW_COLUMNS {
        let has = client
            .query_opt(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'events' AND column_name = $1",
                &[&column],
            )
            .await?
            .is_some();
        if !has {
            let kind = kind.replace(
                "INTEGER NOT NULL DEFAULT 0",
                "BOOLEAN NOT NULL DEFAULT false",
            );
            client
                .batch_execute(&format!("ALTER TABLE events ADD COLUMN {column} {kind}"))
                .await?;
            added = true;
        }
    }
    if !added {
        return Ok(());
    }
    let rows = client.query("SELECT seq, body FROM events", &[]).await?;
    for row in rows {
        let (bot, order_id) = derived(row.get(1));
        if bot || order_id.is_some() {
            let seq: i64 = row.get(0);
            client
                .execute(
                    "UPDATE events SET bot = $1, order_id = $2 WHERE seq = $3",
                    &[&bot, &order_id, &seq],
                )
                .await?;
        }
    }
    Ok(())
}

/// Event rows per INSERT: 14 parameters each, under PostgreSQL's 65,535.
const EVENTS_PER_STATEMENT: usize = 2_000;

async fn postgres_insert(
    client: &mut deadpool_postgres::Object,
    events: &[StoredEvent],
    defined: &Defined,
) -> Result<Vec<bool>, tokio_postgres::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let tx = client.transaction().await?;
    let mut inserted = HashSet::new();
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        let mut sql = format!("INSERT INTO events ({COLUMNS}) VALUES ");
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            Vec::with_capacity(chunk.len() * 14);
        for (i, e) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let base = i * 14;
            sql.push('(');
            for k in 1..=14 {
                if k > 1 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", base + k));
            }
            sql.push(')');
            params.extend_from_slice(&[
                &e.message_id,
                &e.received_at,
                &e.timestamp,
                &e.kind,
                &e.event,
                &e.anonymous_id,
                &e.user_id,
                &e.segments,
                &e.promo_segment,
                &e.promo_variation,
                &e.order_total,
                &e.order_id,
                &e.bot,
                &e.body,
            ]);
        }
        sql.push_str(" ON CONFLICT (message_id) DO NOTHING RETURNING message_id");
        for row in tx.query(&sql, &params).await? {
            inserted.insert(row.get::<_, String>(0));
        }
    }
    // A batch may repeat an id: only its first occurrence is new.
    let flags: Vec<bool> = events
        .iter()
        .map(|e| inserted.remove(&e.message_id))
        .collect();
    let new = events
        .iter()
        .zip(&flags)
        .filter(|(_, n)| **n)
        .map(|(e, _)| e);
    figures::postgres::apply(&tx, &Rollup::of(new, defined).statements()).await?;
    tx.commit().await?;
    Ok(flags)
}

type WriteRequest = (
    Vec<StoredEvent>,
    Defined,
    oneshot::Sender<Result<Vec<bool>, DbError>>,
);

/// SQLite with one writer thread: requests queue up and are committed
/// together (group commit), so concurrent clients share transactions.
#[derive(Clone)]
pub struct Sqlite {
    path: String,
    writer: mpsc::Sender<WriteRequest>,
}

impl Sqlite {
    fn open(path: String, defined: &Defined) -> Result<Sqlite, DbError> {
        let mut conn =
            rusqlite::Connection::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS events (
               seq INTEGER PRIMARY KEY AUTOINCREMENT,
               message_id TEXT NOT NULL UNIQUE,
               received_at REAL NOT NULL,
               timestamp REAL NOT NULL,
               kind TEXT NOT NULL,
               event TEXT,
               anonymous_id TEXT,
               user_id TEXT,
               segments TEXT NOT NULL,
               promo_segment TEXT,
               promo_variation TEXT,
               order_total REAL,
               order_id TEXT,
               bot INTEGER NOT NULL DEFAULT 0,
               body TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS events_user ON events (anonymous_id, timestamp, seq);
             CREATE INDEX IF NOT EXISTS events_user_id ON events (user_id);",
        )
        .map_err(|e| format!("cannot create the schema in {path}: {e}"))?;
        migrate(&conn).map_err(|e| format!("cannot add the new columns in {path}: {e}"))?;
        conn.execute_batch(figures::SCHEMA)
            .map_err(|e| format!("cannot create the figures' tables in {path}: {e}"))?;
        sqlite_build_figures(&mut conn, defined)
            .map_err(|e| format!("cannot build the figures in {path}: {e}"))?;
        let (tx, rx) = mpsc::channel::<WriteRequest>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| e.to_string())?;
        Ok(Sqlite { path, writer: tx })
    }

    async fn insert(
        &self,
        events: Vec<StoredEvent>,
        defined: Defined,
    ) -> Result<Vec<bool>, DbError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((events, defined, tx))
            .map_err(|_| "the SQLite writer stopped".to_string())?;
        rx.await
            .map_err(|_| "the SQLite writer stopped".to_string())?
    }
}

/// Columns added since the first schema, as SQLite declares them.
const NEW_COLUMNS: [(&str, &str); 2] =
    [("bot", "INTEGER NOT NULL DEFAULT 0"), ("order_id", "TEXT")];

/// A database an older collector wrote gets the columns added since, and
/// its stored events their values, read from their bodies as ingest
/// reads them.
fn migrate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mut added = false;
    for (column, kind) in NEW_COLUMNS {
        let has = conn
            .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = ?1")?
            .exists([column])?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {column} {kind}"))?;
            added = true;
        }
    }
    if !added {
        return Ok(());
    }
    let mut updates = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT seq, body FROM events")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let body: String = row.get(1)?;
            let (bot, order_id) = derived(&body);
            if bot || order_id.is_some() {
                updates.push((row.get::<_, i64>(0)?, bot, order_id));
            }
        }
    }
    let mut update = conn.prepare("UPDATE events SET bot = ?1, order_id = ?2 WHERE seq = ?3")?;
    for (seq, bot, order_id) in updates {
        update.execute(rusqlite::params![bot, order_id, seq])?;
    }
    Ok(())
}

/// What ingest derives from a stored message for the columns added since
/// the first schema: whether a bot sent it, and its order id.
fn derived(body: &str) -> (bool, Option<String>) {
    match segmint_core::json::Value::parse(body) {
        Ok(message) => (
            crate::ingest::sent_by_bot(&message),
            crate::ingest::order_id(&message),
        ),
        Err(_) => (false, None),
    }
}

/// As [`postgres_build_figures`], for SQLite (one process holds it).
fn sqlite_build_figures(
    conn: &mut rusqlite::Connection,
    defined: &Defined,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let built = tx
        .prepare("SELECT 1 FROM fig_state WHERE name = 'built'")?
        .exists([])?;
    if !built {
        let mut after: i64 = 0;
        loop {
            let page: Vec<(i64, StoredEvent)> = {
                let mut stmt = tx.prepare(&EVENTS_PAGE.replace("$1", "?1"))?;
                let rows = stmt.query_map([after], |r| Ok((r.get(14)?, sqlite_event(r)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let Some((last, _)) = page.last() else { break };
            after = *last;
            let rollup = Rollup::of(page.iter().map(|(_, e)| e), defined);
            figures::sqlite::apply(&tx, &rollup.statements())?;
        }
        tx.execute(
            "INSERT INTO fig_state (name, value) VALUES ('built', '1')",
            [],
        )?;
    }
    tx.commit()
}

fn writer(mut conn: rusqlite::Connection, rx: mpsc::Receiver<WriteRequest>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < 64 {
            match rx.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let result = (|| -> Result<Vec<Vec<bool>>, rusqlite::Error> {
            let tx = conn.transaction()?;
            let mut out = Vec::with_capacity(group.len());
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "INSERT OR IGNORE INTO events ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
                ))?;
                for (events, defined, _) in &group {
                    let mut flags = Vec::with_capacity(events.len());
                    for e in events {
                        let changed = stmt.execute(rusqlite::params![
                            e.message_id,
                            e.received_at,
                            e.timestamp,
                            e.kind,
                            e.event,
                            e.anonymous_id,
                            e.user_id,
                            e.segments,
                            e.promo_segment,
                            e.promo_variation,
                            e.order_total,
                            e.order_id,
                            e.bot,
                            e.body
                        ])?;
                        flags.push(changed == 1);
                    }
                    let new = events
                        .iter()
                        .zip(&flags)
                        .filter(|(_, n)| **n)
                        .map(|(e, _)| e);
                    figures::sqlite::apply(&tx, &Rollup::of(new, defined).statements())?;
                    out.push(flags);
                }
            }
            tx.commit()?;
            Ok(out)
        })();
        match result {
            Ok(all) => {
                for ((_, _, reply), flags) in group.into_iter().zip(all) {
                    let _ = reply.send(Ok(flags));
                }
            }
            Err(e) => {
                for (_, _, reply) in group {
                    let _ = reply.send(Err(format!("SQLite: {e}")));
                }
            }
        }
    }
}
