//! A small, fast gzip encoder for batch bodies.
//!
//! Batches are JSON whose events repeat most of their bytes (the context,
//! the property names), so a greedy LZ77 pass that jumps over long
//! matches does nearly all the work, and dynamic-Huffman blocks (one per
//! 4K tokens, about 50 KB of batch JSON) code what is left (message ids,
//! timestamps) in about 4 bits a character. On
//! such input it gets within ~10% of zlib's default level, at a fraction
//! of the time and of the code: the browser's `CompressionStream` costs
//! ~20 µs of main thread per event, this ~2 µs, in a few KB of wasm.
//!
//! RFC 1951 (deflate) in an RFC 1952 (gzip) wrapper.

/// How far back matches are looked for: all deflate allows. Half of it
/// made a 500-event batch 2.5% larger for 40 KB less working memory.
const WINDOW: usize = 32 * 1024;
/// Shortest match worth coding (deflate's minimum is 3).
const MIN_MATCH: usize = 4;
/// Longest match deflate can code.
const MAX_MATCH: usize = 258;
/// Hash table size (bits) for inputs of a window or more: positions of
/// 4-byte sequences. Smaller inputs get tables in proportion; 15 bits
/// compressed a 500-event batch 0.02% better for 96 KB more.
const HASH_BITS: u32 = 13;
/// Tokens coded per deflate block: the most the encoder holds at once.
const BLOCK_TOKENS: usize = 4 * 1024;
/// Candidates tried per position, most recent first.
const CHAIN: usize = 4;
/// A match this long is taken without looking further.
const GOOD_ENOUGH: usize = 32;

/// Base length and extra bits of length codes 257..=285.
const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Base distance and extra bits of distance codes 0..=29.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order code length code lengths are stored in.
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// `data` gzip-compressed (one member, no file name, OS "unknown").
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = Gzip::new(data.len());
    z.write(data);
    z.finish()
}

/// A gzip member written a piece at a time: a batch is compressed as its
/// JSON is made, never held whole. The working memory is a window of the
/// input (twice [`WINDOW`] at most, less for a smaller input), hash
/// tables in proportion to it, and tokens coded a block at a time.
/// WebAssembly memory never shrinks, so the encoder's peak stays in the
/// page for good.
pub struct Gzip {
    bits: BitWriter,
    lz: Lz77,
    /// Input not yet dropped: the window behind the next position, and
    /// what is ahead of it. `buf[0]` is input byte `base`.
    buf: Vec<u8>,
    base: usize,
    tokens: Vec<Token>,
    crc: Crc32,
    crc_state: u32,
    len: usize,
}

/// The encoder's entry points, in a module of this name so that the web
/// build's split (scripts/split-wasm.mjs) ships the encoder in its second
/// wasm module: batches are gzipped only once that module is there.
mod lazy {
    use super::*;

    impl Gzip {
        /// An encoder for about `expected` bytes of input (it sizes its tables
        /// to it; more is fine).
        #[inline(never)]
        pub fn new(expected: usize) -> Gzip {
            let mut out = Vec::with_capacity(expected / 8 + 64);
            out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
            Gzip {
                bits: BitWriter { out, acc: 0, n: 0 },
                lz: Lz77::new(expected),
                buf: Vec::with_capacity(expected.min(2 * WINDOW) + MAX_MATCH),
                base: 0,
                tokens: Vec::with_capacity(BLOCK_TOKENS.min(expected / 8 + 16)),
                crc: Crc32::new(),
                crc_state: !0,
                len: 0,
            }
        }

        /// Compresses `data`, which follows what was written before.
        #[inline(never)]
        pub fn write(&mut self, mut data: &[u8]) {
            self.crc_state = self.crc.update(self.crc_state, data);
            self.len += data.len();
            while !data.is_empty() {
                let room = (2 * WINDOW + MAX_MATCH)
                    .saturating_sub(self.buf.len())
                    .max(1);
                let (now, later) = data.split_at(room.min(data.len()));
                self.buf.extend_from_slice(now);
                data = later;
                if self.buf.len() >= 2 * WINDOW + MAX_MATCH {
                    // All but a longest match's lookahead is coded; then the
                    // window behind the next position is all that is kept.
                    self.code(self.base + self.buf.len() - MAX_MATCH);
                    let keep_from = self.lz.pos.saturating_sub(WINDOW).max(self.base);
                    self.buf.drain(..keep_from - self.base);
                    self.base = keep_from;
                }
            }
        }

