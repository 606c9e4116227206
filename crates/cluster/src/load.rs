//! This process's CPU use between two readings, for the node list.

use std::time::Instant;

pub(crate) struct CpuMeter {
    at: Instant,
    ticks: u64,
}

impl CpuMeter {
    pub(crate) fn start() -> Self {
        CpuMeter {
            at: Instant::now(),
            ticks: own_ticks().unwrap_or(0),
        }
    }

    /// Per cent of one core since the last reading (0 when unreadable).
    pub(crate) fn percent(&mut self) -> f64 {
        let (now, ticks) = (Instant::now(), own_ticks().unwrap_or(self.ticks));
        let seconds = now.duration_since(self.at).as_secs_f64();
        let used = ticks.saturating_sub(self.ticks) as f64 / ticks_per_second();
        (self.at, self.ticks) = (now, ticks);
        if seconds > 0.0 {
            100.0 * used / seconds
        } else {
            0.0
        }
    }
}

/// User and system clock ticks of this process (`/proc/self/stat`, fields
/// 14 and 15, counted after the command name's closing parenthesis).
fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_busy_loop_shows_as_cpu_use() {
        let mut m = super::CpuMeter::start();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 300 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let p = m.percent();
        assert!(p > 30.0 && p < 250.0, "{p}");
    }
}
