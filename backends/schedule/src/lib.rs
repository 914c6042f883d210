//! descry-schedule: which forward passes answer a scoring request, for any backend whose
//! engine can run token rows on top of given key/values and hand back the key/values of a
//! row (ONNX Runtime through its past/present tensors; llama.cpp through sequence copies).
//!
//! - [`trie`]: the radix tree of a request's sequences (each distinct prefix once);
//! - [`schedule`]: the depth-first run of that tree over a [`schedule::ForwardPass`], one
//!   past held at a time, under the token budget;
//! - [`pack`]: rows of one pass packed under the token budget;
//! - [`cache`]: key/values kept from one call to the next.
//!
//! The host plans nothing of this: it sends whole sequences, so every backend shares the
//! same contract and any backend can use this schedule (or its own).
#![deny(missing_docs)]

pub mod cache;
pub mod pack;
pub mod schedule;
pub mod trie;

pub use schedule::{ForwardPass, Job, Policy, Row, ScheduleError, Scheduler};
