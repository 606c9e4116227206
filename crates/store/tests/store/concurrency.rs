//! Writers on other connections at the same time: an operator's workflow
//! step (read the state, then write it) while the pipeline's store writer
//! inserts events, as in a running server.

use chrono::{TimeZone, Utc};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

    // The writer inserts until told to stop; the steps go on until the
    // writer has committed at least 100 events while they ran (however the
    // two tasks are scheduled beside the other tests of this binary).
    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, stop, inserted) = (store.clone(), stop.clone(), inserted.clone());
        tokio::spawn(async move {
            let mut n = 1;
            while !stop.load(Ordering::Relaxed) {
                store.insert_event(event(n)).await.unwrap();
                inserted.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        })
    };
    let mut failures = Vec::new();
    let mut steps = 0;
    while steps < 100 || inserted.load(Ordering::Relaxed) < 100 {
        assert!(
            steps < 20_000,
            "the writer was starved: {inserted:?} inserts"
        );
        let action = if steps % 2 == 0 {
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
        steps += 1;
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {steps} steps failed beside {inserted:?} inserts: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let mut audited = 0;
    let mut before = None;
    loop {
        let page = store
            .list_audit(Some(("event".into(), target.to_string())), before, 500)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        audited += page.len();
    }
    assert_eq!(audited, steps, "every step is in the audit trail");
}
