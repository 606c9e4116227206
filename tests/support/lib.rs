//! Helpers for the end-to-end tests: start real peers (the GStreamer RTSP
//! server, the `xueliang` binary) as child processes that are killed when the
//! handle drops, and talk to the API.

pub mod browser;
pub mod live;
pub mod proxy;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture(name: &str) -> PathBuf {
    let p = repo().join("tests/fixtures").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/setup.sh",
        p.display()
    );
    p
}

/// The `xueliang` binary of the profile these tests were built in
/// (`target/<profile>/xueliang`, next to `deps/` where the test runs).
pub fn xueliang_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("xueliang");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (scripts/test.sh does: cargo build --release -p xueliang)",
        bin.display()
    );
    bin
}

/// A child process killed (and reaped) on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real GStreamer RTSP server (tests/rtsp-server/serve.py) on a free port.
pub struct RtspServer {
    pub port: u16,
    _child: ChildGuard,
}

impl RtspServer {
    /// Starts the server on a free port with extra arguments (`--mount`,
    /// `--loop`, `--auth`, ...).
    pub fn start(args: &[String]) -> Result<RtspServer> {
        RtspServer::start_on(0, args)
    }

    /// Starts the server on `port` (0: a free one).
    pub fn start_on(port: u16, args: &[String]) -> Result<RtspServer> {
        let mut child = Command::new("/usr/bin/python3")
            .arg(repo().join("tests/rtsp-server/serve.py"))
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting /usr/bin/python3 tests/rtsp-server/serve.py (scripts/setup.sh installs it)")?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let guard = ChildGuard(child);
        let port = line
            .trim()
            .strip_prefix("READY port=")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("RTSP server did not start (said {line:?})"))?;
        Ok(RtspServer {
            port,
            _child: guard,
        })
    }

    pub fn url(&self, mount: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{mount}", self.port)
    }
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `xueliang serve` with its own data directory and config.
pub struct Xueliang {
    pub base: String,
    pub dir: tempfile::TempDir,
    /// An admin's session token; [`Xueliang::get`] and friends send it.
    pub token: String,
    child: ChildGuard,
    /// This test's turn to run a server (dropped after the child is killed).
    _turn: Turn,
}

/// A test's turn to run `xueliang serve`. Tests that measure frame rates,
/// detections or event counts on real footage in real time take the machine
/// alone (the default: two cores cannot give that to several servers at
/// once); a test that only checks answers, states or files may call
/// [`share_the_machine`] first and then runs beside other such tests. A test
/// may hold several servers (a restart) on its own turn.
type Turn = std::rc::Rc<TurnGuard>;

