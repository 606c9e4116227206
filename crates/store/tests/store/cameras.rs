//! The camera-definition store's contract ([`CameraStore`]), written once
//! against the trait and run against every backend (for now SQLite on a real file).

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use xueliang_store::{CameraStore, SqliteStore};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
}

/// The stored cameras' ids, in list order.
async fn listed_ids(store: &dyn CameraStore) -> Vec<String> {
    let cameras = store.list_cameras().await.unwrap();
    cameras.into_iter().map(|c| c.id).collect()
}

async fn definitions_tombstones_and_order(store: &dyn CameraStore) {
    assert!(store.list_cameras().await.unwrap().is_empty());
    let a = json!({"id": "a", "name": "A", "url": "rtsp://h/a", "username": "u", "password": "pw"});
    let b = json!({"id": "b", "name": "B", "url": "rtsp://h/b"});
    let first = store.put_camera("a", &a, t0()).await.unwrap();
    assert_eq!(
        first.definition, a,
        "the password is kept: it is needed to connect"
    );
    assert!(!first.deleted);
    assert_eq!((first.created_at, first.updated_at), (t0(), t0()));
    store
        .put_camera("b", &b, t0() + Duration::seconds(1))
        .await
        .unwrap();

    // An update keeps position and creation time.
    let a2 = json!({"id": "a", "name": "A2", "url": "rtsp://h/a2"});
    let later = t0() + Duration::seconds(5);
    let updated = store.put_camera("a", &a2, later).await.unwrap();
    assert_eq!(updated.position, first.position);
    assert_eq!((updated.created_at, updated.updated_at), (t0(), later));
    let ids = listed_ids(store).await;
    assert_eq!(ids, ["a", "b"], "listed by position, not by last change");

    // A delete leaves a tombstone without the definition (and its password).
    store.delete_camera("a", later).await.unwrap();
    // A camera only in the config file can be deleted too.
    store.delete_camera("file-only", later).await.unwrap();
    let all = store.list_cameras().await.unwrap();
    let a_row = all.iter().find(|c| c.id == "a").unwrap();
    assert!(a_row.deleted);
    assert_eq!(a_row.definition, json!({}));
    assert!(!format!("{a_row:?}").contains("pw"));
    assert!(all.iter().any(|c| c.id == "file-only" && c.deleted));
    assert!(all.iter().any(|c| c.id == "b" && !c.deleted));

    // Re-created with an old id: live again, a new camera at the end.
    let again = t0() + Duration::seconds(9);
    let recreated = store.put_camera("a", &a, again).await.unwrap();
    assert!(!recreated.deleted);
    assert_eq!(recreated.created_at, again);
    let ids = listed_ids(store).await;
    assert_eq!(ids.last().map(String::as_str), Some("a"));
}

#[tokio::test]
async fn sqlite_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    definitions_tombstones_and_order(&store).await;
    // Survives reopening the file.
    drop(store);
    let store = SqliteStore::open(&url).await.unwrap();
    assert_eq!(store.list_cameras().await.unwrap().len(), 3);
}

on_both_backends!(definitions_tombstones_and_order, forgetting);

async fn forgetting(store: &dyn CameraStore) {
    let a = json!({"id": "a", "name": "A", "url": "rtsp://h/a"});
    store.put_camera("a", &a, t0()).await.unwrap();
    store.put_camera("b", &a, t0()).await.unwrap();
    store.delete_camera("file-only", t0()).await.unwrap();
    // A definition and a tombstone are both forgotten; other rows stay.
    assert!(store.forget_camera("a").await.unwrap());
    assert!(store.forget_camera("file-only").await.unwrap());
    assert!(!store.forget_camera("a").await.unwrap(), "nothing left");
    assert!(!store.forget_camera("never").await.unwrap());
    let ids = listed_ids(store).await;
    assert_eq!(ids, ["b"]);
    // Stored again after being forgotten: a new camera.
    let again = store.put_camera("a", &a, t0()).await.unwrap();
    assert!(!again.deleted);
}

#[tokio::test]
async fn sqlite_open_existing_makes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let url = format!("sqlite://{}", path.display());
    assert!(SqliteStore::open_existing(&url).await.unwrap().is_none());
    assert!(!path.exists());
    SqliteStore::open(&url)
        .await
        .unwrap()
        .put_camera("a", &json!({}), t0())
        .await
        .unwrap();
    let store = SqliteStore::open_existing(&url).await.unwrap().unwrap();
    assert_eq!(store.list_cameras().await.unwrap().len(), 1);
}
