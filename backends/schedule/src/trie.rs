//! The radix tree (compressed token trie) of a request's jobs: one node per run of tokens
//! that a set of jobs shares and no other job continues differently inside. Computing each
//! node once, on top of its parent's key/values, computes each distinct token prefix once:
//! the exact lower bound.
//!
//! Shaped before it runs: a prefix kept from an earlier call becomes a path of *kept* nodes
//! (no pass computes them; their key/values are the kept ones, cut to length), short nodes
//! are folded into their children when sharing them is not worth a pass
//! (`min_shared_prefix`), and nodes longer than the token budget are cut into a chain.

use crate::schedule::Job;

/// A node: the tokens `start..end` of every job in its subtree.
#[derive(Debug, Clone)]
pub struct Node {
    /// Position of its first token in each of its jobs.
    pub start: usize,
    /// Position after its last token.
    pub end: usize,
    /// A job whose tokens `start..end` are this node's.
    pub rep: usize,
    /// Queried positions inside it (relative to `start`, ascending, distinct), each with the
    /// jobs (indices into the request's jobs) that query it.
    pub queries: Vec<(usize, Vec<usize>)>,
    /// Children, in token order.
    pub children: Vec<usize>,
    /// Its key/values are a kept prefix's: nothing computes it.
    pub kept: bool,
}

