//! What is measured on a filled store, through its own API: event writes as
//! the pipeline makes them, and the API's event queries.

use crate::site::{time, Site};
use chrono::{Duration as Span, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xueliang_core::{Bucket, EventKind, EventQuery, NewEvent, StatsKey, StatsQuery, WorkflowState};
use xueliang_store::Store;

/// An event of the site's camera, starting now, as the pipeline hands it to
/// `insert_event` (with its snapshot, unless a health event), and what
/// `end_event` gets later (`None` for an event recorded ended).
fn new_event(
    site: &Site,
    rng: &mut StdRng,
    snapshot: &[u8],
    track_points: usize,
) -> (NewEvent, Option<Ending>) {
    let camera = site.pick(rng);
    let spec = site.spec(rng, camera);
    let cam = &site.cameras[camera];
    let now = Utc::now();
    let instant = spec.duration_ms == 0;
    let ending = (!instant).then(|| Ending {
        score: spec.score,
        boxes: spec.boxes.clone(),
        track: spec.track(rng, now.timestamp_millis(), track_points),
    });
    let event = NewEvent {
        camera_id: cam.id.clone(),
        village: Some(site.villages[cam.village].clone()),
        grid: Some(site.grids[cam.grid].clone()),
        kind: spec.kind,
        label: spec.label.to_owned(),
        score: spec.score,
        started_at: now,
        ended_at: instant.then_some(now),
        detail: spec.detail,
        zone: spec.zone.map(str::to_owned),
        rule: spec.rule.map(str::to_owned),
        object_id: spec.object_id,
        frame_width: spec.width,
        frame_height: spec.height,
        boxes: spec.boxes,
        snapshot: (!spec.kind.is_health()).then(|| snapshot.to_vec()),
    };
    (event, ending)
}

struct Ending {
    score: f32,
    boxes: Vec<xueliang_core::BoxRecord>,
    track: Vec<xueliang_core::TrackPoint>,
}

/// Events a writer keeps open before ending the oldest: an event ends a
/// few of the camera's writes later, as objects leave the picture.
const OPEN_PER_WRITER: usize = 4;

#[derive(Default)]
struct WriterLog {
    inserts: Vec<Duration>,
    ends: Vec<Duration>,
    errors: u64,
}

/// One writer: inserts until `stop`, ending its events a few writes later;
/// with `pace`, one event per `pace` at most.
async fn writer(
    store: Arc<dyn Store>,
    site: Arc<Site>,
    seed: u64,
    snapshot: Arc<Vec<u8>>,
    track_points: usize,
    stop: Arc<AtomicBool>,
    pace: Option<Duration>,
) -> WriterLog {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = WriterLog::default();
    let mut open: VecDeque<(i64, Ending)> = VecDeque::new();
    let mut tick = pace.map(|p| {
        let mut i = tokio::time::interval(p);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    while !stop.load(Ordering::Relaxed) {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let (event, ending) = new_event(&site, &mut rng, &snapshot, track_points);
        let t = Instant::now();
        match store.insert_event(event).await {
            Ok(id) => {
                log.inserts.push(t.elapsed());
                if let Some(e) = ending {
                    open.push_back((id, e));
                }
            }
            Err(e) => {
                log.errors += 1;
                eprintln!("  insert_event: {e}");
            }
        }
        if open.len() > OPEN_PER_WRITER {
            let (id, e) = open.pop_front().expect("open events");
            let t = Instant::now();
            match store
                .end_event(id, Utc::now(), e.score, e.boxes, e.track)
                .await
            {
                Ok(()) => log.ends.push(t.elapsed()),
                Err(e) => {
                    log.errors += 1;
                    eprintln!("  end_event: {e}");
                }
            }
        }
    }
    // Close what is left (not counted).
    for (id, e) in open {
        let _ = store
            .end_event(id, Utc::now(), e.score, e.boxes, e.track)
            .await;
    }
    log
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InsertFigures {
    pub writers: usize,
    pub seconds: f64,
    pub events: u64,
    pub ends: u64,
    pub errors: u64,
    pub events_per_s: f64,
    pub need_per_s: f64,
    pub ratio_to_need: f64,
    pub insert_p50_ms: f64,
    pub insert_p99_ms: f64,
    pub end_p50_ms: f64,
    pub end_p99_ms: f64,
}

pub struct WriteLoad {
    pub writers: usize,
    pub seconds: f64,
    pub snapshot_bytes: usize,
    pub track_points: usize,
    pub need_per_s: f64,
    pub seed: u64,
}

/// `writers` writers as fast as the store takes them for `seconds`.
pub async fn inserts(store: Arc<dyn Store>, site: Arc<Site>, load: &WriteLoad) -> InsertFigures {
    let stop = Arc::new(AtomicBool::new(false));
    let snapshot = Arc::new(vec![0x5a; load.snapshot_bytes]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..load.writers)
        .map(|w| {
            tokio::spawn(writer(
                store.clone(),
                site.clone(),
                load.seed ^ (0xe17 + w as u64),
                snapshot.clone(),
                load.track_points,
                stop.clone(),
                None,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(load.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = WriterLog::default();
    for t in tasks {
        let log = t.await.expect("writer");
        all.inserts.extend(log.inserts);
        all.ends.extend(log.ends);
        all.errors += log.errors;
    }
    // The writes that were under way at the stop finished since: count
    // them over the time they took.
    let seconds = started.elapsed().as_secs_f64();
    let events_per_s = all.inserts.len() as f64 / seconds;
    InsertFigures {
        writers: load.writers,
        seconds,
        events: all.inserts.len() as u64,
        ends: all.ends.len() as u64,
        errors: all.errors,
        events_per_s,
        need_per_s: load.need_per_s,
        ratio_to_need: events_per_s / load.need_per_s,
        insert_p50_ms: percentile(&mut all.inserts, 0.50),
        insert_p99_ms: percentile(&mut all.inserts, 0.99),
        end_p50_ms: percentile(&mut all.ends, 0.50),
        end_p99_ms: percentile(&mut all.ends, 0.99),
    }
}

/// Writers at `per_s` events a second in all (with their ends) until
/// stopped: the pipeline's writes while the API is queried. One writer per
/// 25 events/s, as an event is two commits (its insert and its end) and one
/// writer alone does not reach 100 events/s on SQLite here.
pub struct Background {
    stop: Arc<AtomicBool>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<WriterLog>>,
}

/// Events a second one background writer is asked for at most.
const PER_BACKGROUND_WRITER: f64 = 25.0;

impl Background {
    pub fn start(
        store: Arc<dyn Store>,
        site: Arc<Site>,
        load: &WriteLoad,
        per_s: f64,
    ) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let writers = if per_s > 0.0 {
            (per_s / PER_BACKGROUND_WRITER).ceil() as usize
        } else {
            0
        };
        let snapshot = Arc::new(vec![0x5a; load.snapshot_bytes]);
        let tasks = (0..writers)
            .map(|w| {
                tokio::spawn(writer(
                    store.clone(),
                    site.clone(),
                    load.seed ^ (0xbac + w as u64),
                    snapshot.clone(),
                    load.track_points,
                    stop.clone(),
                    Some(Duration::from_secs_f64(writers as f64 / per_s)),
                ))
            })
            .collect();
        Background {
            stop,
            started: Instant::now(),
            tasks,
        }
    }

    /// Stops them; the events they wrote, the errors they met, and the
    /// events a second they reached.
    pub async fn stop(self) -> (u64, u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut events, mut errors) = (0, 0);
        for t in self.tasks {
            let log = t.await.expect("background writer");
            events += log.inserts.len() as u64;
            errors += log.errors;
        }
        let per_s = events as f64 / self.started.elapsed().as_secs_f64();
        (events, errors, per_s)
    }
}

/// The query shapes: what the API's `GET /events` (and `/events/{id}`,
/// `/stats/events`) ask the store, with parameters drawn per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `GET /events`: the newest page, no filter.
    Newest,
    /// `?camera=&since=` one day back.
    CameraDay,
    /// `?village=&kind=&since=` one week back (any kind, rare ones too).
    VillageKindWeek,
    /// `?grid=&label=person&since=` one day back.
    GridLabelDay,
    /// `?workflow=` (any state).
    Workflow,
    /// A user scoped to two villages: `?workflow=new|assigned`.
    ScopedQueue,
    /// `?since=&until=` one hour somewhere in the 90 days.
    HourWindow,
    /// `?cursor=` somewhere in the past, no filter.
    DeepPage,
    /// `?camera=&cursor=` somewhere in the camera's past.
    CameraDeepPage,
    /// `GET /events/{id}`.
    ById,
    /// `GET /stats/events` with no parameters: per kind over the last 7 days.
    StatsWeek,
    /// `GET /stats/events?village=&since=&bucket=hour`: a village's last
    /// day per kind and hour (the dashboard's chart).
    StatsVillageDay,
}

impl Shape {
    pub const ALL: [Shape; 12] = [
        Shape::Newest,
        Shape::CameraDay,
        Shape::VillageKindWeek,
        Shape::GridLabelDay,
        Shape::Workflow,
        Shape::ScopedQueue,
        Shape::HourWindow,
        Shape::DeepPage,
        Shape::CameraDeepPage,
        Shape::ById,
        Shape::StatsWeek,
        Shape::StatsVillageDay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Newest => "newest page",
            Shape::CameraDay => "camera, last day",
            Shape::VillageKindWeek => "village + kind, last week",
            Shape::GridLabelDay => "grid + label, last day",
            Shape::Workflow => "review state",
            Shape::ScopedQueue => "2-village user, review state",
            Shape::HourWindow => "one hour in 90 days",
            Shape::DeepPage => "cursor deep in the past",
            Shape::CameraDeepPage => "camera + cursor in the past",
            Shape::ById => "one event by id",
            Shape::StatsWeek => "stats: per kind, 7 days",
            Shape::StatsVillageDay => "stats: village, day, hourly",
        }
    }
}

/// The API's page: 50 events, asked as 51 (the extra says another page follows).
const PAGE: u32 = 51;

/// The site's state the queries are drawn against.
pub struct Filled {
    /// Events of the fill (ids 1..=events).
    pub events: u64,
    /// The end of the fill's time range (ms).
    pub end_ms: i64,
    pub days: u32,
}

enum Ask {
    List(EventQuery),
    Get(i64),
    Stats(StatsQuery),
}

fn ask(shape: Shape, rng: &mut StdRng, site: &Site, span: &Filled) -> Ask {
    let end = time(span.end_ms);
    let page = EventQuery {
        limit: PAGE,
        ..Default::default()
    };
    let cam = |rng: &mut StdRng| {
        site.cameras[rng.gen_range(0..site.cameras.len())]
            .id
            .clone()
    };
    let village = |rng: &mut StdRng| site.villages[rng.gen_range(0..site.villages.len())].clone();
    match shape {
        Shape::Newest => Ask::List(page),
        Shape::CameraDay => Ask::List(EventQuery {
            camera_id: Some(cam(rng)),
            since: Some(end - Span::days(1)),
            ..page
        }),
        Shape::VillageKindWeek => {
            let kinds = &EventKind::ALL[..EventKind::ALL.len() - 1]; // not store_full
            Ask::List(EventQuery {
                village: Some(village(rng)),
                kind: Some(kinds[rng.gen_range(0..kinds.len())]),
                since: Some(end - Span::days(7)),
                ..page
            })
        }
        Shape::GridLabelDay => Ask::List(EventQuery {
            grid: Some(site.grids[rng.gen_range(0..site.grids.len())].clone()),
            label: Some("person".into()),
            since: Some(end - Span::days(1)),
            ..page
        }),
        Shape::Workflow => Ask::List(EventQuery {
            workflow: Some(WorkflowState::ALL[rng.gen_range(0..WorkflowState::ALL.len())]),
            ..page
        }),
        Shape::ScopedQueue => {
            let a = rng.gen_range(0..site.villages.len());
            let b = (a + rng.gen_range(1..site.villages.len())) % site.villages.len();
            Ask::List(EventQuery {
                villages: Some(vec![site.villages[a].clone(), site.villages[b].clone()]),
                workflow: Some(if rng.gen_bool(0.5) {
                    WorkflowState::New
                } else {
                    WorkflowState::Assigned
                }),
                ..page
            })
        }
        Shape::HourWindow => {
            let hours = span.days as i64 * 24;
            let since = end - Span::hours(rng.gen_range(1..=hours));
            Ask::List(EventQuery {
                since: Some(since),
                until: Some(since + Span::hours(1)),
                ..page
            })
        }
        Shape::DeepPage => Ask::List(EventQuery {
            before_id: Some(rng.gen_range(1..=span.events as i64)),
            ..page
        }),
        Shape::CameraDeepPage => Ask::List(EventQuery {
            camera_id: Some(cam(rng)),
            before_id: Some(rng.gen_range(1..=span.events as i64)),
            ..page
        }),
        Shape::ById => Ask::Get(rng.gen_range(1..=span.events as i64)),
        Shape::StatsWeek => Ask::Stats(StatsQuery {
            events: EventQuery {
                since: Some(end - Span::days(7)),
                // What the API hands the store when no `until` is given.
                until: None,
                ..Default::default()
            },
            group_by: vec![StatsKey::Kind],
            bucket: None,
            utc_offset_s: 8 * 3600,
        }),
        Shape::StatsVillageDay => Ask::Stats(StatsQuery {
            events: EventQuery {
                village: Some(village(rng)),
                since: Some(end - Span::days(1)),
                // What the API hands the store when no `until` is given.
                until: None,
                ..Default::default()
            },
            group_by: vec![StatsKey::Kind],
            bucket: Some(Bucket::Hour),
            utc_offset_s: 8 * 3600,
        }),
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryFigures {
    pub shape: &'static str,
    pub runs: usize,
    /// Rows (events, or count rows for stats) a query returned, on average.
    pub rows: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub p99_to_target: f64,
}

/// How the queries run: each shape `repeats` times (after `warmup` rounds
/// not counted), one query at a time, the shapes taking turns, parameters
/// drawn from `seed`.
pub struct QueryMix<'a> {
    pub shapes: &'a [Shape],
    pub repeats: usize,
    pub warmup: usize,
    pub seed: u64,
    pub target_ms: f64,
}

pub async fn queries(
    store: &dyn Store,
    site: &Site,
    span: &Filled,
    mix: &QueryMix<'_>,
) -> anyhow::Result<Vec<QueryFigures>> {
    let QueryMix {
        shapes,
        repeats,
        warmup,
        seed,
        target_ms,
    } = *mix;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e7);
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(repeats); shapes.len()];
    let mut rows = vec![0usize; shapes.len()];
    for round in 0..warmup + repeats {
        for (i, &shape) in shapes.iter().enumerate() {
            let a = ask(shape, &mut rng, site, span);
            let t = Instant::now();
            let n = match a {
                Ask::List(q) => store.list_events(q).await?.len(),
                Ask::Get(id) => store.get_event(id).await?.into_iter().count(),
                Ask::Stats(q) => store.event_stats(q).await?.len(),
            };
            let took = t.elapsed();
            if round >= warmup {
                times[i].push(took);
                rows[i] += n;
            }
        }
    }
    Ok(shapes
        .iter()
        .zip(times.iter_mut())
        .zip(rows)
        .map(|((shape, t), n)| {
            let p99 = percentile(t, 0.99);
            QueryFigures {
                shape: shape.name(),
                runs: t.len(),
                rows: n as f64 / t.len().max(1) as f64,
                p50_ms: percentile(t, 0.50),
                p99_ms: p99,
                max_ms: percentile(t, 1.0),
                p99_to_target: p99 / target_ms,
            }
        })
        .collect())
}

/// The nearest-rank percentile, in ms (0 for no samples).
pub fn percentile(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}
