//! The rANS codec (codec 3, spec/FORMAT.md §5.5): static, interleaved,
//! range asymmetric numeral systems over the bytes of a section, with one
//! frequency table per segment of the section or, for a matrix of codes,
//! one table per class of columns.
//!
//! Codes are nearly independent draws from a per-tensor distribution (the
//! previous code, the code above and row classes are within 0.03% of the
//! order-0 entropy on real weights), so a static table per tensor coded
//! with exact arithmetic reaches the entropy, where brotli stays 0.5-1.7%
//! above it. The size of every symbol is known in advance (`-log2 p`),
//! which is also what a byte-budget allocator needs.
//!
//! State: u32 in `[2^16, 2^32)`, 16-bit words, frequencies out of `2^P`
//! with `P <= 16`. One decoding step consumes at most one word, so a
//! decoder vectorised over lanes (the Python reference) stays simple.

use crate::limits::MAX_RANS_TABLES;

/// The lower bound of a lane's state, and the state every lane starts
/// (and, decoded, ends) in.
pub const STATE_LOW: u32 = 1 << 16;
/// The frequency precision the writer uses: frequencies out of 2^16.
pub const WRITER_PROB_BITS: u32 = 16;
/// The bytes of the fixed part of a stream: `prob_bits` u8, `lanes` u16,
/// `table_count` u16, `segment_count` u32.
pub(crate) const FIXED_LEN: usize = 9;
const BITMAP_LEN: usize = 32;

/// How decoding failed: the two classes of spec/FORMAT.md §10 a rANS
/// stream can raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RansError {
    /// `codec_error`: the stream is malformed, ends early or late, or does
    /// not end in the initial states.
    Corrupt(String),
    /// `size_mismatch`: the segments do not add up to the decoded length.
    Length(String),
}

fn corrupt(detail: impl Into<String>) -> RansError {
    RansError::Corrupt(detail.into())
}

/// One frequency table: `freq[s]` (0 for an absent symbol) and the
/// cumulative `start[s]`, both out of `2^prob_bits`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    freq: [u32; 256],
    start: [u32; 256],
}

impl Table {
    fn from_freqs(freq: [u32; 256]) -> Table {
        let mut start = [0u32; 256];
        let mut acc = 0;
        for s in 0..256 {
            start[s] = acc;
            acc += freq[s];
        }
        Table { freq, start }
    }

    /// The slot-to-symbol map a decoder looks symbols up in.
    fn slots(&self, prob_bits: u32) -> Vec<u8> {
        let mut out = vec![0u8; 1 << prob_bits];
        for s in 0..256 {
            let (a, f) = (self.start[s] as usize, self.freq[s] as usize);
            out[a..a + f].fill(s as u8);
        }
        out
    }
}

/// One segment: `len` bytes whose byte `j` is coded with table
/// `map[j % map.len()]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    len: u64,
    map: Vec<u8>,
}

/// A parsed stream, validated up to its words.
struct Stream<'a> {
    prob_bits: u32,
    tables: Vec<Table>,
    segments: Vec<Segment>,
    states: Vec<u32>,
    words: &'a [u8],
}

