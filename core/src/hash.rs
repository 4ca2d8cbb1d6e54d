//! GrowthBook's deterministic hashing and bucketing, bit-for-bit: holdout
//! groups computed here match the ones GrowthBook's SDKs (and our
//! collector) compute for the same id.

/// 32-bit FNV-1a over the UTF-16 code units of `s`, as GrowthBook's
/// JavaScript computes it with `charCodeAt`.
pub fn fnv1a32(s: &str) -> u32 {
    s.encode_utf16().fold(0x811c_9dc5u32, |h, unit| {
        (h ^ u32::from(unit)).wrapping_mul(0x0100_0193)
    })
}

/// GrowthBook's `hash(seed, value, version)`: a number in `[0, 1)`, or
/// `None` for an unknown version. Version 2 hashes twice to spread
/// sequential ids; version 1 is kept for namespaces.
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        2 => {
            let first = fnv1a32(&format!("{seed}{value}"));
            Some(f64::from(fnv1a32(&first.to_string()) % 10_000) / 10_000.0)
        }
        1 => Some(f64::from(fnv1a32(&format!("{value}{seed}")) % 1000) / 1000.0),
        _ => None,
    }
}

/// `n` equal weights summing to 1 (none for `n <= 0`).
pub fn equal_weights(n: i64) -> Vec<f64> {
    if n <= 0 {
        return Vec::new();
    }
    vec![1.0 / n as f64; n as usize]
}

/// Bucket ranges for `n` variations covering `coverage` of users, with
/// `weights` (equal weights when missing, of the wrong length or not
/// summing to 1 within 1%).
pub fn bucket_ranges(n: i64, coverage: f64, weights: Option<&[f64]>) -> Vec<(f64, f64)> {
    let coverage = coverage.clamp(0.0, 1.0);
    let equal = equal_weights(n);
    let weights = match weights {
        Some(w) if w.len() == equal.len() => {
            let total: f64 = w.iter().sum();
            if (0.99..=1.01).contains(&total) {
                w.to_vec()
            } else {
                equal
            }
        }
        _ => equal,
    };
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|w| {
            let start = cumulative;
            cumulative += w;
            (start, start + coverage * w)
        })
        .collect()
}

/// The index of the range holding `n`, or -1.
pub fn choose_variation(n: f64, ranges: &[(f64, f64)]) -> i64 {
    ranges
        .iter()
        .position(|&(lo, hi)| n >= lo && n < hi)
        .map_or(-1, |i| i as i64)
}

/// Whether `id` falls in `[start, end)` of namespace `name`.
pub fn in_namespace(id: &str, name: &str, start: f64, end: f64) -> bool {
    hash(&format!("__{name}"), id, 1).is_some_and(|n| n >= start && n < end)
}

/// Whether the user with anonymous id `id` is held out of segment
/// `segment_id` with holdout share `share` (hash v2, seed = segment id).
pub fn in_holdout(segment_id: &str, id: &str, share: f64) -> bool {
    share > 0.0 && hash(segment_id, id, 2).is_some_and(|n| n < share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_values() {
        assert_eq!(fnv1a32(""), 0x811c_9dc5);
        assert_eq!(fnv1a32("a"), 0xe40c_292c);
        assert_eq!(fnv1a32("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn holdout_is_deterministic_and_near_its_share() {
        let held = (0..10_000)
            .filter(|i| in_holdout("frequent-buyer", &format!("user-{i}"), 0.1))
            .count();
        assert!((800..1200).contains(&held), "{held}");
        assert_eq!(
            in_holdout("frequent-buyer", "user-42", 0.1),
            in_holdout("frequent-buyer", "user-42", 0.1)
        );
        assert!(!in_holdout("x", "user-1", 0.0));
    }
}
