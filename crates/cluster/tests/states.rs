//! The cameras' live state shared between nodes (camera_states) on the real
//! PostgreSQL: the runner's upsert, the newest writer wins, old rows are
//! left out.

use xueliang_store::postgres_cluster::PublishedState;
use xueliang_store::testing::TestDatabase;
use xueliang_store::PgStore;

fn state(camera: &str, state: &str, reason: Option<&str>) -> PublishedState {
    PublishedState {
        camera_id: camera.into(),
        state: state.into(),
        reason: reason.map(Into::into),
        detail: reason.map(|r| format!("detail of {r}")),
        since: 1_700_000_000_000,
    }
}

#[tokio::test]
async fn runners_publish_and_the_newest_writer_wins() {
    let db = TestDatabase::create().await;
    let pg = PgStore::open(&db.url).await.unwrap();
    pg.publish_states("a", &[]).await.unwrap();
    let a = [
        state("gate", "online", None),
        state("bridge", "offline", Some("not_found")),
    ];
    pg.publish_states("a", &a).await.unwrap();
    let read = pg.camera_states(60_000).await.unwrap();
    assert_eq!(
        read,
        vec![
            ("a".to_owned(), a[1].clone()),
            ("a".to_owned(), a[0].clone())
        ]
    );
    // The camera moved to b: b's state replaces a's.
    let b = state("gate", "degraded", Some("low_fps"));
    pg.publish_states("b", std::slice::from_ref(&b))
        .await
        .unwrap();
    let read = pg.camera_states(60_000).await.unwrap();
    assert!(read.contains(&("b".to_owned(), b)), "{read:?}");
    assert_eq!(read.len(), 2, "{read:?}");
    // Rows older than the age asked for are left out.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(pg.camera_states(10).await.unwrap().is_empty());
}