/// Reads little-endian fields, failing as `codec_error` when the stream
/// ends inside one.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], RansError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| corrupt(format!("the rANS stream ends inside {what}")))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u16(&mut self, what: &str) -> Result<u16, RansError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, RansError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, RansError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Parses and validates everything before the words (§9 step 22, 1-9).
fn parse(stored: &[u8], decoded_len: u64) -> Result<Stream<'_>, RansError> {
    let mut b = Bytes {
        data: stored,
        pos: 0,
    };
    if stored.len() < FIXED_LEN {
        return Err(corrupt(format!(
            "the rANS stream is {} bytes, shorter than its {FIXED_LEN}-byte fixed fields",
            stored.len()
        )));
    }
    let prob_bits = b.take(1, "prob_bits")?[0] as u32;
    let lanes = b.u16("lanes")? as usize;
    let table_count = b.u16("table_count")? as usize;
    let segment_count = b.u32("segment_count")?;
    if !(1..=16).contains(&prob_bits) {
        return Err(corrupt(format!("prob_bits {prob_bits} is outside 1..=16")));
    }
    if lanes == 0 {
        return Err(corrupt("lanes is 0"));
    }
    if table_count == 0 || table_count > MAX_RANS_TABLES {
        return Err(corrupt(format!(
            "table_count {table_count} is outside 1..={MAX_RANS_TABLES}"
        )));
    }
    if segment_count == 0 {
        return Err(corrupt("segment_count is 0"));
    }
    let total = 1u32 << prob_bits;
    let mut tables = Vec::with_capacity(table_count);
    for t in 0..table_count {
        let bitmap = b.take(BITMAP_LEN, &format!("tables[{t}]"))?;
        let mut freq = [0u32; 256];
        let mut sum = 0u32;
        let mut used = 0;
        for s in 0..256 {
            if bitmap[s / 8] >> (s % 8) & 1 == 1 {
                let f = b.u16(&format!("tables[{t}]"))? as u32 + 1;
                freq[s] = f;
                sum += f;
                used += 1;
            }
        }
        if used == 0 {
            return Err(corrupt(format!("tables[{t}] has no symbol")));
        }
        if sum != total {
            return Err(corrupt(format!(
                "the frequencies of tables[{t}] sum to {sum}, not 2^{prob_bits} = {total}"
            )));
        }
        tables.push(Table::from_freqs(freq));
    }
    let mut segments = Vec::new();
    let mut covered = 0u64;
    let mut table_used = vec![false; table_count];
    for s in 0..segment_count {
        let what = format!("segments[{s}]");
        let len = b.u64(&what)?;
        let period = b.u32(&what)?;
        if len == 0 {
            return Err(corrupt(format!("{what} is empty")));
        }
        if period == 0 || period as u64 > len {
            return Err(corrupt(format!(
                "{what} has period {period}, outside 1..={len} (its length)"
            )));
        }
        let map = b.take(period as usize, &what)?;
        if let Some(&t) = map.iter().find(|&&t| t as usize >= table_count) {
            return Err(corrupt(format!(
                "{what} names table {t}, but there are {table_count}"
            )));
        }
        for &t in map {
            table_used[t as usize] = true;
        }
        covered = covered
            .checked_add(len)
            .filter(|&c| c <= decoded_len)
            .ok_or_else(|| {
                RansError::Length(format!(
                    "the segments cover more than the section's {decoded_len} decoded bytes"
                ))
            })?;
        segments.push(Segment {
            len,
            map: map.to_vec(),
        });
    }
    if covered != decoded_len {
        return Err(RansError::Length(format!(
            "the segments cover {covered} bytes, the section declares {decoded_len}"
        )));
    }
    if let Some(t) = table_used.iter().position(|&u| !u) {
        return Err(corrupt(format!("tables[{t}] is not used by any segment")));
    }
    let mut states = Vec::with_capacity(lanes.min(stored.len() / 4));
    for lane in 0..lanes {
        let x = b.u32("the lane states")?;
        if x < STATE_LOW {
            return Err(corrupt(format!(
                "the state of lane {lane} is {x}, below 2^16"
            )));
        }
        states.push(x);
    }
    let words = &stored[b.pos..];
    if words.len() % 2 != 0 {
        return Err(corrupt(format!(
            "the words are {} bytes, not a whole number of 16-bit words",
            words.len()
        )));
    }
    Ok(Stream {
        prob_bits,
        tables,
        segments,
        states,
        words,
    })
}

