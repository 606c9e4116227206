//! Which RTP stream a receiver follows when packets with several SSRCs
//! reach its port. Real devices answer with an SSRC other than the one the
//! platform offered, or change it, so the receive port decides, not the
//! SSRC: the first stream seen is followed; the offered SSRC (`y=`) wins
//! over it when both are seen; another stream takes over only after a run
//! of its packets with none of the followed one in between (a device that
//! restarted its stream), so a stray old stream cannot make it flip.

/// Consecutive packets of another SSRC that make it the followed one.
const TAKE_OVER_AFTER: u32 = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SsrcVerdict {
    Accept,
    /// Accept, but the stream changed: the sequence starts over.
    Switched,
    Reject,
}

#[derive(Debug, Default)]
pub(super) struct SsrcLock {
    expected: Option<u32>,
    current: Option<u32>,
    /// Another SSRC and how many of its packets came in a row.
    rival: Option<(u32, u32)>,
}

impl SsrcLock {
    pub(super) fn expect(&mut self, ssrc: Option<u32>) {
        self.expected = ssrc;
    }

    /// The verdict on a packet, and whether its SSRC is not the expected one.
    pub(super) fn check(&mut self, ssrc: u32) -> (SsrcVerdict, bool) {
        let verdict = match self.current {
            None => {
                self.current = Some(ssrc);
                SsrcVerdict::Accept
            }
            Some(current) if current == ssrc => {
                self.rival = None;
                SsrcVerdict::Accept
            }
            Some(current) => {
                let run = match self.rival {
                    Some((rival, run)) if rival == ssrc => run + 1,
                    _ => 1,
                };
                let offered = self.expected == Some(ssrc) && self.expected != Some(current);
                if offered || run >= TAKE_OVER_AFTER {
                    self.current = Some(ssrc);
                    self.rival = None;
                    SsrcVerdict::Switched
                } else {
                    self.rival = Some((ssrc, run));
                    SsrcVerdict::Reject
                }
            }
        };
        let mismatch = match verdict {
            SsrcVerdict::Reject => true,
            _ => self.expected.is_some_and(|e| e != ssrc),
        };
        (verdict, mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SsrcVerdict::*;

    #[test]
    fn a_mismatching_answer_is_followed_and_counted() {
        let mut lock = SsrcLock::default();
        lock.expect(Some(100));
        assert_eq!(lock.check(7), (Accept, true));
        assert_eq!(lock.check(7), (Accept, true));
        // The offered SSRC shows up after all: it wins.
        assert_eq!(lock.check(100), (Switched, false));
        assert_eq!(lock.check(7), (Reject, true));
        assert_eq!(lock.check(100), (Accept, false));
    }

    #[test]
    fn a_stray_stream_never_takes_over_but_a_restart_does() {
        let mut lock = SsrcLock::default();
        assert_eq!(lock.check(1), (Accept, false));
        for _ in 0..100 {
            assert_eq!(lock.check(2).0, Reject);
            assert_eq!(lock.check(1).0, Accept);
        }
        for _ in 1..TAKE_OVER_AFTER {
            assert_eq!(lock.check(3).0, Reject);
        }
        assert_eq!(lock.check(3).0, Switched);
        assert_eq!(lock.check(3).0, Accept);
    }
}
