//! Key/values of prefixes computed by earlier scoring calls, so that what consecutive
//! requests share (a game's rules, a system prompt, an episode's first rounds split across
//! two requests) is computed once per run rather than once per request. An entry serves
//! every prefix of its tokens (key/values of a prefix are the leading part of the entry's).
//! Bounded by a number of tokens; least recently used entries go first.

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

    /// The entry that serves the most leading tokens, `reach(entry tokens)` of them (the
    /// caller says how far an entry's tokens are usable), with that count; at least one
    /// token or nothing. The entry becomes the most recently used; ties go to the more
    /// recent.
    #[allow(clippy::type_complexity)]
    pub fn best_by(
        &mut self,
        reach: impl Fn(&[u32]) -> usize,
    ) -> Option<(usize, Vec<u32>, Arc<V>)> {
        let (best, n) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, reach(&e.tokens).min(e.tokens.len())))
            .filter(|&(_, n)| n > 0)
            .max_by_key(|&(i, n)| (n, i))?;
        let entry = self.entries.remove(best);
        let found = (n, entry.tokens.clone(), Arc::clone(&entry.value));
        self.entries.push(entry);
        Some(found)
    }

    /// Keeps `value` for `tokens` as the most recently used entry, dropping the least
    /// recently used ones past the capacity. An entry whose tokens begin the new one is
    /// replaced (the new one serves all it served); an entry that begins with the new
    /// tokens already serves them, and becomes the most recently used instead. A prefix
    /// longer than the capacity is not kept.
    pub fn insert(&mut self, tokens: &[u32], value: Arc<V>) {
        if tokens.is_empty() || tokens.len() > self.capacity_tokens {
            return;
        }
        if let Some(i) = self.entries.iter().position(|e| e.tokens.starts_with(tokens)) {
            let entry = self.entries.remove(i);
            self.entries.push(entry);
            return;
        }
        let mut i = 0;
        while i < self.entries.len() {
            if tokens.starts_with(&self.entries[i].tokens) {
                let old = self.entries.remove(i);
                self.held_tokens -= old.tokens.len();
            } else {
                i += 1;
            }
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
    use crate::trie::common_prefix as shared;

    #[test]
    fn serves_the_entry_reaching_furthest_within_the_callers_bound() {
        let mut c = PrefixCache::new(100);
        c.insert(&[1, 2, 3], Arc::new("abc"));
        c.insert(&[9, 9], Arc::new("zz"));
        c.insert(&[1, 2, 7, 7], Arc::new("ab77"));
        let seq = [1, 2, 3, 4];
        assert_eq!(c.best_by(|e| shared(e, &seq)).map(|(n, _, v)| (n, *v)), Some((3, "abc")));
        // The caller may cap the reach (a query at position 1 must be computed).
        let (n, tokens, _) = c.best_by(|e| shared(e, &seq).min(1)).expect("one token");
        assert_eq!(tokens, vec![1, 2, 3]);
        assert_eq!(n, 1);
        // An entry serves a prefix of itself: [1, 2] from "ab77" or "abc".
        assert_eq!(c.best_by(|e| shared(e, &[1, 2, 5])).map(|(n, _, _)| n), Some(2));
        assert!(c.best_by(|e| shared(e, &[4])).is_none());
    }

    #[test]
    fn drops_least_recently_used_past_capacity_and_replaces_its_own_prefixes() {
        let mut c = PrefixCache::new(6);
        c.insert(&[1, 1, 1], Arc::new(1));
        c.insert(&[2, 2, 2], Arc::new(2));
        // Touch the first, so the second is the oldest.
        assert!(c.best_by(|e| shared(e, &[1, 1, 1, 0])).is_some());
        c.insert(&[3, 3, 3], Arc::new(3));
        assert_eq!(c.held_tokens(), 6);
        assert!(c.best_by(|e| shared(e, &[2, 2, 2, 0])).is_none());
        assert!(c.best_by(|e| shared(e, &[1, 1, 1, 0])).is_some());
        // Too long to keep.
        c.insert(&[4; 7], Arc::new(4));
        assert!(c.best_by(|e| shared(e, &[4; 8])).is_none());
        // A longer entry replaces the one it begins with.
        c.insert(&[3, 3, 3, 5], Arc::new(35));
        assert_eq!(c.held_tokens(), 4, "[1 1 1] dropped for room, [3 3 3] replaced");
        assert_eq!(c.best_by(|e| shared(e, &[3, 3, 3])).map(|(n, _, v)| (n, *v)), Some((3, 35)));
        // A prefix of a held entry is served by it already.
        c.insert(&[3, 3], Arc::new(33));
        assert_eq!(c.held_tokens(), 4);
        // Capacity 0 keeps nothing.
        let mut none = PrefixCache::new(0);
        none.insert(&[1], Arc::new(1));
        assert!(none.best_by(|e| shared(e, &[1, 2])).is_none());
    }
}
