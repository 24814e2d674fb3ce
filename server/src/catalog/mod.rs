//! The catalog: Lifeboat's own database (SQLite by default, PostgreSQL for
//! several replicas). One schema, in `migrations/`, portable across both
//! engines; queries use `$N` placeholders, which both drivers accept.
//!
//! The catalog is an index, not the truth: backups live in storage and the
//! catalog can be rebuilt from the bucket.

mod activity;
mod backups;
mod drills;
mod locations;
mod notifications;
mod phases;
mod restores;
mod schedules;
mod sessions;
mod volumes;

pub use activity::*;
pub use backups::*;
pub use drills::*;
pub use locations::*;
pub use notifications::*;
pub use phases::{BackupPhase, RestorePhase};
pub use restores::*;
pub use schedules::*;
pub use sessions::*;
pub use volumes::*;

use std::path::Path;
use std::str::FromStr;

use chrono::{SecondsFormat, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot open the catalog database {url}: {message}. {hint}")]
    Open {
        url: String,
        message: String,
        hint: &'static str,
    },
    #[error(
        "migrating the catalog schema failed: {0}. The database was left at its previous version."
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what} `{name}` already exists")]
    AlreadyExists { what: &'static str, name: String },
    #[error("{what} `{name}` does not exist")]
    NotFound { what: &'static str, name: String },
    #[error("the catalog database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored {what} is not valid JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The current time as the catalog stores it: RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    stamp(Utc::now())
}

/// A catalog timestamp: RFC 3339 in UTC with milliseconds, so that
/// timestamps compare as strings.
pub fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Clone, Debug)]
pub struct Catalog {
    pool: AnyPool,
    engine: Engine,
}

impl Catalog {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and migrates the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let shown = crate::secret::mask_url_password(url);
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else {
            Engine::Postgres
        };
        if engine == Engine::Sqlite {
            prepare_sqlite_dir(url).map_err(|e| CatalogError::Open {
                url: shown.clone(),
                message: e.to_string(),
                hint: "Make the data directory writable by the user running Lifeboat, or set data_dir / LIFEBOAT_DATA_DIR to a writable place.",
            })?;
        }
        let options = AnyConnectOptions::from_str(url).map_err(|e| CatalogError::Open {
            url: shown.clone(),
            message: e.to_string(),
            hint: "Check database_url / LIFEBOAT_DATABASE_URL.",
        })?;
        let pool = AnyPoolOptions::new()
            .max_connections(if engine == Engine::Sqlite { 4 } else { 10 })
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // Several connections share one file: wait for locks instead of failing.
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                        // With WAL, NORMAL is durable across crashes of the process; only
                        // the last commits can be lost on power loss, and storage stays the truth.
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| CatalogError::Open {
                url: shown.clone(),
                message: e.to_string(),
                hint: match engine {
                    Engine::Sqlite => "Make the data directory writable by the user running Lifeboat, or set data_dir / LIFEBOAT_DATA_DIR to a writable place.",
                    Engine::Postgres => "Check that PostgreSQL is running and reachable, and the user, password and database name in database_url.",
                },
            })?;
        if engine == Engine::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, engine })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// A round trip to the database, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Names of the tables and their columns, for checking both engines agree.
    pub async fn schema(&self) -> Result<Vec<(String, Vec<String>)>> {
        let tables: Vec<String> = match self.engine {
            Engine::Sqlite => sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
            ),
            Engine::Postgres => sqlx::query(
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%' ORDER BY table_name",
            ),
        }
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for table in tables {
            let sql = match self.engine {
                Engine::Sqlite => {
                    format!("SELECT name FROM pragma_table_info('{table}') ORDER BY name")
                }
                Engine::Postgres => format!(
                    "SELECT column_name::text AS name FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY column_name"
                ),
            };
            let columns: Vec<String> = sqlx::query(&sql)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("name"))
                .collect::<Result<_, _>>()?;
            out.push((table, columns));
        }
        Ok(out)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Creates the directory of a SQLite file and checks it is writable, so the
/// error names the directory rather than SQLite's "unable to open database file".
fn prepare_sqlite_dir(url: &str) -> std::result::Result<(), DataDirError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let dir = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let failed = |action: &'static str| {
        move |source| DataDirError {
            action,
            dir: dir.to_path_buf(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(failed("create"))?;
    let probe = dir.join(format!(".lifeboat-write-test-{}", uuid::Uuid::new_v4()));
    std::fs::write(&probe, b"").map_err(failed("write in"))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The SQLite file's directory cannot be made or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", dir.display())]
struct DataDirError {
    action: &'static str,
    dir: std::path::PathBuf,
    source: std::io::Error,
}

/// Maps a unique-constraint violation to [`CatalogError::AlreadyExists`].
pub(crate) fn unique_violation(
    what: &'static str,
    name: &str,
) -> impl FnOnce(sqlx::Error) -> CatalogError {
    let name = name.to_string();
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            CatalogError::AlreadyExists { what, name }
        }
        _ => CatalogError::Database(e),
    }
}

impl Catalog {
    /// The one row `sql` (selecting by `name = $1`) finds, or NotFound naming `what`.
    pub(crate) async fn by_name<T>(
        &self,
        sql: &'static str,
        what: &'static str,
        name: &str,
    ) -> Result<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        sqlx::query_as(sql)
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what,
                name: name.to_string(),
            })
    }
}

/// `Ok` when an UPDATE touched a row, `NotFound` naming it when none matched.
pub(crate) fn changed(rows: u64, what: &'static str, name: &str) -> Result<()> {
    if rows == 0 {
        return Err(CatalogError::NotFound {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}