/// Decodes a rANS section's stored bytes into exactly `decoded_len` bytes.
///
/// Everything is validated before the output is allocated; the output is
/// `decoded_len` bytes, which the caller has bounded, and the working
/// memory is at most 256 slot maps of `2^prob_bits` bytes (16 MiB).
pub fn decode(stored: &[u8], decoded_len: usize) -> Result<Vec<u8>, RansError> {
    let stream = parse(stored, decoded_len as u64)?;
    let p = stream.prob_bits;
    let tables: Vec<Decoding> = stream
        .tables
        .iter()
        .map(|t| Decoding {
            table: t,
            slots: t.slots(p),
            prob_bits: p,
        })
        .collect();
    let mut states = stream.states;
    let lanes = states.len();
    let mut words = Words {
        data: stream.words,
        pos: 0,
    };
    let mut out = vec![0u8; decoded_len];
    let mut at = 0usize;
    for seg in &stream.segments {
        // len <= decoded_len (checked in parse), so it fits usize.
        let part = &mut out[at..at + seg.len as usize];
        let mut lane = at % lanes;
        if let [t] = seg.map[..] {
            // One table: walk the lanes as slices, no per-byte lookup of
            // the table and no per-byte wrap of the lane.
            let table = &tables[t as usize];
            let mut rest = &mut part[..];
            while !rest.is_empty() {
                let n = (lanes - lane).min(rest.len());
                let (now, later) = rest.split_at_mut(n);
                for (o, x) in now.iter_mut().zip(&mut states[lane..lane + n]) {
                    *o = table.step(x, &mut words)?;
                }
                rest = later;
                lane = 0;
            }
        } else {
            for (j, o) in part.iter_mut().enumerate() {
                let table = &tables[seg.map[j % seg.map.len()] as usize];
                *o = table.step(&mut states[lane], &mut words)?;
                lane += 1;
                if lane == lanes {
                    lane = 0;
                }
            }
        }
        at += seg.len as usize;
    }
    let left = (words.data.len() - words.pos) / 2;
    if left != 0 {
        return Err(corrupt(format!(
            "{left} words follow the last decoded byte"
        )));
    }
    if let Some(lane) = states.iter().position(|&x| x != STATE_LOW) {
        return Err(corrupt(format!(
            "lane {lane} ends in state {}, not the initial 2^16",
            states[lane]
        )));
    }
    Ok(out)
}

/// The words of a stream, read in order.
struct Words<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Words<'_> {
    #[inline]
    fn next(&mut self) -> Result<u32, RansError> {
        match self.data.get(self.pos..self.pos + 2) {
            Some(w) => {
                self.pos += 2;
                Ok(u16::from_le_bytes([w[0], w[1]]) as u32)
            }
            None => Err(corrupt(format!(
                "the words end early, after {} words",
                self.pos / 2
            ))),
        }
    }
}

/// A table ready to decode: its slot-to-symbol map beside it.
struct Decoding<'a> {
    table: &'a Table,
    slots: Vec<u8>,
    prob_bits: u32,
}

impl Decoding<'_> {
    /// Decodes one byte from the state `x`, reading a word if the state
    /// falls below 2^16.
    #[inline]
    fn step(&self, x: &mut u32, words: &mut Words) -> Result<u8, RansError> {
        let p = self.prob_bits;
        let slot = *x & ((1u32 << p) - 1);
        let s = self.slots[slot as usize];
        let (f, c) = (self.table.freq[s as usize], self.table.start[s as usize]);
        // slot - start < freq, and freq * ((x >> p) + 1) <= 2^32: no overflow.
        let mut y = f * (*x >> p) + (slot - c);
        if y < STATE_LOW {
            y = y << 16 | words.next()?;
        }
        *x = y;
        Ok(s)
    }
}

/// What the writer knows about a part of a section: its length and, for a
/// matrix of one-byte codes, its row length (so that columns can have
/// tables of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub len: usize,
    /// The row length of a matrix of codes; 0 for anything else.
    pub cols: usize,
}

/// Encodes `data`, split into `parts` (their lengths sum to `data.len()`,
/// which is at least 1), with `lanes` interleaved states.
///
/// The model is chosen by its coded size (ideal bits, plus the tables,
/// maps and segment headers): a large matrix is cut into runs of rows, each
/// with one table or its columns in classes with a table each; other parts
/// and single-table runs get a table of their own or share one pooled
/// table (spec/FORMAT.md §11).
pub fn encode(data: &[u8], parts: &[Part], lanes: usize) -> Vec<u8> {
    debug_assert_eq!(parts.iter().map(|p| p.len).sum::<usize>(), data.len());
    let model = crate::rans_model::choose(data, parts, WRITER_PROB_BITS);
    encode_with(data, &model, lanes)
}

