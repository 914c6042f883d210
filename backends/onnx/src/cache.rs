//! Key/values of prefixes computed by earlier scoring calls, so that a prefix shared by the
//! requests of a run (a game's rules, a system prompt) is computed once per run rather than
//! once per request. Bounded by a number of tokens; least recently used entries go first.

use std::sync::Arc;

/// One cached prefix: its tokens and whatever was computed over them.
struct Entry<V> {
    tokens: Vec<u32>,
    value: Arc<V>,
}

/// A least-recently-used cache of prefix computations, keyed by token sequence.
pub struct PrefixCache<V> {
    capacity_tokens: usize,
    held_tokens: usize,
    /// Least recently used first.
    entries: Vec<Entry<V>>,
}

impl<V> PrefixCache<V> {
    /// A cache holding at most `capacity_tokens` tokens in all (0: nothing is kept).
    pub fn new(capacity_tokens: usize) -> Self {
        PrefixCache { capacity_tokens, held_tokens: 0, entries: Vec::new() }
    }

    /// The longest cached prefix of `tokens` whose length lies in `min_len..=max_len`, with
    /// its length; it becomes the most recently used.
    pub fn longest_prefix_of(
        &mut self,
        tokens: &[u32],
        min_len: usize,
        max_len: usize,
    ) -> Option<(usize, Arc<V>)> {
        let best = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                let n = e.tokens.len();
                n >= min_len.max(1) && n <= max_len && tokens.starts_with(&e.tokens)
            })
            .max_by_key(|(i, e)| (e.tokens.len(), *i))
            .map(|(i, _)| i)?;
        let entry = self.entries.remove(best);
        let found = (entry.tokens.len(), Arc::clone(&entry.value));
        self.entries.push(entry);
        Some(found)
    }

    /// Keeps `value` for `tokens` as the most recently used entry, dropping the least
    /// recently used ones past the capacity. A prefix longer than the capacity is not kept.
    pub fn insert(&mut self, tokens: &[u32], value: Arc<V>) {
        if tokens.is_empty() || tokens.len() > self.capacity_tokens {
            return;
        }
        if let Some(i) = self.entries.iter().position(|e| e.tokens == tokens) {
            let mut entry = self.entries.remove(i);
            entry.value = value;
            self.entries.push(entry);
            return;
        }
        self.held_tokens += tokens.len();
        self.entries.push(Entry { tokens: tokens.to_vec(), value });
        while self.held_tokens > self.capacity_tokens {
            let old = self.entries.remove(0);
            self.held_tokens -= old.tokens.len();
        }
    }

    /// Tokens held in all.
    pub fn held_tokens(&self) -> usize {
        self.held_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_longest_prefix_within_bounds() {
        let mut c = PrefixCache::new(100);
        c.insert(&[1, 2, 3], Arc::new("abc"));
        c.insert(&[1, 2, 3, 4, 5], Arc::new("abcde"));
        c.insert(&[9, 9], Arc::new("zz"));
        let seq = [1, 2, 3, 4, 5, 6];
        assert_eq!(*c.longest_prefix_of(&seq, 1, 10).unwrap().1, "abcde");
        // A query at position 4 must be computed: nothing past it may come from the cache.
        assert_eq!(c.longest_prefix_of(&seq, 1, 4).unwrap().0, 3);
        assert!(c.longest_prefix_of(&seq, 4, 4).is_none());
        assert!(c.longest_prefix_of(&[1, 2], 1, 10).is_none());
    }

    #[test]
    fn drops_least_recently_used_past_capacity() {
        let mut c = PrefixCache::new(6);
        c.insert(&[1, 1, 1], Arc::new(1));
        c.insert(&[2, 2, 2], Arc::new(2));
        // Touch the first, so the second is the oldest.
        assert!(c.longest_prefix_of(&[1, 1, 1, 0], 1, 9).is_some());
        c.insert(&[3, 3, 3], Arc::new(3));
        assert_eq!(c.held_tokens(), 6);
        assert!(c.longest_prefix_of(&[2, 2, 2, 0], 1, 9).is_none());
        assert!(c.longest_prefix_of(&[1, 1, 1, 0], 1, 9).is_some());
        // Too long to keep; re-inserting an entry replaces it.
        c.insert(&[4; 7], Arc::new(4));
        assert!(c.longest_prefix_of(&[4; 8], 1, 9).is_none());
        c.insert(&[3, 3, 3], Arc::new(33));
        assert_eq!(*c.longest_prefix_of(&[3, 3, 3, 0], 1, 9).unwrap().1, 33);
        assert_eq!(c.held_tokens(), 6);
        // Capacity 0 keeps nothing.
        let mut none = PrefixCache::new(0);
        none.insert(&[1], Arc::new(1));
        assert!(none.longest_prefix_of(&[1, 2], 1, 9).is_none());
    }
}
