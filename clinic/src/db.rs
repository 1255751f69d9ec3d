//! SQLite storage: the schema, the seeded clinicians and one shared connection.
//!
//! One connection behind a mutex is enough: every query is a few microseconds
//! on an indexed table, and a single writer keeps the in-memory default,
//! the scratch database and `--db FILE` identical. Handlers never hold the
//! lock across an `.await`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::backup::Backup;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, MAIN_DB, params};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS patients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    phone         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    -- Optional second login name, unique whatever its case.
    username      TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS patients_email ON patients (email COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS patients_demographics ON patients (name, date_of_birth);

CREATE TABLE IF NOT EXISTS clinicians (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    specialty            TEXT NOT NULL,
    email                TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash        TEXT NOT NULL,
    -- The consultation the clinician's console is connected to right now.
    current_consultation TEXT
);

CREATE TABLE IF NOT EXISTS sessions (
    token      TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);

-- Single use: a refresh deletes its token. `session` is the session it was
-- issued with, so that logging out of that session revokes it.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token      TEXT PRIMARY KEY,
    session    TEXT NOT NULL,
    role       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE IF NOT EXISTS appointments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id   TEXT NOT NULL,
    clinician_id TEXT NOT NULL,
    slot         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS appointments_patient ON appointments (patient_id, id);
CREATE INDEX IF NOT EXISTS appointments_clinician ON appointments (clinician_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS appointments_slot
    ON appointments (clinician_id, slot) WHERE status = 'booked';

CREATE TABLE IF NOT EXISTS consultations (
    id             TEXT PRIMARY KEY,
    appointment_id INTEGER NOT NULL,
    patient_id     TEXT NOT NULL,
    clinician_id   TEXT NOT NULL,
    mode           TEXT NOT NULL,
    state          TEXT NOT NULL,
    leg            INTEGER NOT NULL,
    leg_started_at TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    ended_at       TEXT
);
CREATE INDEX IF NOT EXISTS consultations_appointment ON consultations (appointment_id);
CREATE INDEX IF NOT EXISTS consultations_patient ON consultations (patient_id);

CREATE TABLE IF NOT EXISTS recordings (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    consultation_id  TEXT NOT NULL,
    appointment_id   INTEGER NOT NULL,
    patient_id       TEXT NOT NULL,
    clinician_id     TEXT NOT NULL,
    mode             TEXT NOT NULL,
    leg              INTEGER NOT NULL,
    title            TEXT NOT NULL,
    transcript       TEXT NOT NULL,
    duration_seconds INTEGER NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recordings_patient ON recordings (patient_id, id);

CREATE TABLE IF NOT EXISTS notes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    consultation_id TEXT NOT NULL,
    clinician_id    TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_consultation ON notes (consultation_id);

CREATE TABLE IF NOT EXISTS documents (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    title      TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_patient ON documents (patient_id);
"#;

/// Columns added after the first schema, as `(table, column, type)`: a
/// `--db FILE` made before them keeps its table as it was, since `CREATE
/// TABLE IF NOT EXISTS` leaves an existing one alone.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[("patients", "username", "TEXT")];

/// Indexes on [`ADDED_COLUMNS`], made once the columns exist.
const ADDED_INDEXES: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS patients_username ON patients (username COLLATE NOCASE);
";

/// A clinician created at start-up. Staging credentials, published on purpose.
pub struct SeedClinician {
    pub id: &'static str,
    pub name: &'static str,
    pub specialty: &'static str,
    pub email: &'static str,
}

/// The password of every seeded clinician.
pub const CLINICIAN_PASSWORD: &str = "staging-clinician";

/// The seeded clinician directory: `clinician-N@clinic.test`, N from 1.
pub const SEED_CLINICIANS: &[SeedClinician] = &[
    SeedClinician {
        id: "6f1c2a9e-4a57-4d7b-9a43-0c1f6c1f0001",
        name: "Dr Amara Okafor",
        specialty: "general practice",
        email: "clinician-1@clinic.test",
    },
    SeedClinician {
        id: "6f1c2a9e-4a57-4d7b-9a43-0c1f6c1f0002",
        name: "Dr Lukas Brandt",
        specialty: "dermatology",
        email: "clinician-2@clinic.test",
    },
    SeedClinician {
        id: "6f1c2a9e-4a57-4d7b-9a43-0c1f6c1f0003",
        name: "Dr Mei Tanaka",
        specialty: "mental health",
        email: "clinician-3@clinic.test",
    },
    SeedClinician {
        id: "6f1c2a9e-4a57-4d7b-9a43-0c1f6c1f0004",
        name: "Dr Sofia Marquez",
        specialty: "paediatrics",
        email: "clinician-4@clinic.test",
    },
];

/// The clinic's database.
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (and creates if needed) the database: a file, or memory.
    pub fn open(path: Option<&Path>) -> rusqlite::Result<Self> {
        let conn = match path {
            Some(path) => {
                let conn = Connection::open(path)?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                prepare(&conn)?;
                conn
            }
            None => fresh_in_memory()?,
        };
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// A scratch database: in memory up to a few MiB, a temporary file
    /// beyond, gone with the connection (see [`fresh_scratch`]).
    pub fn scratch() -> rusqlite::Result<Self> {
        Ok(Self {
            conn: Mutex::new(fresh_scratch()?),
        })
    }

    /// The connection. A poisoned lock only means another request panicked
    /// mid-query; SQLite's own transactions keep the data consistent.
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A new in-memory database, restored from an image of one just created
/// and seeded: the fuzzer makes a clinic per program, and creating the
/// schema again each time was most of what one cost.
fn fresh_in_memory() -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    // Should the image not be made, each database is made from scratch.
    match pristine_image() {
        Some(image) => {
            conn.deserialize_read_exact(MAIN_DB, image.as_slice(), image.len(), false)?;
            configure(&conn)?;
        }
        None => prepare(&conn)?,
    }
    Ok(conn)
}

/// A new scratch database, restored from the same image: its tables live
/// in a temporary database attached to an empty one, held in memory up to
/// [`SCRATCH_CACHE_KIB`] and spilled to a temporary file beyond (deleted
/// when the connection closes). A run of 100,000 patients keeps hundreds
/// of megabytes here, which an in-memory database held whole (grown by
/// doubling); spilling costs time per request, and making one costs more.
/// Unqualified names find its tables, the main database having none.
fn fresh_scratch() -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    let Some(image) = pristine_image() else {
        prepare(&conn)?;
        return Ok(conn);
    };
    // A temporary database spills to a file only where temporary storage
    // is a file when it is attached; the storage of a query's own scratch
    // tables (sorts, `IN` lists) is memory again after, as it was.
    conn.pragma_update(None, "temp_store", "FILE")?;
    conn.execute_batch(&format!(
        "ATTACH DATABASE '' AS {SCRATCH};
         PRAGMA {SCRATCH}.cache_size = -{SCRATCH_CACHE_KIB};
         PRAGMA {SCRATCH}.journal_mode = MEMORY;"
    ))?;
    conn.pragma_update(None, "temp_store", "DEFAULT")?;
    let mut source = Connection::open_in_memory()?;
    source.deserialize_read_exact(MAIN_DB, image.as_slice(), image.len(), true)?;
    // Every page in one step: neither connection is shared yet.
    Backup::new_with_names(&source, MAIN_DB, &mut conn, SCRATCH)?.step(-1)?;
    configure(&conn)?;
    Ok(conn)
}

/// The image of a database just created and seeded, made once.
fn pristine_image() -> Option<&'static Vec<u8>> {
    static PRISTINE: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    PRISTINE.get_or_init(|| pristine().ok()).as_ref()
}

/// The scratch database's name on its connection.
const SCRATCH: &str = "clinic";

/// The scratch database's page cache: what it holds in memory at most.
const SCRATCH_CACHE_KIB: u32 = 4 << 10;

fn pristine() -> rusqlite::Result<Vec<u8>> {
    let mut conn = Connection::open_in_memory()?;
    prepare(&conn)?;
    Ok(conn.serialize(MAIN_DB)?.to_vec())
}

/// Prepared statements kept: more than the clinic has.
const STATEMENTS_CACHED: usize = 128;

/// Settings of the connection, not kept in the database itself.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Without the planner's stability guarantee SQLite re-plans a cached
    // statement with a join each time a parameter is bound anew: a fifth
    // of the clinic's time went to parsing the same SQL again.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // The handlers use a few dozen statements; rusqlite keeps 16 by
    // default, and one evicted is parsed again at its next use.
    conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
    Ok(())
}

/// Creates what is missing, seeds the clinicians, ends interrupted calls.
fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    configure(conn)?;
    conn.execute_batch(SCHEMA)?;
    add_missing_columns(conn)?;
    conn.execute_batch(ADDED_INDEXES)?;
    let now = crate::now();
    for seed in SEED_CLINICIANS {
        conn.execute(
            "INSERT OR IGNORE INTO clinicians (id, name, specialty, email, password_hash)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                seed.id,
                seed.name,
                seed.specialty,
                seed.email,
                crate::auth::hash_password(seed.id, CLINICIAN_PASSWORD)
            ],
        )?;
    }
    // Calls in flight when a persisted clinic stopped are over.
    conn.execute(
        "UPDATE consultations SET state = 'ended', ended_at = ?1 WHERE state = 'active'",
        params![now],
    )?;
    conn.execute("UPDATE clinicians SET current_consultation = NULL", [])?;
    Ok(())
}