#[allow(dead_code)] // held for their drop
enum TurnGuard {
    Alone(std::sync::RwLockWriteGuard<'static, ()>),
    Shared(std::sync::RwLockReadGuard<'static, ()>),
}

static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

thread_local! {
    static HELD: std::cell::RefCell<std::rc::Weak<TurnGuard>> = Default::default();
}

fn hold(guard: TurnGuard) -> Turn {
    let turn = std::rc::Rc::new(guard);
    HELD.with(|held| *held.borrow_mut() = std::rc::Rc::downgrade(&turn));
    turn
}

fn take_turn() -> Turn {
    if let Some(turn) = HELD.with(|held| held.borrow().upgrade()) {
        return turn;
    }
    hold(TurnGuard::Alone(
        MACHINE.write().unwrap_or_else(|p| p.into_inner()),
    ))
}

/// Declares that this test measures no timing: its servers run beside other
/// such tests (never beside a test that takes the machine alone). Keep the
/// returned turn for the whole test.
#[must_use = "the turn lasts while it is held"]
pub fn share_the_machine() -> SharedTurn {
    SharedTurn(hold(TurnGuard::Shared(
        MACHINE.read().unwrap_or_else(|p| p.into_inner()),
    )))
}

/// A turn taken by [`share_the_machine`].
pub struct SharedTurn(#[allow(dead_code)] Turn);

/// An organisation of one village (东村, grid 东村一网格) and one officer on
/// duty for it, reached through the channel `hook`: append `[alerts]` with a
/// `hook` channel.
pub const ONE_OFFICER: &str = r#"
[organisation]
[[organisation.villages]]
name = "东村"
grids = ["东村一网格"]

[[organisation.officers]]
id = "li"
name = "李明"
phone = "13800000001"
channels = ["hook"]

[[organisation.roster]]
officer = "li"
villages = ["东村"]
"#;

/// The admin every test's server gets (made with `xueliang user add`).
pub const ADMIN: &str = "e2e-admin";
pub const ADMIN_PASSWORD: &str = "e2e-admin-password-7c1";

/// Runs `xueliang user add` with the password on standard input; `envs`
/// are those the config needs (`password_env`).
pub fn add_user(
    config: &Path,
    username: &str,
    password: &str,
    role: &str,
    villages: &[&str],
    envs: &[(&str, &str)],
) -> Result<()> {
    use std::io::Write;
    let mut cmd = Command::new(xueliang_bin());
    cmd.envs(envs.iter().copied());
    cmd.args(["user", "add", "--config"]).arg(config).args([
        "--username",
        username,
        "--role",
        role,
        "--password-stdin",
    ]);
    for v in villages {
        cmd.args(["--village", v]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{password}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "xueliang user add {username}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The config header every test uses: the repo's model and onnxruntime, a
/// temporary data directory, a free port, short timeouts, and the first
/// reconnect after `backoff_s` seconds.
pub fn config_header(dir: &Path, port: u16, backoff_s: f64) -> String {
    let root = repo();
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
metrics_listen = "127.0.0.1:{metrics_port}"

[storage]
data_dir = "{data}"

[detector]
model = "{model}"
onnxruntime = "{ort}"

[ingest]
connect_timeout_s = 5
frame_timeout_s = 5
backoff_initial_s = {backoff_s}
backoff_max_s = {backoff_max}
"#,
        data = dir.join("data").display(),
        model = root.join("models/ssd_mobilenet_v2_coco.toml").display(),
        ort = root
            .join(".local/onnxruntime/libonnxruntime.so.1.32.0")
            .display(),
        backoff_max = backoff_s * 4.0,
        metrics_port = free_port(),
    )
}

impl Xueliang {
    /// Writes `config` (a full TOML text) and starts `xueliang serve`; waits
    /// until the API answers.
    pub fn start(
        dir: tempfile::TempDir,
        port: u16,
        config: &str,
        envs: &[(&str, &str)],
    ) -> Result<Xueliang> {
        Xueliang::start_with_args(dir, port, config, envs, &[])
    }

    /// [`Xueliang::start`] with more arguments to `serve` (`--log-format json`).
    pub fn start_with_args(
        dir: tempfile::TempDir,
        port: u16,
        config: &str,
        envs: &[(&str, &str)],
        args: &[&str],
    ) -> Result<Xueliang> {
        let turn = take_turn();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config)?;
        // The first start on a data directory makes the admin.
        let marker = dir.path().join("admin-created");
        if !marker.exists() {
            add_user(&path, ADMIN, ADMIN_PASSWORD, "admin", &[], envs)?;
            std::fs::write(&marker, "")?;
        }
        let log = std::fs::File::create(dir.path().join("xueliang.log"))?;
        let child = Command::new(xueliang_bin())
            .args(["serve", "--config"])
            .arg(&path)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let mut x = Xueliang {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            token: String::new(),
            child: ChildGuard(child),
            _turn: turn,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = x.child.0.try_wait()? {
                bail!("xueliang exited with {status}: {}", x.log());
            }
            if reqwest::blocking_get_ok(&format!("{}/healthz", x.base)) {
                x.token = login(&x.base, ADMIN, ADMIN_PASSWORD)?;
                return Ok(x);
            }
            if Instant::now() > deadline {
                bail!("xueliang did not answer within 30 s: {}", x.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("xueliang.log")).unwrap_or_default()
    }

    /// GET as the admin; fails unless 200 with JSON.
    pub fn get(&self, path: &str) -> Result<Value> {
        let (status, v) = self.call("GET", path, None)?;
        if status != 200 {
            bail!("GET {path}: {status} {v}");
        }
        Ok(v)
    }

    /// The Prometheus text from the metrics listener named in the config.
    pub fn metrics(&self) -> Result<String> {
        let config = std::fs::read_to_string(self.dir.path().join("config.toml"))?;
        let listen = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("metrics_listen = "))
            .context("the config has no metrics_listen")?
            .trim_matches('"');
        let (status, _, body) =
            http_request("GET", &format!("http://{listen}/metrics"), None, None)?;
        if status != 200 {
            bail!("GET /metrics: {status}");
        }
        Ok(String::from_utf8(body)?)
    }

    /// GET as the admin: status, content type, body.
    pub fn get_bytes(&self, path: &str) -> Result<(u16, String, Vec<u8>)> {
        http_request(
            "GET",
            &format!("{}{path}", self.base),
            Some(&self.token),
            None,
        )
    }

    /// Any request as the admin: status and JSON body (`null` when empty).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        call_json(
            method,
            &format!("{}{path}", self.base),
            Some(&self.token),
            body,
        )
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.0.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("xueliang did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every event, following the cursor.
    pub fn all_events(&self, filter: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = format!("/api/v1/events?limit=100{filter}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&q)?;
            out.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(out),
            }
        }
    }

    /// The health object of a camera.
    pub fn health(&self, camera: &str) -> Result<Value> {
        self.get(&format!("/api/v1/cameras/{camera}/health"))
    }
}

/// Polls `f` every 200 ms until it returns `Some` or `limit` passes.
/// The last frame count in ffmpeg's `-progress pipe:1` output (its
/// `frame=N` lines); 0 when there is none.
pub fn progress_frames(stdout: &[u8]) -> u64 {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("condition not met within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Minimal blocking HTTP for tests (runs a one-off tokio runtime per call).
pub fn http_get(url: &str) -> Result<(u16, String, Vec<u8>)> {
    http_request("GET", url, None, None)
}

/// One request with an optional bearer token and JSON body: status, content
/// type, body.
pub fn http_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, String, Vec<u8>)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = reqwest::Client::new()
            .request(method, url)
            .timeout(Duration::from_secs(10));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok((status, ctype, r.bytes().await?.to_vec()))
    })
}

/// A request whose answer is JSON (or empty, read as `null`).
pub fn call_json(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let (status, _, bytes) = http_request(method, url, token, body)?;
    if bytes.is_empty() {
        return Ok((status, Value::Null));
    }
    let v = serde_json::from_slice(&bytes)
        .with_context(|| format!("{method} {url}: {status}, not JSON"))?;
    Ok((status, v))
}

/// Logs in and returns the session token.
pub fn login(base: &str, username: &str, password: &str) -> Result<String> {
    let body = serde_json::json!({ "username": username, "password": password });
    let (status, v) = call_json(
        "POST",
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(&body),
    )?;
    if status != 200 {
        bail!("login as {username}: {status} {v}");
    }
    v["token"]
        .as_str()
        .map(str::to_owned)
        .context("login answer without a token")
}

pub fn http_get_json(url: &str) -> Result<Value> {
    let (status, _, body) = http_get(url)?;
    let v: Value =
        serde_json::from_slice(&body).with_context(|| format!("GET {url}: {status}, not JSON"))?;
    if status != 200 {
        bail!("GET {url}: {status} {v}");
    }
    Ok(v)
}

mod reqwest {
    pub use ::reqwest::*;

    /// Whether GET `url` answers 200.
    pub fn blocking_get_ok(url: &str) -> bool {
        matches!(super::http_get(url), Ok((200, _, _)))
    }
}

// ---------------------------------------------------------------- alerts

impl Xueliang {
    /// Kills the process with SIGKILL (no shutdown at all) and hands back its
    /// directory (config, data, log) for a restart.
    pub fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.0.kill(); // SIGKILL on Unix
        let _ = self.child.0.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        drop(self);
        dir
    }

    /// Writes `config` over the old one in `dir` and starts again on the same data.
    pub fn restart(dir: tempfile::TempDir, port: u16, config: &str) -> Result<Xueliang> {
        Xueliang::start(dir, port, config, &[])
    }
}

/// One HTTP request a [`HttpReceiver`] got.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A minimal HTTP/1.1 receiver on its own thread (plays a webhook endpoint):
/// records every request and answers 200 with `answer` as JSON body.
pub struct HttpReceiver {
    pub port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<ReceivedRequest>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HttpReceiver {
    pub fn start(port: u16, answer: &str) -> Result<HttpReceiver> {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (g, s, answer) = (got.clone(), stop.clone(), answer.to_owned());
        std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.split("\r\n");
                let path = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .unwrap_or_default()
                    .to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = buf[head_end + 4..].to_vec();
                while body.len() < len {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                g.lock().unwrap().push(ReceivedRequest {
                    path,
                    headers,
                    body,
                });
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    answer.len(),
                    answer
                );
            }
        });
        Ok(HttpReceiver { port, got, stop })
    }

    pub fn got(&self) -> Vec<ReceivedRequest> {
        self.got.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
