//! deploy/ checked without a container engine or a cluster (none runs here):
//! every Kubernetes manifest validates against the Kubernetes schemas
//! (kubernetes-validate, strict: unknown fields are errors), with the probes,
//! grace period and security context the deployment relies on; every service
//! of the compose file has a health check; the configs the image, the compose
//! nodes and the ConfigMap carry pass `xueliang check-config`; and the
//! Containerfile builds with what scripts/setup.sh installs.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use xueliang_e2e::{repo, xueliang_bin};

/// The version scripts/setup.sh installs into `.local/venv`.
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

fn deploy() -> PathBuf {
    repo().join("deploy")
}

/// A tool of `.local/venv`, which scripts/setup.sh makes; the test fails
/// (never skips) without it.
fn venv_tool(name: &str) -> PathBuf {
    let tool = repo().join(".local/venv/bin").join(name);
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/setup.sh (it installs kubernetes-validate=={KUBERNETES_VALIDATE_VERSION} into .local/venv)",
        tool.display()
    );
    tool
}

/// The YAML documents of `file`, as JSON (read by the venv's PyYAML, which
/// kubernetes-validate brings).
fn yaml_documents(file: &Path) -> Result<Vec<Value>> {
    let out = Command::new(venv_tool("python"))
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')) if d is not None]))",
        ])
        .arg(file)
        .output()?;
    if !out.status.success() {
        bail!(
            "{} is not YAML (or the venv lacks PyYAML: run scripts/setup.sh):\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{}", file.display()))
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy().join("kubernetes"))
        .expect("deploy/kubernetes/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    // A few seconds of Python: not beside a test that measures.
    let _turn = xueliang_e2e::share_the_machine();
    let tool = venv_tool("kubernetes-validate");
    let version = Command::new(&tool).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert_eq!(
        version.trim(),
        KUBERNETES_VALIDATE_VERSION,
        "{}: run scripts/setup.sh",
        tool.display()
    );
    let files = manifests();
    assert!(files.len() >= 4, "deploy/kubernetes/: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let out = Command::new(&tool)
            .arg("--strict")
            .arg(file)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Each resource of a file is reported as it passes.
        if !out.status.success() || !text.contains("passed") || text.contains("ERROR") {
            failures.push(format!("{}:\n{text}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every resource of deploy/kubernetes/, by kind.
fn resources() -> Result<Vec<Value>> {
    let mut all = Vec::new();
    for file in manifests() {
        all.extend(yaml_documents(&file)?);
    }
    Ok(all)
}

fn of_kind<'a>(resources: &'a [Value], kind: &str) -> Vec<&'a Value> {
    resources.iter().filter(|r| r["kind"] == kind).collect()
}

#[test]
fn the_statefulset_probes_readyz_and_healthz_and_stops_gracefully() -> Result<()> {
    let _turn = xueliang_e2e::share_the_machine();
    let all = resources()?;
    for kind in ["ConfigMap", "Secret", "Service"] {
        assert!(
            !of_kind(&all, kind).is_empty(),
            "no {kind} in deploy/kubernetes/"
        );
    }
    let sets = of_kind(&all, "StatefulSet");
    assert_eq!(sets.len(), 1, "one StatefulSet");
    let pod = &sets[0]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{c}");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{c}");
    assert!(c["startupProbe"]["httpGet"]["path"].is_string(), "{c}");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    assert!(
        grace > 60,
        "terminationGracePeriodSeconds {grace}: the drain takes up to 60 s"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    for (kind, what) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "memory"),
    ] {
        assert!(
            c["resources"][kind][what].is_string(),
            "resources.{kind}.{what}"
        );
    }
    // The config the pods mount has a file, and the secrets they name exist.
    let config = of_kind(&all, "ConfigMap")[0];
    assert!(config["data"]["xueliang.toml"].is_string(), "{config}");
    let secret = of_kind(&all, "Secret")[0];
    for env in c["env"].as_array().into_iter().flatten() {
        let key = &env["valueFrom"]["secretKeyRef"]["key"];
        if let Some(key) = key.as_str() {
            assert!(
                secret["stringData"][key].is_string(),
                "{key} is not in the Secret"
            );
        }
    }
    Ok(())
}

#[test]
fn every_compose_service_has_a_health_check() -> Result<()> {
    let _turn = xueliang_e2e::share_the_machine();
    let file = deploy().join("compose.yaml");
    let doc = yaml_documents(&file)?;
    let services = doc[0]["services"]
        .as_object()
        .context("compose.yaml: no services")?;
    for name in ["postgres", "mosquitto", "xueliang-1", "xueliang-2"] {
        assert!(
            services.contains_key(name),
            "compose.yaml: no service {name}"
        );
    }
    assert!(
        services["postgres"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("postgres:15")),
        "PostgreSQL 15"
    );
    for (name, s) in services {
        let test = &s["healthcheck"]["test"];
        let ok = match test {
            Value::Array(words) => {
                !words.is_empty() && words[0] != "NONE" && s["healthcheck"]["disable"] != true
            }
            Value::String(line) => !line.is_empty(),
            _ => false,
        };
        assert!(ok, "compose.yaml: service {name} has no health check: {s}");
        // Waiting for a dependency to be healthy needs its health check
        // (checked above for every service), and the dependency must exist.
        if let Some(deps) = s["depends_on"].as_object() {
            for (dep, how) in deps {
                assert!(
                    services.contains_key(dep),
                    "{name} depends on unknown {dep}"
                );
                assert_eq!(how["condition"], "service_healthy", "{name} -> {dep}");
            }
        }
        // Files mounted from the repository exist (relative to deploy/).
        for v in s["volumes"].as_array().into_iter().flatten() {
            let source = v.as_str().and_then(|v| v.split(':').next()).unwrap_or("");
            if source.starts_with("./") || source.starts_with("../") {
                assert!(
                    deploy().join(source).exists(),
                    "{name} mounts {source}, which is not in deploy/"
                );
            }
        }
    }
    Ok(())
}

/// A config of deploy/ as `xueliang check-config` can read it here: the
/// image's paths made this checkout's, the data directory a temporary one,
/// and without `[storage] url = "postgres://..."` and `[cluster]` (checking
/// those needs the database: the PostgreSQL backend's own tests do).
fn checkable(config: &str, data_dir: &Path) -> String {
    let root = repo();
    let ort = root.join(".local/onnxruntime/libonnxruntime.so.1.32.0");
    let mut out = String::new();
    let mut in_cluster = false;
    for line in config.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_cluster = t.starts_with("[cluster]");
        }
        if in_cluster || t.starts_with("url = \"postgres") {
            continue;
        }
        let line = line
            .replace(
                "/opt/xueliang/models/",
                &format!("{}/", root.join("models").display()),
            )
            .replace(
                "/opt/xueliang/lib/libonnxruntime.so.1.32.0",
                &ort.display().to_string(),
            )
            .replace("/var/lib/xueliang", &data_dir.display().to_string());
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn the_image_compose_and_configmap_configs_pass_check_config() -> Result<()> {
    let _turn = xueliang_e2e::share_the_machine();
    let configmap = resources()?
        .into_iter()
        .find(|r| r["kind"] == "ConfigMap")
        .context("no ConfigMap")?;
    let mut configs = vec![(
        "kubernetes ConfigMap xueliang.toml".to_owned(),
        configmap["data"]["xueliang.toml"]
            .as_str()
            .context("no xueliang.toml")?
            .to_owned(),
    )];
    for f in [
        "container.toml",
        "compose/node-1.toml",
        "compose/node-2.toml",
    ] {
        configs.push((f.to_owned(), std::fs::read_to_string(deploy().join(f))?));
    }
    for (name, config) in configs {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("config.toml");
        std::fs::write(&path, checkable(&config, &dir.path().join("data")))?;
        let out = Command::new(xueliang_bin())
            .args(["check-config", "--config"])
            .arg(&path)
            .env("XUELIANG_ACK_KEY", "deploy-test-ack-key-0123456789")
            .output()?;
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `NAME=value` of a shell or Containerfile line `[ARG ]NAME=value`.
fn assignment(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches("ARG ");
        l.strip_prefix(&format!("{name}="))
            .map(|v| v.trim_matches('"').to_owned())
    })
}

#[test]
fn the_containerfile_builds_with_what_setup_installs() -> Result<()> {
    let file = std::fs::read_to_string(deploy().join("Containerfile"))?;
    let setup = std::fs::read_to_string(repo().join("scripts/setup.sh"))?;
    let ort = assignment(&setup, "ORT_VERSION").context("setup.sh: no ORT_VERSION")?;
    assert_eq!(
        assignment(&file, "ORT_VERSION").as_deref(),
        Some(ort.as_str()),
        "the Containerfile's onnxruntime is setup.sh's"
    );
    for config in ["container.toml", "compose/node-1.toml"] {
        let text = std::fs::read_to_string(deploy().join(config))?;
        assert!(
            text.contains(&format!("libonnxruntime.so.{ort}")),
            "{config}: onnxruntime {ort}"
        );
    }
    // The build packages of setup.sh (everything it installs to compile).
    let builder = file
        .split("\nFROM ")
        .find(|stage| stage.contains("AS builder"))
        .context("no builder stage")?;
    for package in [
        "pkg-config",
        "clang",
        "libclang-dev",
        "libavcodec-dev",
        "libavformat-dev",
        "libavutil-dev",
        "libswscale-dev",
    ] {
        assert!(
            setup.contains(package),
            "setup.sh no longer installs {package}"
        );
        assert!(
            builder.split_whitespace().any(|w| w == package),
            "the builder stage lacks {package}"
        );
    }
    // What it copies from the repository exists.
    for line in file.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        for source in &words[1..words.len() - 1] {
            assert!(
                repo().join(source).exists(),
                "Containerfile copies {source}, which does not exist"
            );
        }
    }
    for needed in [
        "FROM rust:1-bookworm AS builder",
        "FROM debian:bookworm-slim",
        "EXPOSE 8080",
        "/healthz",
        r#"ENTRYPOINT ["xueliang", "serve", "--config", "/etc/xueliang/xueliang.toml"]"#,
        "COPY deploy/container.toml /etc/xueliang/xueliang.toml",
    ] {
        assert!(file.contains(needed), "Containerfile: no {needed:?}");
    }
    let user = file
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .context("Containerfile: no USER")?;
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "runs as {user}"
    );
    Ok(())
}
