//! The PS demuxer on arbitrary bytes. The first byte picks the chunk size,
//! so the fuzzer also explores where input is cut; every unit that comes out
//! must be counted, and nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xueliang_gb28181::media::{Counter, PsDemuxer};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first) * 7 + 1;
    let mut demux = PsDemuxer::default();
    let mut units = 0u64;
    for (i, piece) in rest.chunks(chunk).enumerate() {
        demux.push(piece);
        if i % 5 == 4 {
            demux.note_loss(1);
        }
        while demux.pop().is_some() {
            units += 1;
        }
    }
    demux.end_of_stream();
    while demux.pop().is_some() {
        units += 1;
    }
    assert_eq!(demux.counters().get(Counter::Units), units);
});
