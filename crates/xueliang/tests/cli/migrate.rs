//! `xueliang migrate` from a real SQLite file into a real PostgreSQL
//! database, as an operator runs it: what it prints, and what it refuses.

use chrono::Utc;
use std::process::Command;
use xueliang_core::{EventKind, NewEvent};
use xueliang_store::testing::TestDatabase;
use xueliang_store::{EventStore, PgStore, SqliteStore};

fn migrate(from: &str, to: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xueliang"))
        .args(["migrate", "--from", from, "--to", to])
        .output()
        .expect("xueliang runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_a_site_once_and_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let from = format!("sqlite://{}", dir.path().join("xueliang.db").display());
    let sqlite = SqliteStore::open(&from).await.unwrap();
    for i in 0..5 {
        sqlite
            .insert_event(NewEvent {
                camera_id: "gate".into(),
                kind: EventKind::Object,
                label: "person".into(),
                started_at: Utc::now(),
                snapshot: Some(vec![i; 100]),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    drop(sqlite);
    let db = TestDatabase::create().await;
    // The password goes in the URL here; it is never printed.
    let to = db.url.clone();

    let (code, out, err) = migrate(&from, &to);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("events: 5 rows"), "{out}");
    assert!(out.contains("snapshots: 5 rows"), "{out}");
    assert!(out.contains("copied 15 rows"), "{out}");
    assert!(
        !out.contains(":xueliang_test@"),
        "the password is printed: {out}"
    );
    let pg = PgStore::open(&to).await.unwrap();
    let q = xueliang_core::EventQuery {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(pg.list_events(q.clone()).await.unwrap().len(), 5);

    // Again into the same database: refused, nothing doubled.
    let (code, _, err) = migrate(&from, &to);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("already has rows in `events`"), "{err}");
    assert!(err.contains("nothing was copied"), "{err}");
    assert_eq!(pg.list_events(q).await.unwrap().len(), 5);

    // A source that does not exist is not made.
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    let (code, _, err) = migrate(&missing, &to);
    assert_eq!(code, Some(1));
    assert!(err.contains("no database at"), "{err}");
    assert!(!dir.path().join("none.db").exists());

    // The wrong way round, or another database.
    let (code, _, err) = migrate(&to, &from);
    assert_eq!(code, Some(1));
    assert!(err.contains("migrate copies a SQLite database"), "{err}");
}