        /// Codes the input up to position `end`, a block at a time.
        fn code(&mut self, end: usize) {
            loop {
                let ended = self
                    .lz
                    .fill(&self.buf, self.base, end, &mut self.tokens, BLOCK_TOKENS);
                if ended {
                    return;
                }
                write_block(&mut self.bits, &self.tokens, false);
                self.tokens.clear();
            }
        }

        /// The member: its last block, CRC and length.
        #[inline(never)]
        pub fn finish(mut self) -> Vec<u8> {
            self.code(self.base + self.buf.len());
            write_block(&mut self.bits, &self.tokens, true);
            let mut out = self.bits.finish();
            out.extend_from_slice(&(!self.crc_state).to_le_bytes());
            out.extend_from_slice(&(self.len as u32).to_le_bytes());
            out
        }
    }
}

/// CRC-32 (IEEE, reflected), as gzip's trailer needs.
pub fn crc32(data: &[u8]) -> u32 {
    !Crc32::new().update(!0, data)
}

/// CRC-32's tables, slicing by 8 (8 KB, built in a few µs).
struct Crc32 {
    t: Vec<[u32; 256]>,
}

impl Crc32 {
    fn new() -> Crc32 {
        let mut t = vec![[0u32; 256]; 8];
        if let Some(first) = t.first_mut() {
            for (n, slot) in (0u32..).zip(first.iter_mut()) {
                let mut c = n;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
                *slot = c;
            }
        }
        for k in 1..8 {
            for n in 0..256 {
                let prev = t
                    .get(k - 1)
                    .and_then(|row| row.get(n))
                    .copied()
                    .unwrap_or(0);
                let next = t
                    .first()
                    .and_then(|row| row.get((prev & 0xff) as usize))
                    .copied()
                    .unwrap_or(0)
                    ^ (prev >> 8);
                if let Some(slot) = t.get_mut(k).and_then(|row| row.get_mut(n)) {
                    *slot = next;
                }
            }
        }
        Crc32 { t }
    }

    /// `crc` (as kept between calls: not inverted) after `data`.
    fn update(&self, mut crc: u32, data: &[u8]) -> u32 {
        let at = |k: usize, i: u32| {
            self.t
                .get(k)
                .and_then(|row| row.get((i & 0xff) as usize))
                .copied()
                .unwrap_or(0)
        };
        let chunks = data.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            let Ok([b0, b1, b2, b3, b4, b5, b6, b7]) = <[u8; 8]>::try_from(c) else {
                continue;
            };
            let lo = crc ^ u32::from_le_bytes([b0, b1, b2, b3]);
            let hi = u32::from_le_bytes([b4, b5, b6, b7]);
            crc = at(7, lo)
                ^ at(6, lo >> 8)
                ^ at(5, lo >> 16)
                ^ at(4, lo >> 24)
                ^ at(3, hi)
                ^ at(2, hi >> 8)
                ^ at(1, hi >> 16)
                ^ at(0, hi >> 24);
        }
        for &b in rest {
            crc = at(0, crc ^ u32::from(b)) ^ (crc >> 8);
        }
        crc
    }
}

/// An LZ77 token: a literal byte, or a match of `len` bytes `dist` back.
#[derive(Clone, Copy)]
enum Token {
    Literal(u8),
    Match { len: u16, dist: u16 },
}

