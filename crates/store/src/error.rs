#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored row is invalid: {0}")]
    Corrupt(String),
    /// A unique name is taken.
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// Whether trying again later may succeed (a busy or full disk, a lost
    /// connection) rather than never (bad data, a failed migration).
    pub fn is_retriable(&self) -> bool {
        match self {
            StoreError::Database(e) => !matches!(
                e,
                sqlx::Error::RowNotFound
                    | sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::TypeNotFound { .. }
            ),
            StoreError::Open { .. } => true,
            StoreError::Migrate(_) | StoreError::Corrupt(_) | StoreError::Conflict(_) => false,
        }
    }

    /// Whether the disk (or the database's size limit) is full: SQLite's
    /// `SQLITE_FULL`, or an I/O error from a write that found no space.
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                // SQLITE_FULL is 13; extended codes keep the primary code in the low byte.
                let code = e.code().and_then(|c| c.parse::<i32>().ok());
                code.is_some_and(|c| c & 0xff == 13)
                    || e.message().contains("database or disk is full")
            }
            // ENOSPC
            StoreError::Database(sqlx::Error::Io(e)) => e.raw_os_error() == Some(28),
            _ => false,
        }
    }
}
