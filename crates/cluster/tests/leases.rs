//! Three coordinators on one real PostgreSQL database, each with a host
//! that records into one ledger who runs which camera at every start and
//! stop: the cameras spread, a node started later takes its share, a killed
//! node's cameras run elsewhere within a lease and a round, a node cut off
//! from the database stops its cameras before anyone else starts them, and
//! a drained node hands everything over. Never two nodes on one camera.

use futures::future::BoxFuture;
use futures::FutureExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use xueliang_cluster::{CameraHost, ClusterSettings, Coordinator};
use xueliang_store::testing::TestDatabase;
use xueliang_store::PgStore;

const LEASE: Duration = Duration::from_secs(3);
const CAMERAS: usize = 6;

/// Who runs each camera now, and every moment two nodes did.
#[derive(Default)]
struct Ledger {
    owner: Mutex<HashMap<String, String>>,
    overlaps: Mutex<Vec<String>>,
}

struct Host {
    node: String,
    ledger: Arc<Ledger>,
    running: Mutex<HashSet<String>>,
    pace: Pace,
}

/// How slow a host is.
#[derive(Clone, Copy, Default)]
struct Pace {
    /// How long a camera takes to stop once it no longer counts as
    /// running here (the registry takes the worker first, then waits for
    /// it); the ledger frees it only then.
    stop: Duration,
    /// How long listing the wanted cameras takes (a round in the middle:
    /// after the renewal, before the hand-overs and claims), as when the
    /// machine or the database is slow.
    wanted: Duration,
}

impl CameraHost for Host {
    fn wanted(&self) -> Vec<String> {
        std::thread::sleep(self.pace.wanted);
        (0..CAMERAS).map(|i| format!("cam-{i}")).collect()
    }
    fn running_here(&self) -> Vec<String> {
        self.running.lock().unwrap().iter().cloned().collect()
    }
    fn start(&self, id: &str) -> BoxFuture<'_, ()> {
        let id = id.to_owned();
        async move {
            let mut owner = self.ledger.owner.lock().unwrap();
            if let Some(other) = owner.get(&id).filter(|o| **o != self.node) {
                self.ledger.overlaps.lock().unwrap().push(format!(
                    "{id}: {} started it while {other} ran it",
                    self.node
                ));
            }
            owner.insert(id.clone(), self.node.clone());
            self.running.lock().unwrap().insert(id);
        }
        .boxed()
    }
    fn stop(&self, id: &str) -> BoxFuture<'_, ()> {
        let id = id.to_owned();
        async move {
            if self.running.lock().unwrap().remove(&id) {
                tokio::time::sleep(self.pace.stop).await;
                let mut owner = self.ledger.owner.lock().unwrap();
                if owner.get(&id) == Some(&self.node) {
                    owner.remove(&id);
                }
            }
        }
        .boxed()
    }
}

impl Host {
    /// `kill -9`: the process and its cameras are gone at once.
    fn die(&self) {
        let mut owner = self.ledger.owner.lock().unwrap();
        for id in self.running.lock().unwrap().drain() {
            if owner.get(&id) == Some(&self.node) {
                owner.remove(&id);
            }
        }
    }
}

