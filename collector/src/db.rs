//! Event storage: SQLite (embedded, the default) or PostgreSQL, behind one
//! interface with the same behaviour: a message id is stored once, and an
//! event is acknowledged only after its transaction committed.

use crate::ingest::StoredEvent;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A storage failure, as text for logs and 503 answers.
pub type DbError = String;

const COLUMNS: &str =
    "message_id, received_at, timestamp, kind, event, anonymous_id, user_id, segments, promo_segment, promo_variation, order_total, order_id, bot, body";

/// The events of one user, by an anonymousId or a userId (`$1`): those
/// of the ids seen together with it, whichever SDK sent them (segmint and
/// Segment's keep anonymous ids of their own; an identify joins them).
const ONE_USER: &str = "WHERE anonymous_id = $1 OR user_id = $1
    OR user_id IN (SELECT user_id FROM events WHERE anonymous_id = $1 AND user_id IS NOT NULL)
    OR anonymous_id IN (SELECT anonymous_id FROM events WHERE anonymous_id IS NOT NULL
        AND (user_id = $1 OR user_id IN
            (SELECT user_id FROM events WHERE anonymous_id = $1 AND user_id IS NOT NULL)))";

/// Where events are stored.
#[derive(Clone)]
pub enum Db {
    /// Embedded SQLite (WAL).
    Sqlite(Sqlite),
    /// A PostgreSQL server.
    Postgres(Arc<tokio_postgres::Client>),
}

impl Db {
    /// Opens `sqlite:path` (or a bare path) or `postgres://...`, creating
    /// the schema if needed.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    eprintln!("segmint-collector: PostgreSQL connection ended: {e}");
                }
            });
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS events (
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
                     CREATE INDEX IF NOT EXISTS events_user_id ON events (user_id);",
                )
                .await
                .map_err(|e| format!("cannot create the schema: {e}"))?;
            postgres_migrate(&client)
                .await
                .map_err(|e| format!("cannot add the new columns: {e}"))?;
            return Ok(Db::Postgres(Arc::new(client)));
        }
        let path = url.strip_prefix("sqlite:").unwrap_or(url).to_string();
        Sqlite::open(path).map(Db::Sqlite)
    }

    /// Stores events; returns, per event, whether it was new (false: its
    /// message id was already stored).
    pub async fn insert(&self, events: Vec<StoredEvent>) -> Result<Vec<bool>, DbError> {
        match self {
            Db::Sqlite(s) => s.insert(events).await,
            Db::Postgres(client) => postgres_insert(client, &events).await,
        }
    }

    /// Every event without its body, in storage order (to rebuild the
    /// dashboard's figures at start).
    pub async fn scan(&self) -> Result<Vec<StoredEvent>, DbError> {
        self.select("", None, false).await
    }

    /// One user's events with their bodies, in time order.
    pub async fn events_of(&self, id: &str) -> Result<Vec<StoredEvent>, DbError> {
        self.select(ONE_USER, Some(id.to_string()), true).await
    }

    /// Every stored message id (for tests and checks).
    pub async fn message_ids(&self) -> Result<Vec<String>, DbError> {
        Ok(self
            .scan()
            .await?
            .into_iter()
            .map(|e| e.message_id)
            .collect())
    }

    async fn select(
        &self,
        filter: &str,
        arg: Option<String>,
        with_body: bool,
    ) -> Result<Vec<StoredEvent>, DbError> {
        let body = if with_body { "body" } else { "''" };
        let order = if arg.is_some() {
            "timestamp, seq"
        } else {
            "seq"
        };
        let sql = format!(
            "SELECT message_id, received_at, timestamp, kind, event, anonymous_id, user_id, segments, promo_segment, promo_variation, order_total, order_id, bot, {body} FROM events {filter} ORDER BY {order}"
        );
        match self {
            Db::Sqlite(s) => {
                let path = s.path.clone();
                let sql = sql.replace("$1", "?1");
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(&path).map_err(|e| e.to_string())?;
                    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
                    let map = |r: &rusqlite::Row<'_>| {
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
                    };
                    let rows = match &arg {
                        Some(a) => stmt.query_map([a], map),
                        None => stmt.query_map([], map),
                    }
                    .map_err(|e| e.to_string())?;
                    rows.collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Db::Postgres(client) => {
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = match &arg {
                    Some(a) => vec![a],
                    None => Vec::new(),
                };
                let rows = client
                    .query(&sql, &params)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(rows
                    .iter()
                    .map(|r| StoredEvent {
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
                    })
                    .collect())
            }
        }
    }
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

async fn postgres_insert(
    client: &tokio_postgres::Client,
    events: &[StoredEvent],
) -> Result<Vec<bool>, DbError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = format!("INSERT INTO events ({COLUMNS}) VALUES ");
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        Vec::with_capacity(events.len() * 14);
    for (i, e) in events.iter().enumerate() {
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
    let rows = client
        .query(&sql, &params)
        .await
        .map_err(|e| e.to_string())?;
    let inserted: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    // A batch may repeat an id: only its first occurrence is new.
    let mut seen = std::collections::HashSet::new();
    Ok(events
        .iter()
        .map(|e| inserted.contains(&e.message_id) && seen.insert(e.message_id.clone()))
        .collect())
}

type WriteRequest = (
    Vec<StoredEvent>,
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
    fn open(path: String) -> Result<Sqlite, DbError> {
        let conn =
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
        let (tx, rx) = mpsc::channel::<WriteRequest>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| e.to_string())?;
        Ok(Sqlite { path, writer: tx })
    }

    async fn insert(&self, events: Vec<StoredEvent>) -> Result<Vec<bool>, DbError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((events, tx))
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
                for (events, _) in &group {
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
                    out.push(flags);
                }
            }
            tx.commit()?;
            Ok(out)
        })();
        match result {
            Ok(all) => {
                for ((_, reply), flags) in group.into_iter().zip(all) {
                    let _ = reply.send(Ok(flags));
                }
            }
            Err(e) => {
                for (_, reply) in group {
                    let _ = reply.send(Err(format!("SQLite: {e}")));
                }
            }
        }
    }
}
