//! ISO BMFF (ISO/IEC 14496-12) box writing: a byte buffer with size
//! patching, and the boxes the clip file and the init segment share.

use crate::TrackConfig;

/// The one track's ID.
pub(crate) const TRACK_ID: u32 = 1;

/// A growing buffer of boxes. `begin` writes a size placeholder and the
/// type; `end` patches the size in.
#[derive(Default)]
pub(crate) struct BoxWriter {
    pub buf: Vec<u8>,
}

impl BoxWriter {
    pub fn begin(&mut self, fourcc: &[u8; 4]) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(fourcc);
        start
    }

    /// A full box: version and 24-bit flags after the type.
    pub fn begin_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
        let start = self.begin(fourcc);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        start
    }

    /// Patches the size of the box begun at `start`. Boxes other than
    /// `mdat` stay far below 4 GiB (a clip's sample tables are a few bytes
    /// per sample); `mdat` is written by its own code.
    pub fn end(&mut self, start: usize) {
        let size = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub fn ftyp(&mut self, major: &[u8; 4], minor: u32, compatible: &[&[u8; 4]]) {
        let start = self.begin(b"ftyp");
        self.bytes(major);
        self.u32(minor);
        for brand in compatible {
            self.bytes(*brand);
        }
        self.end(start);
    }

    fn matrix(&mut self) {
        for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000u32] {
            self.u32(v);
        }
    }

    /// A 32-bit duration field where it fits, else version 1.
    fn version_for(duration: u64) -> u8 {
        u8::from(duration > u64::from(u32::MAX))
    }

    fn times(&mut self, version: u8, duration: u64, timescale: Option<u32>) {
        // creation_time, modification_time: 0 (unknown); keeps output
        // byte-identical for identical input.
        if version == 1 {
            self.u64(0);
            self.u64(0);
        } else {
            self.u32(0);
            self.u32(0);
        }
        if let Some(timescale) = timescale {
            self.u32(timescale);
        }
        if version == 1 {
            self.u64(duration);
        } else {
            self.u32(duration as u32);
        }
    }

    pub fn mvhd(&mut self, timescale: u32, duration: u64) {
        let version = Self::version_for(duration);
        let start = self.begin_full(b"mvhd", version, 0);
        self.times(version, duration, Some(timescale));
        self.u32(0x0001_0000); // rate 1.0
        self.u16(0x0100); // volume 1.0
        self.bytes(&[0; 10]); // reserved
        self.matrix();
        self.bytes(&[0; 24]); // pre_defined
        self.u32(TRACK_ID + 1); // next_track_ID
        self.end(start);
    }

    pub fn tkhd(&mut self, duration: u64, config: &TrackConfig) {
        let version = Self::version_for(duration);
        // flags: track_enabled | track_in_movie
        let start = self.begin_full(b"tkhd", version, 0x3);
        // creation, modification, track_ID, reserved, duration
        if version == 1 {
            self.u64(0);
            self.u64(0);
        } else {
            self.u32(0);
            self.u32(0);
        }
        self.u32(TRACK_ID);
        self.u32(0);
        if version == 1 {
            self.u64(duration);
        } else {
            self.u32(duration as u32);
        }
        self.bytes(&[0; 8]); // reserved
        self.u16(0); // layer
        self.u16(0); // alternate_group
        self.u16(0); // volume (video)
        self.u16(0); // reserved
        self.matrix();
        self.u32(config.width() << 16);
        self.u32(config.height() << 16);
        self.end(start);
    }

    /// `mdhd`, `hdlr` and the start of `minf` (`vmhd`, `dinf`): the caller
    /// writes `stbl` and ends the two boxes returned (minf, then mdia).
    pub fn begin_mdia(&mut self, timescale: u32, duration: u64) -> (usize, usize) {
        let mdia = self.begin(b"mdia");
        let version = Self::version_for(duration);
        let mdhd = self.begin_full(b"mdhd", version, 0);
        self.times(version, duration, Some(timescale));
        self.u16(0x55c4); // language "und"
        self.u16(0);
        self.end(mdhd);
        let hdlr = self.begin_full(b"hdlr", 0, 0);
        self.u32(0);
        self.bytes(b"vide");
        self.bytes(&[0; 12]);
        self.bytes(b"VideoHandler\0");
        self.end(hdlr);
        let minf = self.begin(b"minf");
        let vmhd = self.begin_full(b"vmhd", 0, 1);
        self.bytes(&[0; 8]); // graphicsmode, opcolor
        self.end(vmhd);
        let dinf = self.begin(b"dinf");
        let dref = self.begin_full(b"dref", 0, 0);
        self.u32(1);
        let url = self.begin_full(b"url ", 0, 1); // media in this file
        self.end(url);
        self.end(dref);
        self.end(dinf);
        (minf, mdia)
    }

    pub fn stsd(&mut self, config: &TrackConfig) {
        let stsd = self.begin_full(b"stsd", 0, 0);
        self.u32(1);
        config.write_sample_entry(self);
        self.end(stsd);
    }
}
