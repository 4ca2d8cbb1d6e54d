//! segmint-core: the logic of the segmint SDK, in pure Rust.
//!
//! No browser types and no I/O: storage, clock and network sit behind
//! [`store::Store`], [`time::Clock`] and the sans-IO [`delivery`] protocol,
//! so everything here runs under `cargo test`, in the browser (through the
//! `segmint` wasm crate) and on the collector, which evaluates segments with
//! this same code.
//!
//! Data flows one way: a call becomes a [`message`], joins the [`queue`]
//! (persisted in chunks), leaves in a batch chosen by [`delivery`], and the
//! answer is judged by [`retry`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Tests may index and unwrap: a panic there is a failed test.
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod condition;
pub mod config;
pub mod cookie;
pub mod delivery;
pub mod error;
pub mod fuzzing;
pub mod gzip;
pub mod hash;
pub mod id;
pub mod json;
pub mod message;
pub mod persister;
pub mod profile;
pub mod queue;
pub mod replay;
pub mod retry;
pub mod rules;
pub mod segments;
pub mod sort;
pub mod store;
pub mod time;
pub mod tracker;
pub mod url;
pub mod version;

pub use error::Error;
