//! The store against real SQLite files and a real PostgreSQL server (one
//! test binary for the crate). The contract's tests run on both backends.

/// For each contract test `name(store)`, `name::sqlite` and
/// `name::postgres`: the same test on a fresh store of each backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use xueliang_store::testing::{TestBackend, TestStore};

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let s = TestStore::new(TestBackend::Sqlite).await;
                    super::$name(&*s.store).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let s = TestStore::new(TestBackend::Postgres).await;
                    super::$name(&*s.store).await;
                }
            }
        )*
    };
}

mod cameras;
mod concurrency;
mod conformance;
mod copy;
mod full_disk;
mod nodes;
mod retention;
mod stats;