/// A TCP proxy to the database that can be cut (every connection dropped,
/// new ones closed at once) and mended: a network partition of one node.
struct Proxy {
    port: u16,
    cut: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Proxy {
    async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(tokio::sync::watch::channel(false).0);
        let cuts = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if *cuts.borrow() {
                    continue; // dropped: closed at once
                }
                let mut until = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = until.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Proxy { port, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

struct Node {
    host: Arc<Host>,
    coordinator: Arc<Coordinator>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<xueliang_cluster::Ended>,
}

async fn node(name: &str, url: &str, ledger: &Arc<Ledger>) -> Node {
    node_with(name, url, ledger, LEASE, Pace::default()).await
}

async fn node_with(
    name: &str,
    url: &str,
    ledger: &Arc<Ledger>,
    lease: Duration,
    pace: Pace,
) -> Node {
    let host = Arc::new(Host {
        node: name.into(),
        ledger: ledger.clone(),
        running: Default::default(),
        pace,
    });
    let store = PgStore::open(url).await.unwrap();
    let coordinator = Arc::new(Coordinator::new(
        store,
        host.clone(),
        ClusterSettings {
            node_id: name.into(),
            max_cameras: 0,
            lease,
            api_url: None,
        },
    ));
    let stop = CancellationToken::new();
    let task = tokio::spawn(coordinator.clone().run(stop.clone()));
    Node {
        host,
        coordinator,
        stop,
        task,
    }
}

/// Waits until `done` holds (checked every 50 ms); how long it took.
async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.elapsed()
}

fn counts(nodes: &[&Node]) -> Vec<usize> {
    nodes.iter().map(|n| n.host.running_here().len()).collect()
}

fn all_run(ledger: &Ledger) -> bool {
    ledger.owner.lock().unwrap().len() == CAMERAS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_spread_move_on_failure_and_never_run_twice() {
    let db = TestDatabase::create().await;
    let ledger = Arc::new(Ledger::default());
    let port = db
        .url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap();
    let proxy = Proxy::start(port.parse().unwrap()).await;
    let proxied = db
        .url
        .replacen(&format!(":{port}/"), &format!(":{}/", proxy.port), 1);

    // Two nodes: every camera runs, three each.
    let a = node("a", &db.url, &ledger).await;
    let b = node("b", &db.url, &ledger).await;
    until("6 cameras on a and b", Duration::from_secs(15), || {
        all_run(&ledger) && counts(&[&a, &b]) == [3, 3]
    })
    .await;

    // A third node joins (through the proxy): it takes its share, two.
    let c = node("c", &proxied, &ledger).await;
    let took = until("a share for c", Duration::from_secs(20), || {
        all_run(&ledger) && counts(&[&a, &b, &c]) == [2, 2, 2]
    })
    .await;
    println!("node c had its share {took:?} after starting");

    // kill -9 of b: its cameras run elsewhere within a lease and a round.
    b.task.abort();
    b.stop.cancel();
    b.host.die();
    let moved = until("b's cameras on a and c", LEASE * 3, || {
        all_run(&ledger) && counts(&[&a, &c]).iter().sum::<usize>() == CAMERAS
    })
    .await;
    println!("b's cameras ran elsewhere {moved:?} after it died (lease {LEASE:?})");
    assert!(
        moved <= LEASE + LEASE / 5 + Duration::from_secs(2),
        "{moved:?}"
    );

    // c is cut off from the database: it stops its cameras before its
    // leases expire, and a takes them after.
    proxy.set_cut(true);
    let stopped = until("c stops its cameras", LEASE * 2, || {
        c.host.running_here().is_empty()
    })
    .await;
    println!("cut off, c stopped its cameras after {stopped:?}");
    until("every camera on a", LEASE * 3, || {
        all_run(&ledger) && counts(&[&a]) == [CAMERAS]
    })
    .await;

    // Mended: c takes its share again.
    proxy.set_cut(false);
    until("c back with its share", Duration::from_secs(20), || {
        all_run(&ledger) && counts(&[&a, &c]) == [3, 3]
    })
    .await;

    // a drains (SIGTERM): everything ends on c.
    a.coordinator.drain().await;
    a.stop.cancel();
    assert!(a.host.running_here().is_empty());
    until("every camera on c", LEASE * 3, || {
        all_run(&ledger) && counts(&[&c]) == [CAMERAS]
    })
    .await;
    c.stop.cancel();

    let overlaps = ledger.overlaps.lock().unwrap().clone();
    assert!(
        overlaps.is_empty(),
        "two nodes ran one camera: {overlaps:?}"
    );
}

/// SIGTERM arrives while the node's own rounds go on (every 400 ms here,
/// each spending 250 ms between its renewal and its claims, and cameras
/// taking 150 ms each to stop, so the drain falls inside a round): the drain hands every camera over
/// once, no round of the node takes one back, the node's loop ends drained,
/// and the other node runs them all without overlap. Five drains at
/// different moments of the rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_during_the_rounds_hands_over_once_and_takes_nothing_back() {
    let db = TestDatabase::create().await;
    let lease = Duration::from_secs(2);
    let pace = Pace {
        stop: Duration::from_millis(150),
        wanted: Duration::ZERO,
    };
    let slow = Pace {
        wanted: Duration::from_millis(250),
        ..pace
    };
    let ledger = Arc::new(Ledger::default());
    let store = PgStore::open(&db.url).await.unwrap();
    let mut keeper = node_with("keeper", &db.url, &ledger, lease, pace).await;
    for turn in 0..5 {
        let name = format!("leaving-{turn}");
        let leaving = node_with(&name, &db.url, &ledger, lease, slow).await;
        until("the cameras shared", Duration::from_secs(15), || {
            all_run(&ledger) && counts(&[&keeper, &leaving]) == [3, 3]
        })
        .await;
        // A different moment of the leaving node's round each time.
        tokio::time::sleep(Duration::from_millis(83 * turn)).await;
        leaving.coordinator.drain().await;
        assert!(leaving.host.running_here().is_empty(), "turn {turn}");
        let ended = tokio::time::timeout(lease * 2, leaving.task)
            .await
            .unwrap_or_else(|_| panic!("turn {turn}: the drained node's loop went on"))
            .unwrap();
        assert_eq!(ended, xueliang_cluster::Ended::Drained, "turn {turn}");
        leaving.stop.cancel();
        assert!(
            leaving.host.running_here().is_empty(),
            "turn {turn}: the drained node took cameras back"
        );
        let kept = store.leases().await.unwrap();
        assert!(
            kept.iter().all(|l| l.node_id != name),
            "turn {turn}: the drained node holds {kept:?}"
        );
        until(
            "every camera on the keeper",
            Duration::from_secs(10),
            || all_run(&ledger) && counts(&[&keeper]) == [CAMERAS],
        )
        .await;
    }
    keeper.stop.cancel();
    (&mut keeper.task).await.unwrap();
    let overlaps = ledger.overlaps.lock().unwrap().clone();
    assert!(
        overlaps.is_empty(),
        "two nodes ran one camera: {overlaps:?}"
    );
}