/// The model of a stream: its tables (frequencies summing to 2^prob_bits)
/// and its segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub prob_bits: u32,
    pub freqs: Vec<[u32; 256]>,
    /// `(length, table map)` per segment.
    pub segments: Vec<(u64, Vec<u8>)>,
}

/// Encodes `data` under `model`, which must cover it (every byte's symbol
/// with a non-zero frequency in its table).
pub fn encode_with(data: &[u8], model: &Model, lanes: usize) -> Vec<u8> {
    let p = model.prob_bits;
    let lanes = lanes.clamp(1, u16::MAX as usize);
    let tables: Vec<Table> = model.freqs.iter().map(|&f| Table::from_freqs(f)).collect();
    // The table of every byte, from the segment maps.
    let mut table_of: Vec<u8> = Vec::with_capacity(data.len());
    for (len, map) in &model.segments {
        table_of.extend(map.iter().cycle().take(*len as usize));
    }
    let mut states = vec![STATE_LOW; lanes];
    let mut words: Vec<u16> = Vec::with_capacity(data.len() / 3 + 16);
    // Backwards, so that the decoder reads forwards.
    for i in (0..data.len()).rev() {
        let lane = i % lanes;
        let table = &tables[table_of[i] as usize];
        let s = data[i] as usize;
        let (f, c) = (table.freq[s], table.start[s]);
        debug_assert!(f > 0, "symbol {s} has no frequency");
        let mut x = states[lane];
        // x_max = ((STATE_LOW >> p) << 16) * f, at most 2^32.
        let x_max = ((STATE_LOW as u64) << (16 - p)) * f as u64;
        if x as u64 >= x_max {
            words.push(x as u16);
            x >>= 16;
        }
        x = ((x / f) << p) + x % f + c;
        states[lane] = x;
    }
    let mut bytes = Vec::with_capacity(words.len() * 2);
    for w in words.iter().rev() {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    RawStream {
        prob_bits: p as u8,
        lanes: lanes as u16,
        tables: model
            .freqs
            .iter()
            .map(|f| {
                (0..=255u8)
                    .zip(f.iter().copied())
                    .filter(|&(_, q)| q > 0)
                    .collect()
            })
            .collect(),
        segments: model.segments.clone(),
        states,
        words: bytes,
    }
    .to_bytes()
}

/// The bytes of a stream with these fields, unchecked (see [`RawStream`]):
/// tables as (symbol, frequency) lists, segments as (length, map).
pub fn raw_stream(
    prob_bits: u8,
    lanes: u16,
    tables: &[&[(u8, u32)]],
    segments: &[(u64, &[u8])],
    states: &[u32],
    words: &[u8],
) -> Vec<u8> {
    RawStream {
        prob_bits,
        lanes,
        tables: tables.iter().map(|t| t.to_vec()).collect(),
        segments: segments.iter().map(|(l, m)| (*l, m.to_vec())).collect(),
        states: states.to_vec(),
        words: words.to_vec(),
    }
    .to_bytes()
}

/// A rANS stream as its fields, written as they are, unchecked: the
/// writer's serialisation, and a way to build the invalid streams of the
/// negative vectors and tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawStream {
    pub prob_bits: u8,
    pub lanes: u16,
    /// Per table, its (symbol, frequency) pairs in increasing symbol
    /// order; a frequency is stored as `f - 1` in a u16 (wrapping).
    pub tables: Vec<Vec<(u8, u32)>>,
    /// Per segment, its length and its map (the period is the map's
    /// length).
    pub segments: Vec<(u64, Vec<u8>)>,
    pub states: Vec<u32>,
    /// The words, already in reading order, as bytes.
    pub words: Vec<u8>,
}

impl RawStream {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.words.len() + 1024);
        out.push(self.prob_bits);
        out.extend_from_slice(&self.lanes.to_le_bytes());
        out.extend_from_slice(&(self.tables.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for table in &self.tables {
            let mut bitmap = [0u8; BITMAP_LEN];
            for &(s, _) in table {
                bitmap[s as usize / 8] |= 1 << (s % 8);
            }
            out.extend_from_slice(&bitmap);
            for &(_, f) in table {
                out.extend_from_slice(&(f.wrapping_sub(1) as u16).to_le_bytes());
            }
        }
        for (len, map) in &self.segments {
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(map.len() as u32).to_le_bytes());
            out.extend_from_slice(map);
        }
        for x in &self.states {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.words);
        out
    }
}

