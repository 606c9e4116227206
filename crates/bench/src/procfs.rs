//! Reading CPU time, memory and load from Linux's /proc.

use std::collections::BTreeMap;
use std::path::Path;

/// The fields of `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) the bench uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The thread's or process's name (`comm`), without the parentheses.
    pub comm: String,
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
}

impl Stat {
    pub fn ticks(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Parses a `stat` line. The name may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = text[open + 1..close].to_owned();
    // After the name: field 3 (state) is index 0, so field N is index N - 3.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let utime = rest.get(14 - 3)?.parse().ok()?;
    let stime = rest.get(15 - 3)?.parse().ok()?;
    Some(Stat { comm, utime, stime })
}

/// `VmRSS` of a `/proc/<pid>/status` text, in kB.
pub fn parse_vmrss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The three load averages of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Busy and total ticks of all CPUs from the `cpu` line of `/proc/stat`
/// (idle and iowait are not busy; guest time is already inside user time).
pub fn parse_cpu_totals(text: &str) -> Option<CpuTotals> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some(CpuTotals {
        busy: total - idle,
        total,
    })
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTotals {
    pub busy: u64,
    pub total: u64,
}

/// The group a thread's CPU time is reported under: its name without a
/// trailing number (`decode-0` and `decode-1` are both `decode`).
pub fn thread_group(comm: &str) -> String {
    let trimmed = comm.trim_end_matches(|c: char| c.is_ascii_digit());
    let trimmed = trimmed.trim_end_matches(['-', '_', ' ', ':', '.']);
    if trimmed.is_empty() {
        comm.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; Linux uses 100 everywhere the
/// bench runs, which is the fallback).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

pub fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

pub fn read_self_stat() -> Option<Stat> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

pub fn read_vmrss_kb(pid: u32) -> Option<u64> {
    parse_vmrss_kb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

pub fn read_loadavg() -> [f64; 3] {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg(&t))
        .unwrap_or_default()
}

pub fn read_cpu_totals() -> CpuTotals {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_cpu_totals(&t))
        .unwrap_or_default()
}

/// CPU ticks of each thread of a process, by thread id. The main thread
/// (tid = pid) is named `main`; other threads that carry the process's own name
/// never named themselves (they inherit their creator's) and are named
/// `unnamed`, whatever the executable is called.
pub fn read_threads(pid: u32) -> BTreeMap<u32, Stat> {
    let mut out = BTreeMap::new();
    let process_comm = read_stat(pid).map(|s| s.comm);
    let dir = format!("/proc/{pid}/task");
    let Ok(entries) = std::fs::read_dir(Path::new(&dir)) else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(mut stat) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|t| parse_stat(&t))
        {
            if tid == pid {
                stat.comm = "main".to_owned();
            } else if Some(&stat.comm) == process_comm.as_ref() {
                stat.comm = "unnamed".to_owned();
            }
            out.insert(tid, stat);
        }
    }
    out
}

/// CPU ticks spent by each thread group between two `read_threads` snapshots.
/// Threads that appeared in between count from zero; threads that ended are lost
/// (their time is still in the process total).
pub fn thread_group_ticks(
    before: &BTreeMap<u32, Stat>,
    after: &BTreeMap<u32, Stat>,
) -> BTreeMap<String, u64> {
    let mut groups = BTreeMap::new();
    for (tid, a) in after {
        let b = before.get(tid).map(Stat::ticks).unwrap_or(0);
        *groups.entry(thread_group(&a.comm)).or_insert(0) += a.ticks().saturating_sub(b);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parentheses_in_the_name() {
        let line = "4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 1200 0 3 0 \
                    731 96 0 0 20 0 12 0 3318 1254649856 9876 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "we(ird) name");
        assert_eq!(s.utime, 731);
        assert_eq!(s.stime, 96);
        assert_eq!(s.ticks(), 827);
    }

    #[test]
    fn stat_too_short_is_none() {
        assert_eq!(parse_stat("1 (x) S 1 2 3"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_stat_parses() {
        let s = read_self_stat().expect("/proc/self/stat");
        assert!(!s.comm.is_empty());
    }

    #[test]
    fn vmrss_from_status() {
        let status = "Name:\txueliang\nVmPeak:\t  900000 kB\nVmRSS:\t   123456 kB\nThreads:\t9\n";
        assert_eq!(parse_vmrss_kb(status), Some(123456));
        assert_eq!(parse_vmrss_kb("Name:\tx\n"), None);
    }

    #[test]
    fn loadavg_and_cpu_totals() {
        assert_eq!(
            parse_loadavg("1.84 1.88 1.51 1/135 18942\n"),
            Some([1.84, 1.88, 1.51])
        );
        let stat = "cpu  100 5 50 800 40 1 4 0 7 0\ncpu0 50 2 25 400 20 0 2 0 0 0\n";
        let t = parse_cpu_totals(stat).unwrap();
        assert_eq!(t.total, 1000);
        assert_eq!(t.busy, 160);
    }

    #[test]
    fn thread_groups_strip_numbers() {
        assert_eq!(thread_group("decode-0"), "decode");
        assert_eq!(thread_group("decode-11"), "decode");
        assert_eq!(thread_group("tokio"), "tokio");
        assert_eq!(thread_group("sqlx-sqlite-worker-0"), "sqlx-sqlite-worker");
        assert_eq!(thread_group("42"), "42");
    }

    #[test]
    fn group_deltas_count_new_threads_from_zero() {
        let st = |comm: &str, u: u64, s: u64| Stat {
            comm: comm.into(),
            utime: u,
            stime: s,
        };
        let before = BTreeMap::from([(1, st("main", 10, 1)), (2, st("decode-0", 100, 10))]);
        let after = BTreeMap::from([
            (1, st("main", 12, 1)),
            (2, st("decode-0", 150, 20)),
            (3, st("decode-1", 30, 0)),
        ]);
        let g = thread_group_ticks(&before, &after);
        assert_eq!(g["main"], 2);
        assert_eq!(g["decode"], 90);
    }
}
