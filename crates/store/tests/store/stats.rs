//! `event_stats` on both backends against counts worked out here from the
//! events themselves: whole hours come from the hourly counts table, the
//! ends of a range and the filters it does not keep from the events, and
//! every way of asking must add up to the same answer.

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::BTreeMap;
use xueliang_core::{Bucket, EventKind, EventQuery, NewEvent, StatsKey, StatsQuery, StatsRow};
use xueliang_store::Store;

const VILLAGES: [Option<&str>; 3] = [Some("东村"), Some("西村"), None];
const KINDS: [EventKind; 3] = [
    EventKind::Object,
    EventKind::Intrusion,
    EventKind::CameraOffline,
];

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap()
}

/// The stored events: (started, village, kind, camera).
type Site = Vec<(DateTime<Utc>, Option<&'static str>, EventKind, String)>;

/// 400 events over three days at uneven times, in two villages and none;
/// three of them in the last two minutes.
async fn fill(store: &dyn Store) -> Site {
    let mut site = Vec::new();
    let mut x: u64 = 7;
    for i in 0..400 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = if i < 3 {
            Utc::now() - Duration::seconds(40 * (i + 1))
        } else {
            t0() + Duration::milliseconds(((x >> 16) % (3 * 86_400_000)) as i64)
        };
        let village = VILLAGES[(x >> 8) as usize % 3];
        let kind = KINDS[(x >> 4) as usize % 3];
        let camera = format!("cam-{}", (x >> 12) % 4);
        store
            .insert_event(NewEvent {
                camera_id: camera.clone(),
                village: village.map(Into::into),
                kind,
                label: "person".into(),
                score: 0.7,
                started_at: at,
                frame_width: 768,
                frame_height: 576,
                ..Default::default()
            })
            .await
            .unwrap();
        site.push((at, village, kind, camera));
    }
    site
}

/// What the store must answer, counted here.
fn expected(site: &Site, q: &StatsQuery) -> Vec<StatsRow> {
    let e = &q.events;
    let mut sum: BTreeMap<(Option<i64>, Vec<Option<String>>), u64> = BTreeMap::new();
    for (at, village, kind, camera) in site {
        let inside = e.since.is_none_or(|s| *at >= s)
            && e.until.is_none_or(|u| *at < u)
            && e.village.as_deref().is_none_or(|v| *village == Some(v))
            && e.kind.is_none_or(|k| k == *kind)
            && e.camera_id.as_deref().is_none_or(|c| c == camera)
            && e.villages
                .as_ref()
                .is_none_or(|vs| village.is_some_and(|v| vs.iter().any(|s| s == v)));
        if !inside {
            continue;
        }
        let bucket = q.bucket.map(|b| {
            let off = q.utc_offset_s as i64 * 1000;
            (at.timestamp_millis() + off).div_euclid(b.millis()) * b.millis() - off
        });
        let keys = q
            .group_by
            .iter()
            .map(|k| match k {
                StatsKey::Kind => Some(kind.as_str().to_owned()),
                StatsKey::Village => village.map(Into::into),
                StatsKey::Camera => Some(camera.clone()),
            })
            .collect();
        *sum.entry((bucket, keys)).or_default() += 1;
    }
    if q.group_by.is_empty() && q.bucket.is_none() && sum.is_empty() {
        sum.insert((None, Vec::new()), 0);
    }
    sum.into_iter()
        .map(|((bucket, keys), count)| {
            let key = |k: StatsKey| {
                q.group_by
                    .iter()
                    .position(|g| *g == k)
                    .map(|i| keys[i].clone())
            };
            StatsRow {
                bucket: bucket.map(|ms| DateTime::from_timestamp_millis(ms).unwrap()),
                kind: key(StatsKey::Kind).flatten(),
                village: key(StatsKey::Village),
                camera_id: key(StatsKey::Camera).flatten(),
                count,
            }
        })
        .collect()
}

fn stats(
    events: EventQuery,
    group_by: &[StatsKey],
    bucket: Option<Bucket>,
    offset_h: f64,
) -> StatsQuery {
    StatsQuery {
        events,
        group_by: group_by.to_vec(),
        bucket,
        utc_offset_s: (offset_h * 3600.0) as i32,
    }
}

async fn counts_add_up_whatever_the_range_filters_and_groups(store: &dyn Store) {
    let site = fill(store).await;
    let at = |h: i64, m: i64| t0() + Duration::hours(h) + Duration::minutes(m);
    let ranges = [
        (None, None),
        (Some(at(5, 17)), Some(at(50, 41))), // ends inside hours
        (Some(at(6, 0)), Some(at(30, 0))),   // whole hours
        (Some(at(7, 10)), Some(at(7, 50))),  // inside one hour
        (Some(at(7, 10)), Some(at(8, 50))),  // across one boundary, no whole hour
        (Some(at(40, 30)), None),
        (None, Some(at(12, 1))),
        (Some(at(20, 0)), Some(at(10, 0))), // backwards: nothing
        // Up to a time after now (the dashboard's "last 7 days"): the
        // newest hours from the counts, the event of a minute ago included.
        (Some(at(40, 30)), Some(Utc::now() + Duration::minutes(17))),
        (
            Some(Utc::now() - Duration::minutes(5)),
            Some(Utc::now() + Duration::minutes(5)),
        ),
    ];
    let filters = [
        EventQuery::default(),
        EventQuery {
            village: Some("东村".into()),
            ..Default::default()
        },
        EventQuery {
            kind: Some(EventKind::Intrusion),
            villages: Some(vec!["西村".into()]),
            ..Default::default()
        },
        EventQuery {
            villages: Some(Vec::new()),
            ..Default::default()
        },
        // Not kept by the hourly counts: from the events alone.
        EventQuery {
            camera_id: Some("cam-1".into()),
            ..Default::default()
        },
    ];
    let shapes: [(&[StatsKey], Option<Bucket>, f64); 7] = [
        (&[], None, 0.0),
        (&[StatsKey::Kind], None, 0.0),
        (&[StatsKey::Kind, StatsKey::Village], Some(Bucket::Day), 8.0),
        (&[StatsKey::Village], Some(Bucket::Hour), 8.0),
        (&[], Some(Bucket::Day), 5.5), // a zone off the hour
        (&[StatsKey::Kind], Some(Bucket::Minute), 8.0),
        (&[StatsKey::Camera, StatsKey::Kind], Some(Bucket::Day), -3.0),
    ];
    let mut asked = 0;
    for (since, until) in ranges {
        for f in &filters {
            for (groups, bucket, offset) in shapes {
                let q = stats(
                    EventQuery {
                        since,
                        until,
                        ..f.clone()
                    },
                    groups,
                    bucket,
                    offset,
                );
                let got = store.event_stats(q.clone()).await.unwrap();
                assert_eq!(got, expected(&site, &q), "{q:?}");
                asked += 1;
            }
        }
    }
    assert_eq!(asked, 10 * 5 * 7);
}

on_both_backends!(counts_add_up_whatever_the_range_filters_and_groups);
