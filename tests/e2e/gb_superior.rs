//! sipp as the superior platform of the cascade tests
//! (crates/gb28181/tests/sipp/), as every such test runs it.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use xueliang_e2e::{repo, ChildGuard};

/// A scenario of crates/gb28181/tests/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    repo().join("crates/gb28181/tests/sipp").join(name)
}

/// sipp with `args` (scenario, port, keys of its own) on loopback over UDP,
/// without stdin or screen, keyed with the superior's id `superior` (its
/// realm the first 10 digits) and ours `local_id`, taking alarms, every
/// message logged to `log`.
pub fn sipp(args: &[String], superior: &str, local_id: &str, log: &Path) -> Result<ChildGuard> {
    let child = Command::new("sipp")
        .args(args)
        .args(["-i", "127.0.0.1", "-nostdin", "-nd", "-t", "u1"])
        .args([
            "-key",
            "realm",
            &superior[..10],
            "-key",
            "local_id",
            local_id,
        ])
        .args(["-key", "superior", superior])
        .args(["-key", "refuse_alarms", "0"])
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sipp (scripts/setup.sh installs Debian's sip-tester)")?;
    Ok(ChildGuard(child))
}
