//! The dashboard pages, served by the API's app on a real port: security
//! headers on every response, every module that index.html (and each module)
//! imports exists, and every file of crates/api/dashboard/ is embedded.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use xueliang_api::FixedCameras;

const CSP: &str =
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

struct Server {
    base: String,
    _dir: xueliang_store::testing::TestStore,
}

async fn server() -> Server {
    let (store, dir) = crate::common::store().await;
    let base = crate::common::serve(&store, Arc::new(FixedCameras(Vec::new()))).await;
    Server { base, _dir: dir }
}

fn dashboard_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboard")
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(url: &str) -> Got {
    let r = reqwest::get(url).await.unwrap();
    Got {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

fn header<'a>(got: &'a Got, name: &str) -> &'a str {
    got.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn assert_hardened(got: &Got, what: &str) {
    assert_eq!(header(got, "content-security-policy"), CSP, "{what}");
    assert_eq!(header(got, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(got, "x-frame-options"), "DENY", "{what}");
    assert_eq!(header(got, "referrer-policy"), "no-referrer", "{what}");
    assert!(
        !header(got, "cache-control").is_empty(),
        "{what}: no Cache-Control"
    );
}

/// The values of `attr="/assets/..."` in an HTML text.
fn asset_refs(html: &str, attr: &str) -> Vec<String> {
    html.split(&format!("{attr}=\"/assets/"))
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The relative imports of an ES module (`from "./x.js"`, `import "./x.js"`).
fn module_imports(js: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["from \"./", "import \"./"] {
        for rest in js.split(marker).skip(1) {
            out.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    out
}

#[tokio::test]
async fn the_page_and_its_modules_are_served_with_security_headers() {
    let s = server().await;
    let index = get(&format!("{}/", s.base)).await;
    assert_eq!(index.status, 200);
    assert!(header(&index, "content-type").starts_with("text/html"));
    assert_hardened(&index, "/");
    assert!(index.body.contains("雪亮"), "index.html is the dashboard");
    // The pages are public; the data behind them is not.
    let me = get(&format!("{}/api/v1/auth/me", s.base)).await;
    assert_eq!(me.status, 401, "the API needs a session: {}", me.body);

    let scripts = asset_refs(&index.body, "src");
    let styles = asset_refs(&index.body, "href");
    assert!(
        scripts.contains(&"app.js".to_owned()),
        "index.html loads app.js"
    );
    assert!(
        styles.contains(&"style.css".to_owned()),
        "index.html loads style.css"
    );

    // Follow the imports from index.html through every module.
    let mut todo: Vec<String> = scripts.iter().chain(&styles).cloned().collect();
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let got = get(&format!("{}/assets/{name}", s.base)).await;
        assert_eq!(
            got.status, 200,
            "/assets/{name} (referenced by the page) is not served"
        );
        assert_hardened(&got, &name);
        let ctype = header(&got, "content-type");
        if name.ends_with(".js") {
            assert!(ctype.starts_with("text/javascript"), "{name}: {ctype}");
            todo.extend(module_imports(&got.body));
        } else if name.ends_with(".css") {
            assert!(ctype.starts_with("text/css"), "{name}: {ctype}");
        }
    }
    assert!(seen.len() > 5, "the modules are found: {seen:?}");

    // Every file in crates/api/dashboard/ is embedded and reachable.
    for entry in std::fs::read_dir(dashboard_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "index.html" {
            continue;
        }
        let got = get(&format!("{}/assets/{name}", s.base)).await;
        assert_eq!(got.status, 200, "{name} is not embedded in dashboard.rs");
        assert!(
            seen.contains(&name),
            "{name} is embedded but nothing imports it"
        );
    }
}

#[tokio::test]
async fn unknown_assets_are_404_with_the_same_headers_and_etags_revalidate() {
    let s = server().await;
    let missing = get(&format!("{}/assets/nope.js", s.base)).await;
    assert_eq!(missing.status, 404);
    assert_hardened(&missing, "404");
    let traversal = get(&format!("{}/assets/..%2Fsrc%2Flib.rs", s.base)).await;
    assert_eq!(traversal.status, 404);

    let app = get(&format!("{}/assets/app.js", s.base)).await;
    let etag = header(&app, "etag").to_owned();
    assert!(etag.starts_with('"'), "ETag {etag:?}");
    assert_eq!(header(&app, "cache-control"), "no-cache");
    let again = reqwest::Client::new()
        .get(format!("{}/assets/app.js", s.base))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(
        again.headers()["content-security-policy"].to_str().unwrap(),
        CSP
    );
}

/// The CSP forbids inline script and style; the dashboard must not need them,
/// and data is never parsed as HTML.
#[test]
fn the_sources_need_no_inline_script_or_style_and_never_parse_data_as_html() {
    for entry in std::fs::read_dir(dashboard_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".html") {
            assert!(!text.contains("style=\""), "{name}: inline style");
            assert!(!text.contains("<style"), "{name}: inline style");
            for tag in text.split("<script").skip(1) {
                let open = &tag[..tag.find('>').unwrap()];
                assert!(open.contains("src="), "{name}: inline script");
            }
        }
        if name.ends_with(".js") {
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!text.contains(bad), "{name} uses {bad}");
            }
            assert!(
                !text.contains("setAttribute(\"style\""),
                "{name}: inline style"
            );
        }
    }
}
