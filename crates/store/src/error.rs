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
}
