//! The queue's entries in chunks of [`CHUNK`]: growing never copies the
//! whole list to a buffer twice its size (which, in a burst of events,
//! would leave that high-water mark in the wasm's memory for good), and a
//! delivered chunk's memory is reused. A chunk is a ring, so delivering
//! from the front moves no entry.

use super::Entry;
use std::collections::VecDeque;

/// Entries per chunk.
const CHUNK: usize = 512;

/// Entries in order of sequence number.
#[derive(Default)]
pub struct Entries {
    chunks: VecDeque<VecDeque<Entry>>,
    len: usize,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push_back(&mut self, entry: Entry) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK => last.push_back(entry),
            _ => {
                let mut chunk = VecDeque::with_capacity(CHUNK);
                chunk.push_back(entry);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    pub fn front(&self) -> Option<&Entry> {
        self.chunks.front().and_then(|c| c.front())
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut Entry> {
        self.chunks.iter_mut().flat_map(|c| c.iter_mut())
    }

    /// The chunk and the place in it of the `i`th entry.
    fn locate(&self, mut i: usize) -> Option<(usize, usize)> {
        for (c, chunk) in self.chunks.iter().enumerate() {
            if i < chunk.len() {
                return Some((c, i));
            }
            i -= chunk.len();
        }
        None
    }

    pub fn get(&self, i: usize) -> Option<&Entry> {
        let (c, at) = self.locate(i)?;
        self.chunks.get(c).and_then(|chunk| chunk.get(at))
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Entry> {
        let (c, at) = self.locate(i)?;
        self.chunks.get_mut(c).and_then(|chunk| chunk.get_mut(at))
    }

    /// Removes the `i`th entry (an emptied chunk goes).
    pub fn remove(&mut self, i: usize) -> Option<Entry> {
        let (c, at) = self.locate(i)?;
        let chunk = self.chunks.get_mut(c)?;
        if at >= chunk.len() {
            return None;
        }
        let entry = chunk.remove(at)?;
        if chunk.is_empty() {
            self.chunks.remove(c);
        }
        self.len -= 1;
        Some(entry)
    }

    /// Where the entry with sequence number `seq` is (`Err`: where it would
    /// go), as `binary_search` says.
    pub fn search(&self, seq: u64) -> Result<usize, usize> {
        let mut before = 0;
        for chunk in &self.chunks {
            if chunk.back().is_some_and(|last| last.seq >= seq) {
                return chunk
                    .binary_search_by_key(&seq, |e| e.seq)
                    .map(|i| before + i)
                    .map_err(|i| before + i);
            }
            before += chunk.len();
        }
        Err(before)
    }

    /// The entries from the `start`th on.
    pub fn from(&self, start: usize) -> impl Iterator<Item = &Entry> {
        let (c, at) = self.locate(start).unwrap_or((self.chunks.len(), 0));
        self.chunks
            .range(c..)
            .enumerate()
            .flat_map(move |(k, chunk)| chunk.range(if k == 0 { at.min(chunk.len()) } else { 0 }..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            queued_at: 0.0,
            block: 0,
            start: 0,
            len: 0,
            ctx: 0,
        }
    }

    #[test]
    fn searches_removals_and_ranges_cross_chunks_as_one_list() {
        let mut e = Entries::default();
        for seq in (0..3000).map(|n| n * 2) {
            e.push_back(entry(seq));
        }
        assert_eq!(e.chunks.len(), 6);
        assert_eq!(e.search(1200), Ok(600));
        assert_eq!(e.search(1201), Err(601));
        assert_eq!(e.search(99_999), Err(3000));
        assert_eq!(e.from(1020).next().map(|x| x.seq), Some(2040));
        assert_eq!(e.from(3000).count(), 0);
        // Emptied chunks go; the rest stay in order.
        for _ in 0..CHUNK {
            e.remove(0);
        }
        assert_eq!((e.len(), e.chunks.len()), (3000 - CHUNK, 5));
        assert_eq!(e.front().map(|x| x.seq), Some(2 * CHUNK as u64));
        assert_eq!(e.remove(10).map(|x| x.seq), Some(2 * (CHUNK as u64 + 10)));
        assert_eq!(e.search(2 * (CHUNK as u64 + 10)), Err(10));
        assert!(e.iter().zip(e.iter().skip(1)).all(|(a, b)| a.seq < b.seq));
        assert_eq!(e.iter().next_back().map(|x| x.seq), Some(5998));
    }
}
