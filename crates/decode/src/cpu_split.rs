//! Where a decode thread's CPU time goes, per camera: inside the video
//! decoder, or converting its pictures. Read from the thread's own CPU clock
//! (not wall time: a thread that waits for a core is not charged), once per
//! packet and twice per picture handed on, and added to the camera's
//! counters once per packet.

use std::sync::atomic::AtomicU64;
use xueliang_core::CameraStats;

/// CPU time the calling thread has used, in nanoseconds (0 when the clock
/// cannot be read, which Linux does not do for the calling thread).
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return 0;
    }
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Splits the CPU time of handling one packet between decoding and
/// converting; what is left when it is dropped counts as decoding.
pub(crate) struct CpuSplit<'a> {
    stats: &'a CameraStats,
    mark: u64,
    decode: u64,
    convert: u64,
}

impl<'a> CpuSplit<'a> {
    /// Starts the clock: what follows is decoding.
    pub(crate) fn start(stats: &'a CameraStats) -> Self {
        CpuSplit {
            stats,
            mark: thread_cpu_ns(),
            decode: 0,
            convert: 0,
        }
    }

    fn lap(&mut self) -> u64 {
        let now = thread_cpu_ns();
        let spent = now.saturating_sub(self.mark);
        self.mark = now;
        spent
    }

    /// The time since the last call was decoding; converting starts.
    pub(crate) fn decoded(&mut self) {
        self.decode += self.lap();
    }

    /// The time since the last call was converting; decoding starts.
    pub(crate) fn converted(&mut self) {
        self.convert += self.lap();
    }
}

impl Drop for CpuSplit<'_> {
    fn drop(&mut self) {
        self.decoded();
        add(&self.stats.decode_cpu_ns, self.decode);
        add(&self.stats.convert_cpu_ns, self.convert);
    }
}

fn add(counter: &AtomicU64, ns: u64) {
    if ns > 0 {
        CameraStats::add(counter, ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns about `ms` of this thread's CPU.
    fn spin(ms: u64) {
        let until = thread_cpu_ns() + ms * 1_000_000;
        let mut x = 0u64;
        while thread_cpu_ns() < until {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    #[test]
    fn the_thread_clock_counts_work_and_not_sleep() {
        let t0 = thread_cpu_ns();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let slept = thread_cpu_ns() - t0;
        spin(20);
        let worked = thread_cpu_ns() - t0 - slept;
        assert!(slept < 5_000_000, "sleeping cost {slept} ns of CPU");
        assert!(worked >= 20_000_000, "20 ms of work read {worked} ns");
    }

    #[test]
    fn time_is_charged_to_decoding_and_converting_as_marked() {
        let stats = CameraStats::default();
        {
            let mut split = CpuSplit::start(&stats);
            spin(10); // decoding
            split.decoded();
            spin(20); // converting
            split.converted();
            spin(5); // decoding again, charged when dropped
        }
        let ms = |c: &AtomicU64| CameraStats::get(c) as f64 / 1e6;
        let (decode, convert) = (ms(&stats.decode_cpu_ns), ms(&stats.convert_cpu_ns));
        assert!((15.0..25.0).contains(&decode), "decode {decode} ms");
        assert!((20.0..30.0).contains(&convert), "convert {convert} ms");
    }

    #[test]
    fn a_camera_is_charged_what_decoding_and_converting_its_pictures_cost() {
        use crate::test_clips::{busy_clip, packets, Decoder};
        let packets = packets(&busy_clip("cpu-split"));
        let mut d = Decoder::new(None);
        let t0 = thread_cpu_ns();
        let mut offered = 0;
        for p in packets {
            offered += d.push(p).len();
        }
        let total = thread_cpu_ns() - t0;
        let decode = CameraStats::get(&d.stats.decode_cpu_ns);
        let convert = CameraStats::get(&d.stats.convert_cpu_ns);
        assert!(offered > 100, "{offered} pictures offered");
        // What is not charged: feeding packets in, reading the slot.
        assert!(decode + convert <= total, "{decode} + {convert} > {total}");
        assert!(
            decode + convert >= total / 10 * 8,
            "{decode} + {convert} of {total} charged"
        );
        // Every second picture is scaled: converting costs less than decoding.
        assert!(convert > 0 && convert < decode, "{convert} vs {decode}");
    }
}
