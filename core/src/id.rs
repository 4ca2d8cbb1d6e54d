//! Identifiers: UUID v4 text and a fast generator for message ids.
//!
//! The anonymous id comes straight from the browser's CSPRNG. Message ids
//! are made on every event, so they come from xoshiro256++ seeded once
//! from the CSPRNG: 256 bits of seed make two page views' sequences
//! collide with negligible probability, and a call costs nanoseconds
//! instead of a trip to `crypto.getRandomValues`.

/// A small, fast pseudo-random generator (xoshiro256++).
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seeds the generator from 32 random bytes. Each word goes through
    /// splitmix64, as xoshiro's authors advise, so that even a poor seed
    /// (all zeros) starts from a well-mixed state.
    pub fn from_seed(seed: [u8; 32]) -> Rng {
        let mut s = [0u64; 4];
        let mut mix = 0x9E37_79B9_7F4A_7C15u64;
        for (word, bytes) in s.iter_mut().zip(seed.chunks_exact(8)) {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(bytes);
            mix = mix
                .wrapping_add(u64::from_le_bytes(raw))
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = mix;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *word = z ^ (z >> 31);
        }
        Rng { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.s;
        let result = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
        let t = s1 << 17;
        let mut n = [s0, s1, s2 ^ s0, s3 ^ s1];
        n[1] ^= n[2];
        n[0] ^= n[3];
        n[2] ^= t;
        n[3] = n[3].rotate_left(45);
        self.s = n;
        result
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fresh UUID v4.
    pub fn uuid_v4(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid_v4_from_bytes(bytes)
    }

    /// A short random token of `len` lower-case letters and digits.
    pub fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        (0..len)
            .map(|_| {
                char::from(
                    ALPHABET
                        .get((self.next_u64() % 36) as usize)
                        .copied()
                        .unwrap_or(b'0'),
                )
            })
            .collect()
    }
}

/// Formats 16 random bytes as a UUID v4 (sets the version and variant bits).
// Hand-written rather than through the `uuid` crate: with it
// (`Builder::from_random_bytes`, `encode_lower`) the wasm was 458 bytes
// larger raw, 0.1 KB brotli (measured 2026-12-04).
pub fn uuid_v4_from_bytes(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// Whether `s` looks like a UUID (8-4-4-4-12 hex digits, any version).
/// Used to refuse a tampered cookie or storage entry as an anonymous id.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_well_formed() {
        let mut rng = Rng::from_seed([7; 32]);
        for _ in 0..1000 {
            let id = rng.uuid_v4();
            assert!(is_uuid(&id), "{id}");
            assert_eq!(&id[14..15], "4");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        }
    }

    #[test]
    fn different_seeds_give_different_sequences() {
        let a: Vec<_> = (0..5)
            .map({
                let mut r = Rng::from_seed([1; 32]);
                move |_| r.uuid_v4()
            })
            .collect();
        let b: Vec<_> = (0..5)
            .map({
                let mut r = Rng::from_seed([2; 32]);
                move |_| r.uuid_v4()
            })
            .collect();
        assert!(a.iter().all(|x| !b.contains(x)));
        let mut r = Rng::from_seed([1; 32]);
        assert_eq!(r.uuid_v4(), a[0]);
    }

    #[test]
    fn zero_seed_still_produces_randomness() {
        let mut r = Rng::from_seed([0; 32]);
        assert_ne!(r.next_u64(), r.next_u64());
    }

    #[test]
    fn floats_stay_in_unit_interval() {
        let mut r = Rng::from_seed([9; 32]);
        assert!((0..10_000)
            .map(|_| r.next_f64())
            .all(|x| (0.0..1.0).contains(&x)));
    }

    #[test]
    fn rejects_non_uuids() {
        assert!(!is_uuid("not-a-uuid"));
        assert!(!is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000abcd"));
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
    }
}