/// Hash of the 4 bytes at `pos`, in `bits` bits.
fn hash4(data: &[u8], pos: usize, bits: u32) -> Option<usize> {
    let w: [u8; 4] = data.get(pos..pos + 4)?.try_into().ok()?;
    let v = u32::from_le_bytes(w);
    Some((v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize)
}

/// Length of the common prefix of `data[a..]` and `data[b..]`, at most
/// `MAX_MATCH`.
fn common(data: &[u8], a: usize, b: usize) -> usize {
    match (data.get(a..), data.get(b..)) {
        (Some(x), Some(y)) => x
            .iter()
            .zip(y)
            .take(MAX_MATCH)
            .take_while(|(p, q)| p == q)
            .count(),
        _ => 0,
    }
}

/// Greedy LZ77 with short hash chains, over input that arrives in
/// pieces (see [`Gzip`]): positions are of the whole input, the bytes a
/// window the caller keeps. Every position is entered in the hash table
/// (matches inside a long match are what the next event repeats), but only
/// match starts are searched.
struct Lz77 {
    /// Most recent position of each hash.
    head: Vec<u32>,
    /// Previous position with the same hash, by position modulo its length.
    prev: Vec<u32>,
    bits: u32,
    /// The next position to code.
    pos: usize,
}

impl Lz77 {
    fn new(expected: usize) -> Lz77 {
        // Positions past the input never enter the chains, so a chain
        // table of the input's size (a power of two, at most the window)
        // loses no match; the hash table shrinks along with it.
        let span = expected.next_power_of_two().clamp(256, WINDOW);
        let bits = span.trailing_zeros().min(HASH_BITS);
        Lz77 {
            head: vec![u32::MAX; 1 << bits],
            prev: vec![u32::MAX; span],
            bits,
            pos: 0,
        }
    }

    /// `data` holds the input from position `base` on.
    fn insert(&mut self, data: &[u8], base: usize, pos: usize) {
        if let Some(h) = hash4(data, pos - base, self.bits) {
            let span = self.prev.len();
            if let (Some(slot), Some(link)) = (self.head.get_mut(h), self.prev.get_mut(pos % span))
            {
                *link = *slot;
                *slot = pos as u32;
            }
        }
    }

    /// The longest match (length, distance) at the current position,
    /// within the input up to `end`.
    fn longest_match(&self, data: &[u8], base: usize, end: usize) -> (usize, usize) {
        let pos = self.pos;
        let mut best = (0usize, 0usize);
        let Some(h) = hash4(data, pos - base, self.bits) else {
            return best;
        };
        let ahead = data.get(..end - base).unwrap_or(data);
        let mut candidate = self.head.get(h).copied().unwrap_or(u32::MAX);
        for _ in 0..CHAIN {
            let c = candidate as usize;
            if candidate == u32::MAX || c >= pos || pos - c > WINDOW || c < base {
                break;
            }
            let len = common(ahead, c - base, pos - base);
            if len > best.0 {
                best = (len, pos - c);
                if len >= GOOD_ENOUGH {
                    break;
                }
            }
            let next = self
                .prev
                .get(c % self.prev.len())
                .copied()
                .unwrap_or(u32::MAX);
            // Chains only go back in time; a newer entry means this
            // slot was reused for a position out of the window.
            if next != u32::MAX && next as usize >= c {
                break;
            }
            candidate = next;
        }
        best
    }

    /// Appends tokens for the input up to `end` (`data` holding it from
    /// `base`) until `tokens` holds `limit`; true when `end` was reached.
    fn fill(
        &mut self,
        data: &[u8],
        base: usize,
        end: usize,
        tokens: &mut Vec<Token>,
        limit: usize,
    ) -> bool {
        while tokens.len() < limit {
            if self.pos >= end {
                return true;
            }
            let Some(&byte) = data.get(self.pos - base) else {
                return true;
            };
            let (len, dist) = self.longest_match(data, base, end);
            if len >= MIN_MATCH {
                tokens.push(Token::Match {
                    len: len as u16,
                    dist: dist as u16,
                });
                for p in (self.pos..self.pos + len).take(16) {
                    self.insert(data, base, p);
                }
                self.pos += len;
            } else {
                tokens.push(Token::Literal(byte));
                self.insert(data, base, self.pos);
                self.pos += 1;
            }
        }
        self.pos >= end
    }
}

/// Index of the largest base not above `value` (bases ascend).
fn code_of(bases: &[u16], value: u16) -> usize {
    bases.iter().rposition(|&b| b <= value).unwrap_or(0)
}

/// Length code index (0..=28) of every match length, by table.
fn length_codes() -> Vec<u8> {
    (0..=MAX_MATCH as u16)
        .map(|len| code_of(&LEN_BASE, len) as u8)
        .collect()
}

/// Distance code (0..=29) of a distance (1..=32768): two codes per power
/// of two past 4.
fn dist_code(dist: u16) -> usize {
    let x = u32::from(dist.max(1) - 1);
    if x < 4 {
        x as usize
    } else {
        let high = 31 - x.leading_zeros();
        (2 * high + ((x >> (high - 1)) & 1)) as usize
    }
}

/// Bits out, least significant first, as deflate packs them.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code (already bit-reversed, see [`canonical_codes`]).
    fn code(&mut self, code: u16, len: u8) {
        self.bits(u32::from(code), u32::from(len));
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Code lengths (at most `limit` bits) of a Huffman code for `freqs`.
/// Trees get at least two symbols, so every code is complete, as
/// inflaters require.
fn code_lengths(freqs: &[u32], limit: u8) -> Vec<u8> {
    let mut f: Vec<u32> = freqs.to_vec();
    let used = f.iter().filter(|&&x| x > 0).count();
    for slot in f
        .iter_mut()
        .filter(|x| **x == 0)
        .take(2usize.saturating_sub(used))
    {
        *slot = 1;
    }
    loop {
        let lengths = huffman_lengths(&f);
        if lengths.iter().all(|&l| l <= limit) {
            return lengths;
        }
        // Too deep: flatten the distribution and build again.
        for x in f.iter_mut().filter(|x| **x > 0) {
            *x = (*x >> 1) | 1;
        }
    }
}

/// Unlimited Huffman code lengths (two-queue construction).
fn huffman_lengths(freqs: &[u32]) -> Vec<u8> {
    let mut leaves: Vec<(u32, usize)> = (0..)
        .zip(freqs)
        .filter(|(_, &f)| f > 0)
        .map(|(i, &f)| (f, i))
        .collect();
    crate::sort::sort_by_key(&mut leaves, |l| l.0);
    let n = leaves.len();
    // Nodes 0..n are leaves (ascending weight), n.. internal, created in
    // ascending weight too; parent[i] links each to its parent.
    let mut weight: Vec<u64> = leaves.iter().map(|l| u64::from(l.0)).collect();
    let mut parent = vec![usize::MAX; n];
    let (mut next_leaf, mut next_node) = (0usize, n);
    let pick = |weight: &Vec<u64>, next_leaf: &mut usize, next_node: &mut usize| {
        let leaf = weight.get(*next_leaf).filter(|_| *next_leaf < n).copied();
        let node = weight.get(*next_node).copied();
        match (leaf, node) {
            (Some(l), Some(m)) if m < l => {
                *next_node += 1;
                *next_node - 1
            }
            (Some(_), _) => {
                *next_leaf += 1;
                *next_leaf - 1
            }
            _ => {
                *next_node += 1;
                *next_node - 1
            }
        }
    };
    while weight.len() + 1 < 2 * n {
        let a = pick(&weight, &mut next_leaf, &mut next_node);
        let b = pick(&weight, &mut next_leaf, &mut next_node);
        let sum = weight.get(a).copied().unwrap_or(0) + weight.get(b).copied().unwrap_or(0);
        let id = weight.len();
        weight.push(sum);
        parent.push(usize::MAX);
        for child in [a, b] {
            if let Some(p) = parent.get_mut(child) {
                *p = id;
            }
        }
    }
    // Depths, from the root (the last node) down.
    let mut depth = vec![0u8; parent.len()];
    for i in (0..parent.len()).rev() {
        let d = parent
            .get(i)
            .and_then(|&p| depth.get(p))
            .map_or(0, |&d| d.saturating_add(1));
        if let Some(slot) = depth.get_mut(i) {
            *slot = d;
        }
    }
    let mut lengths = vec![0u8; freqs.len()];
    for (node, &(_, symbol)) in leaves.iter().enumerate() {
        if let (Some(slot), Some(&d)) = (lengths.get_mut(symbol), depth.get(node)) {
            *slot = d.max(1);
        }
    }
    lengths
}

/// Canonical codes for `lengths` (RFC 1951, 3.2.2), bit-reversed within
/// their length: deflate sends Huffman codes most significant bit first
/// into a least-significant-first stream.
fn canonical_codes(lengths: &[u8]) -> Vec<u16> {
    let mut count = [0u16; 16];
    for &l in lengths {
        if let Some(c) = count.get_mut(usize::from(l)) {
            *c += 1;
        }
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for (bits, slot) in next.iter_mut().enumerate().skip(1) {
        code = (code + count.get(bits - 1).copied().unwrap_or(0)) << 1;
        *slot = code;
    }
    lengths
        .iter()
        .map(|&l| match next.get_mut(usize::from(l)) {
            Some(n) if l > 0 => {
                let c = *n;
                *n += 1;
                c.reverse_bits() >> (16 - u32::from(l))
            }
            _ => 0,
        })
        .collect()
}

/// Run-length codes of a code length sequence: (symbol, extra value).
fn rle(lengths: &[u8]) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&l) = lengths.get(i) {
        let run = lengths
            .get(i..)
            .map_or(1, |rest| rest.iter().take_while(|&&x| x == l).count());
        if l == 0 && run >= 11 {
            let r = run.min(138);
            out.push((18, (r - 11) as u8));
            i += r;
        } else if l == 0 && run >= 3 {
            out.push((17, (run - 3) as u8));
            i += run;
        } else if l != 0 && run >= 4 {
            out.push((l, 0));
            let r = (run - 1).min(6);
            out.push((16, (r - 3) as u8));
            i += 1 + r;
        } else {
            out.push((l, 0));
            i += 1;
        }
    }
    out
}

/// One block with dynamic Huffman codes (the last one when `last`).
fn write_block(bits: &mut BitWriter, tokens: &[Token], last: bool) {
    let len_codes = length_codes();
    let len_code = |len: u16| usize::from(len_codes.get(usize::from(len)).copied().unwrap_or(0));
    let mut lit_freq = [0u32; 286];
    let mut dist_freq = [0u32; 30];
    for t in tokens {
        let (lit, dist) = match *t {
            Token::Literal(b) => (usize::from(b), None),
            Token::Match { len, dist } => (257 + len_code(len), Some(dist_code(dist))),
        };
        if let Some(f) = lit_freq.get_mut(lit) {
            *f += 1;
        }
        if let Some(f) = dist.and_then(|d| dist_freq.get_mut(d)) {
            *f += 1;
        }
    }
    lit_freq[256] = 1;
    let lit_len = code_lengths(&lit_freq, 15);
    let dist_len = code_lengths(&dist_freq, 15);
    let hlit = lit_len
        .iter()
        .rposition(|&l| l > 0)
        .map_or(257, |i| (i + 1).max(257));
    let hdist = dist_len.iter().rposition(|&l| l > 0).map_or(1, |i| i + 1);
    let mut all: Vec<u8> = lit_len.get(..hlit).unwrap_or(&[]).to_vec();
    all.extend_from_slice(dist_len.get(..hdist).unwrap_or(&[]));
    let runs = rle(&all);
    let mut cl_freq = [0u32; 19];
    for &(sym, _) in &runs {
        if let Some(f) = cl_freq.get_mut(usize::from(sym)) {
            *f += 1;
        }
    }
    let cl_len = code_lengths(&cl_freq, 7);
    let cl_code = canonical_codes(&cl_len);
    let hclen = CL_ORDER
        .iter()
        .rposition(|&s| cl_len.get(s).is_some_and(|&l| l > 0))
        .map_or(4, |i| (i + 1).max(4));

    bits.bits(u32::from(last), 1); // final block
    bits.bits(2, 2); // dynamic Huffman
    bits.bits((hlit - 257) as u32, 5);
    bits.bits((hdist - 1) as u32, 5);
    bits.bits((hclen - 4) as u32, 4);
    for &s in CL_ORDER.iter().take(hclen) {
        bits.bits(u32::from(cl_len.get(s).copied().unwrap_or(0)), 3);
    }
    for &(sym, extra) in &runs {
        let s = usize::from(sym);
        bits.code(
            cl_code.get(s).copied().unwrap_or(0),
            cl_len.get(s).copied().unwrap_or(0),
        );
        match sym {
            16 => bits.bits(u32::from(extra), 2),
            17 => bits.bits(u32::from(extra), 3),
            18 => bits.bits(u32::from(extra), 7),
            _ => {}
        }
    }

    let lit_code = canonical_codes(&lit_len);
    let dist_codes = canonical_codes(&dist_len);
    let lit = |bits: &mut BitWriter, s: usize| {
        bits.code(
            lit_code.get(s).copied().unwrap_or(0),
            lit_len.get(s).copied().unwrap_or(0),
        );
    };
    for t in tokens {
        match *t {
            Token::Literal(b) => lit(bits, usize::from(b)),
            Token::Match { len, dist } => {
                let lc = len_code(len);
                lit(bits, 257 + lc);
                let base = LEN_BASE.get(lc).copied().unwrap_or(0);
                bits.bits(
                    u32::from(len - base),
                    u32::from(LEN_EXTRA.get(lc).copied().unwrap_or(0)),
                );
                let dc = dist_code(dist);
                bits.code(
                    dist_codes.get(dc).copied().unwrap_or(0),
                    dist_len.get(dc).copied().unwrap_or(0),
                );
                let base = DIST_BASE.get(dc).copied().unwrap_or(0);
                bits.bits(
                    u32::from(dist - base),
                    u32::from(DIST_EXTRA.get(dc).copied().unwrap_or(0)),
                );
            }
        }
    }
    lit(bits, 256);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    fn roundtrip(data: &[u8]) -> usize {
        let z = gzip(data);
        assert_eq!(gunzip(&z), data, "round trip of {} bytes", data.len());
        z.len()
    }

    #[test]
    fn distance_codes_agree_with_the_table() {
        for d in 1..=32768u16 {
            assert_eq!(dist_code(d), code_of(&DIST_BASE, d), "{d}");
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trips_edge_cases() {
        roundtrip(b"");
        roundtrip(b"a");
        roundtrip(b"aaaa");
        roundtrip(&[0u8; 100_000]);
        roundtrip(&(0..=255u8).collect::<Vec<_>>());
        roundtrip(b"abcabcabcabcabcabcabc");
        let mut x = 1u32;
        let noise: Vec<u8> = (0..70_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        roundtrip(&noise);
        // Repeats further back than the window.
        let mut far = noise.clone();
        far.extend_from_slice(noise.get(..40_000).unwrap());
        roundtrip(&far);
    }

    #[test]
    fn input_written_in_pieces_is_one_member_of_the_whole() {
        let mut x = 7u32;
        // Text that repeats (as batches do), far longer than two windows.
        let data: Vec<u8> = (0..300_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 300 < 200 {
                    b"{\"type\":\"track\",\"event\":\"Clicked\"}"[i % 29]
                } else {
                    b'a' + (x % 26) as u8
                }
            })
            .collect();
        for piece in [1, 7, 1000, 40_000, 300_000] {
            let mut z = Gzip::new(200_000);
            for part in data.chunks(piece) {
                z.write(part);
            }
            let z = z.finish();
            assert_eq!(gunzip(&z), data, "pieces of {piece}");
            assert!(z.len() * 2 < data.len(), "{} bytes", z.len());
        }
    }

    #[test]
    fn compresses_batches_close_to_zlib() {
        let mut body = String::from("{\"batch\":[");
        for i in 0..100 {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                "{{\"type\":\"track\",\"event\":\"Product Clicked\",\"messageId\":\"{:08x}-9c1b-4d2e-8f3a-{:012x}\",\"timestamp\":\"2026-11-23T05:36:{:02}.{:03}Z\",\"properties\":{{\"product_id\":\"p-{i}\",\"price\":19.99}},\"context\":{{\"library\":{{\"name\":\"segmint\"}},\"userAgent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\",\"page\":{{\"url\":\"https://shop.example/p/1\"}}}}}}",
                i * 2_654_435_761u64 % 0xffff_ffff,
                i * 40_503 * 7_919 % 0xffff_ffff_ffff,
                i % 60,
                i * 7 % 1000
            ));
        }
        body.push_str("]}");
        let ours = roundtrip(body.as_bytes());
        let mut zlib = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut zlib, body.as_bytes()).unwrap();
        let theirs = zlib.finish().unwrap().len();
        assert!(ours * 10 <= theirs * 13, "ours {ours} vs zlib {theirs}");
    }
}
