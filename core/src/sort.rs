//! One small stable sort for the few short lists that need ordering.
//!
//! Why not `slice::sort`: each instantiation of the standard sorts adds a
//! few kilobytes of wasm, and these lists (segments, chunk numbers, a
//! batch's sequence numbers, a profile's days) are short and usually
//! already in order, where insertion sort is linear.

/// Sorts `items` by `key`, keeping equal keys in their order.
pub fn sort_by_key<T, K: PartialOrd>(items: &mut [T], key: impl Fn(&T) -> K) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 {
            let (Some(a), Some(b)) = (items.get(j - 1), items.get(j)) else {
                break;
            };
            if key(a) <= key(b) {
                break;
            }
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stably() {
        let mut v = vec![(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd'), (1, 'e')];
        sort_by_key(&mut v, |x| x.0);
        assert_eq!(v, vec![(1, 'b'), (1, 'e'), (2, 'd'), (3, 'a'), (3, 'c')]);
        let mut empty: Vec<u8> = Vec::new();
        sort_by_key(&mut empty, |x| *x);
        let mut desc = vec![5.0, 1.0, 3.0];
        sort_by_key(&mut desc, |x| -x);
        assert_eq!(desc, vec![5.0, 3.0, 1.0]);
    }
}