/// Adds each of [`ADDED_COLUMNS`] its table lacks.
fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let present = conn
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
            ))?
            .exists(params![column])?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn a_scratch_database_starts_seeded_and_keeps_what_outgrows_its_cache() {
        let db = Db::scratch().unwrap();
        let mut conn = db.conn();
        let seeded = count(&conn, "SELECT COUNT(*) FROM clinicians");
        assert_eq!(seeded, SEED_CLINICIANS.len() as i64);
        // Four times the cache in rows: most of them only in the file.
        let name = "n".repeat(1000);
        let rows = SCRATCH_CACHE_KIB as usize * 1024 * 4 / name.len();
        let tx = conn.transaction().unwrap();
        for i in 0..rows {
            tx.execute(
                "INSERT INTO patients (id, name, email, date_of_birth, phone, password_hash, created_at)
                 VALUES (?1, ?2, ?3, '1980-01-01', '+44', 'hash', 'now')",
                params![format!("p{i}"), name, format!("p{i}@patients.test")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM patients"), rows as i64);
        for id in ["p0", &format!("p{}", rows / 2), &format!("p{}", rows - 1)] {
            let read: String = conn
                .query_row("SELECT name FROM patients WHERE id = ?1", [id], |row| {
                    row.get(0)
                })
                .unwrap();
            assert_eq!(read, name, "{id}");
        }
        let pages = count(&conn, &format!("PRAGMA {SCRATCH}.page_count"));
        let page_size = count(&conn, &format!("PRAGMA {SCRATCH}.page_size"));
        assert!(pages * page_size > i64::from(SCRATCH_CACHE_KIB) * 1024 * 2);
        // The tables are the scratch database's: the main one has none.
        assert_eq!(count(&conn, "SELECT COUNT(*) FROM main.sqlite_master"), 0);
    }
}
