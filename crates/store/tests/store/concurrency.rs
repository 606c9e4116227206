//! Writers on other connections at the same time: an operator's workflow
//! step (read the state, then write it) while the pipeline's store writer
//! inserts events, as in a running server.

use chrono::{TimeZone, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use xueliang_core::{EventKind, NewEvent, WorkflowAction, WorkflowStep};
use xueliang_store::{AccessStore, EventStore, SqliteStore};

fn event(i: i64) -> NewEvent {
    NewEvent {
        camera_id: "gate".into(),
        village: None,
        grid: None,
        kind: EventKind::Object,
        label: "person".into(),
        score: 0.7,
        started_at: Utc.with_ymd_and_hms(2026, 12, 5, 8, 0, 0).unwrap()
            + chrono::Duration::seconds(i),
        ended_at: None,
        detail: None,
        zone: None,
        rule: None,
        object_id: None,
        frame_width: 704,
        frame_height: 576,
        boxes: Vec::new(),
        snapshot: Some(vec![0xff, 0xd8, 0xff, 0xd9]),
    }
}

/// Before the step's transaction was IMMEDIATE, SQLite answered the step's
/// UPDATE with SQLITE_BUSY (no busy-timeout wait for a read lock that must
/// become a write lock) whenever an insert committed between its SELECT and
/// its UPDATE: schemathesis found it as a 500 on `POST /events/{id}/actions`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_steps_succeed_while_events_are_inserted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let target = store.insert_event(event(0)).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 1;
            while !stop.load(Ordering::Relaxed) {
                store.insert_event(event(n)).await.unwrap();
                n += 1;
            }
            n
        })
    };
    let mut failures = Vec::new();
    for i in 0..300 {
        let action = if i % 2 == 0 {
            WorkflowAction::Keep
        } else {
            WorkflowAction::Unkeep
        };
        let step = WorkflowStep {
            event_id: target,
            action,
            by: "op".into(),
            assignee: None,
            note: None,
            at: Utc::now(),
        };
        if let Err(e) = store.workflow_step(step).await {
            failures.push(e.to_string());
        }
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    let inserted = writer.await.unwrap();
    assert!(
        inserted > 50,
        "the writer ran alongside: {inserted} inserts"
    );
    assert!(
        failures.is_empty(),
        "{} of 300 steps failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let audit = store
        .list_audit(Some(("event".into(), target.to_string())), None, 1000)
        .await
        .unwrap();
    assert_eq!(audit.len(), 300, "every step is in the audit trail");
}