impl Node {
    /// Its token count.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether it has no tokens (only the root).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Its tokens.
    pub fn tokens<'j>(&self, jobs: &'j [Job<'_>]) -> &'j [u32] {
        &jobs[self.rep].tokens[self.start..self.end]
    }
}

/// The tree; node 0 is the root, which has no tokens.
#[derive(Debug, Clone)]
pub struct Trie {
    /// Every node, the root first.
    pub nodes: Vec<Node>,
}

/// How many leading tokens `a` and `b` share.
pub(crate) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Trie {
    /// The radix tree of `jobs`. Without `share`, nothing is shared: every job is a child of
    /// the root with all of its tokens (the naive method).
    pub fn build(jobs: &[Job<'_>], share: bool) -> Trie {
        let root = Node {
            start: 0,
            end: 0,
            rep: 0,
            queries: Vec::new(),
            children: Vec::new(),
            kept: false,
        };
        let mut nodes = vec![root];
        let whole = |j: usize| Node {
            start: 0,
            end: jobs[j].tokens.len(),
            rep: j,
            queries: jobs[j].positions.iter().map(|&p| (p, vec![j])).collect(),
            children: Vec::new(),
            kept: false,
        };
        if !share {
            for j in 0..jobs.len() {
                let id = nodes.len();
                nodes[0].children.push(id);
                nodes.push(whole(j));
            }
            return Trie { nodes };
        }
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|&a, &b| jobs[a].tokens.cmp(jobs[b].tokens).then(a.cmp(&b)));
        let tokens = |i: usize| jobs[order[i]].tokens;
        // Per job, the first of its queried positions not yet given to a node (a job's nodes
        // are met in position order).
        let mut next_query = vec![0usize; jobs.len()];
        // Ranges of `order` sharing tokens `..depth`, every member longer than `depth`, to
        // become children of `parent`. Pushed in reverse so children are made in order.
        let mut work: Vec<(usize, usize, usize, usize)> = Vec::new();
        let push_children = |work: &mut Vec<_>, parent: usize, lo: usize, hi: usize, d: usize| {
            let mut ranges = Vec::new();
            let mut i = lo;
            while i < hi {
                if tokens(i).len() == d {
                    i += 1;
                    continue;
                }
                let mut k = i + 1;
                while k < hi && tokens(k)[d] == tokens(i)[d] {
                    k += 1;
                }
                ranges.push((parent, i, k, d));
                i = k;
            }
            work.extend(ranges.into_iter().rev());
        };
        push_children(&mut work, 0, 0, order.len(), 0);
        while let Some((parent, lo, hi, d)) = work.pop() {
            // The members' common prefix: sorted, it is the least of neighbours' common
            // prefixes (and of the shortest member's length).
            let mut end = tokens(lo).len();
            for i in lo + 1..hi {
                end = end.min(d + common_prefix(&tokens(i - 1)[d..], &tokens(i)[d..]));
            }
            let mut queries: Vec<(usize, Vec<usize>)> = Vec::new();
            for &j in &order[lo..hi] {
                let positions = &jobs[j].positions;
                while next_query[j] < positions.len() && positions[next_query[j]] < end {
                    queries.push((positions[next_query[j]] - d, vec![j]));
                    next_query[j] += 1;
                }
            }
            queries.sort_by_key(|(p, _)| *p);
            let mut merged: Vec<(usize, Vec<usize>)> = Vec::new();
            for (p, js) in queries {
                match merged.last_mut() {
                    Some((q, all)) if *q == p => all.extend(js),
                    _ => merged.push((p, js)),
                }
            }
            let id = nodes.len();
            nodes.push(Node {
                start: d,
                end,
                rep: order[lo],
                queries: merged,
                children: Vec::new(),
                kept: false,
            });
            nodes[parent].children.push(id);
            push_children(&mut work, id, lo, hi, end);
        }
        Trie { nodes }
    }

    /// How many leading tokens of `kept` (a prefix computed earlier) lie on this tree's
    /// paths.
    pub fn reach(&self, jobs: &[Job<'_>], kept: &[u32]) -> usize {
        self.walk(jobs, kept).0
    }

    /// Follows `kept` down from the root: (tokens reached, the nodes fully covered, the node
    /// covered in part with its parent and the count covered).
    #[allow(clippy::type_complexity)]
    fn walk(
        &self,
        jobs: &[Job<'_>],
        kept: &[u32],
    ) -> (usize, Vec<usize>, Option<(usize, usize, usize)>) {
        let (mut at, mut pos, mut full) = (0usize, 0usize, Vec::new());
        loop {
            let next = self.nodes[at]
                .children
                .iter()
                .copied()
                .find(|&c| kept.get(pos) == self.nodes[c].tokens(jobs).first());
            let Some(c) = next else { return (pos, full, None) };
            let node = &self.nodes[c];
            let m = common_prefix(node.tokens(jobs), &kept[pos..]);
            if m == 0 {
                return (pos, full, None);
            }
            pos += m;
            if m < node.len() {
                return (pos, full, Some((at, c, m)));
            }
            full.push(c);
            at = c;
        }
    }

    /// Marks the path of `kept` as kept (see [`Trie::reach`]), splitting the node it ends
    /// inside. **A kept prefix never hides a query**: a queried token on the path becomes a
    /// node of its own that is computed (one token on the kept past before it), so its
    /// distribution is read; the kept past serves the rest.
    pub fn keep(&mut self, jobs: &[Job<'_>], kept: &[u32]) {
        let (_, full, part) = self.walk(jobs, kept);
        let mut path: Vec<(usize, usize)> = Vec::new();
        let mut parent = 0;
        for c in full {
            path.push((parent, c));
            parent = c;
        }
        if let Some((parent, c, m)) = part {
            let head = self.split(parent, c, m);
            path.push((parent, head));
        }
        for (parent, node) in path {
            self.keep_around_queries(parent, node);
        }
    }

    /// Marks `node` (a child of `parent`) kept but for its queried tokens, each split out
    /// as a one-token node left to compute.
    fn keep_around_queries(&mut self, mut parent: usize, node: usize) {
        loop {
            let Some(&(q, _)) = self.nodes[node].queries.first() else {
                self.nodes[node].kept = true;
                return;
            };
            if q > 0 {
                let head = self.split(parent, node, q);
                self.nodes[head].kept = true;
                parent = head;
            }
            if self.nodes[node].len() == 1 {
                return;
            }
            // The queried token alone: computed; the rest of the node goes on kept.
            parent = self.split(parent, node, 1);
        }
    }

    /// Cuts node `c` (a child of `parent`) after its first `m` tokens (0 < m < len): a new
    /// node takes `c`'s place under `parent` with those tokens, and `c` keeps the rest (and
    /// its queries and children) as the new node's only child. Returns the new node.
    fn split(&mut self, parent: usize, c: usize, m: usize) -> usize {
        let node = &mut self.nodes[c];
        let cut = node.start + m;
        let (before, after): (Vec<_>, Vec<_>) = node.queries.drain(..).partition(|(q, _)| *q < m);
        node.queries = after.into_iter().map(|(q, js)| (q - m, js)).collect();
        let head = Node {
            start: node.start,
            end: cut,
            rep: node.rep,
            queries: before,
            children: vec![c],
            kept: false,
        };
        node.start = cut;
        let id = self.nodes.len();
        self.nodes.push(head);
        if let Some(slot) = self.nodes[parent].children.iter_mut().find(|x| **x == c) {
            *slot = id;
        }
        id
    }

    /// Folds every computed node shorter than `min_shared` that has children and no queries
    /// into its children (each child recomputes its tokens): sharing so few tokens is not
    /// worth a pass of their own. Top-down, so a child lengthened by a fold is judged at its
    /// new length.
    pub fn fold_short(&mut self, min_shared: usize) {
        let mut stack = vec![0usize];
        while let Some(at) = stack.pop() {
            let mut list = std::mem::take(&mut self.nodes[at].children);
            let mut i = 0;
            while i < list.len() {
                let c = list[i];
                let n = &self.nodes[c];
                let foldable = !n.kept
                    && !n.children.is_empty()
                    && n.queries.is_empty()
                    && n.len() < min_shared;
                if foldable {
                    let (start, len) = (n.start, n.len());
                    let children = std::mem::take(&mut self.nodes[c].children);
                    for &g in &children {
                        let child = &mut self.nodes[g];
                        child.start = start;
                        for (q, _) in &mut child.queries {
                            *q += len;
                        }
                    }
                    // The folded node stays in the arena with nothing to compute.
                    self.nodes[c].end = start;
                    list.splice(i..=i, children);
                } else {
                    stack.push(c);
                    i += 1;
                }
            }
            self.nodes[at].children = list;
        }
    }

    /// Cuts every computed node longer than `budget` into a chain of nodes of at most
    /// `budget` tokens (a single row never holds more than the budget).
    pub fn cut_long(&mut self, budget: usize) {
        let budget = budget.max(1);
        let mut stack = vec![0usize];
        while let Some(at) = stack.pop() {
            let children = self.nodes[at].children.clone();
            for c in children {
                if !self.nodes[c].kept && self.nodes[c].len() > budget {
                    // `split` puts the head in `c`'s place; the rest (`c`) is cut further.
                    let head = self.split(at, c, budget);
                    stack.push(head);
                } else {
                    stack.push(c);
                }
            }
        }
    }
}
