//! Bit-level reading of parameter sets: emulation-prevention removal and an
//! MSB-first bit reader with Exp-Golomb codes. Every read is bounds-checked;
//! running off the end is an error, never a panic.

use crate::MuxError;

/// The RBSP of a NAL unit: `nal` with every emulation-prevention byte (the
/// `0x03` of `00 00 03`) removed.
pub(crate) fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads bits MSB first from an RBSP.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
    /// What is being parsed, for errors.
    what: &'static str,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> BitReader<'a> {
        BitReader { data, pos: 0, what }
    }

    fn short(&self) -> MuxError {
        MuxError::BadParameterSet {
            what: self.what,
            reason: "ends early",
        }
    }

    pub(crate) fn bit(&mut self) -> Result<bool, MuxError> {
        let byte = self.data.get(self.pos / 8).ok_or_else(|| self.short())?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// `n` bits (at most 32) as an unsigned number.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, MuxError> {
        debug_assert!(n <= 32);
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Ok(v)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), MuxError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.short())?;
        if end > self.data.len() * 8 {
            return Err(self.short());
        }
        self.pos = end;
        Ok(())
    }

    /// ue(v): unsigned Exp-Golomb. Values above `u32::MAX - 1` are refused.
    pub(crate) fn ue(&mut self) -> Result<u32, MuxError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(MuxError::BadParameterSet {
                    what: self.what,
                    reason: "Exp-Golomb code longer than 32 bits",
                });
            }
        }
        let rest = self.bits(zeros)?;
        // (1 << zeros) - 1 + rest, which fits in u64 and is checked for u32.
        let v = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(v).map_err(|_| MuxError::BadParameterSet {
            what: self.what,
            reason: "Exp-Golomb value out of range",
        })
    }

    /// se(v): signed Exp-Golomb.
    pub(crate) fn se(&mut self) -> Result<i64, MuxError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    /// ue(v) that must not exceed `max` (a field the spec bounds; larger is
    /// garbage, and bounding it keeps loops driven by it short).
    pub(crate) fn ue_max(&mut self, max: u32, reason: &'static str) -> Result<u32, MuxError> {
        let v = self.ue()?;
        if v > max {
            return Err(MuxError::BadParameterSet {
                what: self.what,
                reason,
            });
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_removes_only_emulation_prevention() {
        assert_eq!(
            unescape(&[0x67, 0, 0, 3, 1, 0, 0, 3, 0, 3]),
            vec![0x67, 0, 0, 1, 0, 0, 0, 3]
        );
        // A 03 not after two zeros stays.
        assert_eq!(unescape(&[0, 3, 0, 0, 3]), vec![0, 3, 0, 0]);
    }

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0, 1, 2, 3 ; se(00101) = -2
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.se().unwrap(), -2);
        assert!(r.ue().is_err());
    }

    #[test]
    fn long_codes_are_errors() {
        let data = [0u8; 8];
        assert!(BitReader::new(&data, "test").ue().is_err());
        let mut max = [0u8; 8];
        max[3] = 0x01; // 31 zeros then a 1, then 31 zero bits: 2^31 - 1
        assert_eq!(BitReader::new(&max, "test").ue().unwrap(), (1u32 << 31) - 1);
    }
}
