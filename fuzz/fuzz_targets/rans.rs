//! Fuzz target for the rANS codec (spec/FORMAT.md §5.5) on its own, without
//! the container around it, so that mutations reach every rule of the
//! stream instead of stopping at the section CRC.
//!
//! The first byte chooses the mode:
//! * even: bytes 1..5 are a decoded length (u32, at most 1 MiB) and the rest
//!   a stream. `rans::decode` must not panic, and when it accepts the
//!   stream it must return exactly that many bytes, and re-encoding them
//!   must decode back to the same bytes.
//! * odd: the rest is data to encode, with byte 1 choosing the parts (cut
//!   points and column counts) and byte 2 the lanes; decoding must give the
//!   data back, and the stream must fail cleanly when cut short or when its
//!   declared length is off by one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgq_format::rans::{self, Part, RansError};

const MAX_DECODED: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    match data.first() {
        Some(m) if m % 2 == 0 => decode_arbitrary(&data[1..]),
        Some(_) => round_trip(&data[1..]),
        None => {}
    }
});

fn decode_arbitrary(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let want =
        u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize % (MAX_DECODED + 1);
    let stream = &data[4..];
    if let Ok(out) = rans::decode(stream, want) {
        assert_eq!(out.len(), want, "accepted with the wrong length");
        if want > 0 {
            let part = [Part { len: want, cols: 0 }];
            let again = rans::encode(&out, &part, rans::lanes_for(want));
            assert_eq!(rans::decode(&again, want).expect("re-encoded"), out);
        }
    }
}

fn round_trip(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let (shape, lanes, body) = (data[0], data[1] as usize + 1, &data[2..]);
    // Up to four parts, cut at points the shape byte picks; a part may
    // claim a row length, which need not divide it.
    let mut parts = Vec::new();
    let mut at = 0;
    for k in 0..4u32 {
        let left = body.len() - at;
        if left == 0 {
            break;
        }
        let len = if k == 3 {
            left
        } else {
            (left * ((shape >> (2 * k)) & 3) as usize / 3)
                .max(1)
                .min(left)
        };
        parts.push(Part {
            len,
            cols: if shape & 0x80 != 0 {
                1 + (shape & 0x0F) as usize * 3
            } else {
                0
            },
        });
        at += len;
    }
    let stream = rans::encode(body, &parts, lanes);
    assert_eq!(rans::decode(&stream, body.len()).expect("own stream"), body);
    for cut in [1, 2, stream.len() / 2] {
        if cut <= stream.len() {
            assert!(rans::decode(&stream[..stream.len() - cut], body.len()).is_err());
        }
    }
    assert!(matches!(
        rans::decode(&stream, body.len() + 1),
        Err(RansError::Length(_))
    ));
}