/// The writer's lane count for a section of `len` bytes: one lane per
/// 16,384 bytes, at most 1,024. A decoder vectorised over lanes (the Python
/// reference) then takes at most 16,384 steps for a section up to 16 MiB
/// and one step per 1,024 bytes above that; every lane costs 4 bytes of
/// state (0.02-0.06% of a section of codes up to 16 MiB, a fixed 4 KiB
/// above). Any section above 512 KiB has 32 lanes or more, enough
/// independent states for a scalar decoder's pipelines.
pub fn lanes_for(len: usize) -> usize {
    len.div_ceil(16_384).clamp(1, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8], parts: &[Part], lanes: usize) -> Vec<u8> {
        let stored = encode(data, parts, lanes);
        assert_eq!(decode(&stored, data.len()).unwrap(), data);
        stored
    }

    fn one(len: usize) -> Vec<Part> {
        vec![Part { len, cols: 0 }]
    }

    #[test]
    fn edges_round_trip() {
        // One symbol only: no words at all.
        let stored = roundtrip(&[7u8; 1000], &one(1000), 32);
        assert_eq!(stored.len(), FIXED_LEN + 32 + 2 + 12 + 1 + 32 * 4);
        // Every byte value, lanes that do not divide the length, more lanes
        // than bytes (lanes that code nothing), a single byte.
        let all: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        for lanes in [1, 3, 32, 2000] {
            roundtrip(&all, &one(all.len()), lanes);
        }
        roundtrip(&[200], &one(1), 4);
    }

    #[test]
    fn codes_reach_their_entropy() {
        // Skewed, code-like bytes: the stream is within 0.5% of the
        // order-0 entropy plus its fixed costs.
        let mut x = 12345u64;
        let data: Vec<u8> = (0..200_000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (x >> 33) as u32 % 1000;
                match u {
                    0..=399 => 0u8,
                    400..=599 => 1,
                    600..=799 => 255,
                    800..=899 => 2,
                    900..=989 => 254,
                    _ => (u % 7) as u8 + 3,
                }
            })
            .collect();
        let stored = roundtrip(&data, &one(data.len()), 64);
        let mut count = [0f64; 256];
        data.iter().for_each(|&b| count[b as usize] += 1.0);
        let n = data.len() as f64;
        let entropy: f64 = count
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -c * (c / n).log2() / 8.0)
            .sum();
        assert!(
            (stored.len() as f64) < entropy * 1.005 + 600.0,
            "{} vs {entropy}",
            stored.len()
        );
    }

    #[test]
    fn parts_with_different_statistics_get_their_own_tables() {
        let a: Vec<u8> = (0..50_000).map(|i| (i % 3) as u8).collect();
        let b: Vec<u8> = (0..50_000).map(|i| 100 + (i % 5) as u8).collect();
        let data = [a, b].concat();
        let parts = [
            Part {
                len: 50_000,
                cols: 0,
            },
            Part {
                len: 50_000,
                cols: 0,
            },
        ];
        let split = roundtrip(&data, &parts, 32);
        let pooled = roundtrip(&data, &one(data.len()), 32);
        assert!(
            split.len() < pooled.len(),
            "{} vs {}",
            split.len(),
            pooled.len()
        );
    }

    use super::raw_stream as build;

    #[test]
    fn the_spec_example_decodes() {
        // spec/FORMAT.md §5.5, the example: 60 bytes, `05 05 05`.
        let mut stream = vec![4, 1, 0, 1, 0, 1, 0, 0, 0, 0x20];
        stream.extend([0u8; 31]);
        stream.extend([0x0F, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(stream.len(), 60);
        assert_eq!(decode(&stream, 3).unwrap(), vec![5, 5, 5]);
    }

    #[test]
    fn every_rule_has_its_class() {
        let ok = build(4, 1, &[&[(5, 16)]], &[(3, &[0])], &[STATE_LOW], &[]);
        assert_eq!(decode(&ok, 3).unwrap(), vec![5, 5, 5]);
        let corrupt_cases: Vec<(Vec<u8>, &str)> = vec![
            (ok[..8].to_vec(), "shorter than"),
            (
                build(0, 1, &[&[(5, 1)]], &[(3, &[0])], &[STATE_LOW], &[]),
                "prob_bits",
            ),
            (
                build(17, 1, &[&[(5, 1)]], &[(3, &[0])], &[STATE_LOW], &[]),
                "prob_bits",
            ),
            (
                build(4, 0, &[&[(5, 16)]], &[(3, &[0])], &[], &[]),
                "lanes is 0",
            ),
            (
                build(4, 1, &[], &[(3, &[0])], &[STATE_LOW], &[]),
                "table_count",
            ),
            (
                build(4, 1, &[&[(5, 16)]], &[], &[STATE_LOW], &[]),
                "segment_count",
            ),
            (
                build(4, 1, &[&[]], &[(3, &[0])], &[STATE_LOW], &[]),
                "no symbol",
            ),
            (
                build(4, 1, &[&[(5, 15)]], &[(3, &[0])], &[STATE_LOW], &[]),
                "sum to 15",
            ),
            (
                build(4, 1, &[&[(5, 16)]], &[(0, &[0])], &[STATE_LOW], &[]),
                "empty",
            ),
            (
                build(
                    4,
                    1,
                    &[&[(5, 16)]],
                    &[(3, &[0, 0, 0, 0])],
                    &[STATE_LOW],
                    &[],
                ),
                "period",
            ),
            (
                build(4, 1, &[&[(5, 16)]], &[(3, &[1])], &[STATE_LOW], &[]),
                "names table 1",
            ),
            (
                build(
                    4,
                    1,
                    &[&[(5, 16)], &[(6, 16)]],
                    &[(3, &[0])],
                    &[STATE_LOW],
                    &[],
                ),
                "not used",
            ),
            (
                build(4, 1, &[&[(5, 16)]], &[(3, &[0])], &[STATE_LOW - 1], &[]),
                "below 2^16",
            ),
            (
                build(4, 2, &[&[(5, 16)]], &[(3, &[0])], &[STATE_LOW], &[]),
                "lane states",
            ),
            (
                build(4, 1, &[&[(5, 16)]], &[(3, &[0])], &[STATE_LOW], &[0]),
                "whole number",
            ),
            (
                build(4, 1, &[&[(5, 16)]], &[(3, &[0])], &[STATE_LOW], &[0, 0]),
                "words follow",
            ),
            (
                build(4, 1, &[&[(5, 16)]], &[(3, &[0])], &[STATE_LOW + 1], &[]),
                "ends in state",
            ),
            // Two symbols of 8/16: each step halves the state, so the words
            // run out.
            (
                build(4, 1, &[&[(5, 8), (6, 8)]], &[(3, &[0])], &[STATE_LOW], &[]),
                "end early",
            ),
            // The same with a map of period 3 (the path of column classes).
            (
                build(
                    4,
                    1,
                    &[&[(5, 8), (6, 8)]],
                    &[(3, &[0, 0, 0])],
                    &[STATE_LOW],
                    &[],
                ),
                "end early",
            ),
        ];
        for (stream, phrase) in corrupt_cases {
            match decode(&stream, 3) {
                Err(RansError::Corrupt(d)) => assert!(d.contains(phrase), "{d:?} lacks {phrase:?}"),
                other => panic!("{phrase}: {other:?}"),
            }
        }
        for want in [2, 4] {
            assert!(
                matches!(decode(&ok, want), Err(RansError::Length(_))),
                "{want}"
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let good = roundtrip(
            &(0..3000u32).map(|i| (i * i % 11) as u8).collect::<Vec<_>>(),
            &one(3000),
            7,
        );
        let mut x = 99u64;
        for _ in 0..3000 {
            let mut s = good.clone();
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let i = (x >> 20) as usize % s.len();
            s[i] ^= 1 << ((x >> 8) % 8);
            let cut = (x >> 40) as usize % (s.len() + 1);
            let _ = decode(&s, 3000);
            let _ = decode(&s[..cut], 3000);
        }
    }
}
