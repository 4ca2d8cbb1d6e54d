//! Peak heap while a batch is built and gzipped.
//!
//! WebAssembly memory only grows: whatever the encoder and the batch
//! builder hold at their peak stays in every shopper's tab for the life
//! of the page. These tests count the bytes allocated (a counting global
//! allocator, so they measure allocations, not time; `peak_alloc` counts
//! a reallocation as the old and the new block, as the wasm build's
//! allocator does) and hold the peaks to bounds that the encoder and
//! builder before this change exceeded (267 KB to gzip 2.7 KB, 783 KB to
//! build a 500-event batch).
#![allow(clippy::expect_used)] // a test

use peak_alloc::PeakAlloc;
use segmint_core::delivery::{Delivery, DeliveryConfig};
use segmint_core::queue::Queue;
use segmint_core::retry::Backoff;
use std::sync::Mutex;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;
// The tests in this file run on several threads: one measures at a time.
static MEASURING: Mutex<()> = Mutex::new(());

/// What `f` returns, and the most bytes live at once while it ran,
/// beyond those live when it started.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let r = f();
    (r, ALLOCATOR.peak_usage() - start)
}

/// Batch JSON like the SDK's: one context, events whose ids differ.
fn batch_json(events: usize) -> String {
    let mut body = String::from("{\"batch\":[");
    for i in 0..events {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"type\":\"track\",\"event\":\"Product Clicked\",\"properties\":{{\"product_id\":\"p{i}\",\"price\":{}.5,\"category\":\"shoes\",\"position\":{}}},\"anonymousId\":\"2f8e6a4c-1b3d-4e5f-8a7b-9c0d1e2f3a4b\",\"timestamp\":\"2026-11-23T09:{:02}:{:02}.{:03}Z\",\"messageId\":\"{:08x}-4b1c-4d2e-8f3a-{:012x}\"}}",
            i % 40,
            i % 12,
            i / 3600 % 60,
            i / 60 % 60,
            i % 1000,
            i * 2_654_435_761 % 0xffff_ffff,
            i * 40_503 * 7_919
        ));
    }
    body.push_str("],\"sentAt\":\"2026-11-23T09:00:00.000Z\"}");
    body
}

#[test]
fn gzip_working_memory_follows_the_input_size() {
    let _one = MEASURING.lock();
    // A typical page's batch: a few events, a few KB.
    let small = batch_json(10);
    let (z, peak) = peak_of(|| segmint_core::gzip::gzip(small.as_bytes()));
    println!("gzip {} B -> {} B: peak {} B", small.len(), z.len(), peak);
    assert!(
        peak <= 20 * small.len() + 8192,
        "gzip of {} B held {peak} B at once",
        small.len()
    );
    // A 500-event batch from a burst.
    let big = batch_json(500);
    let (z, peak) = peak_of(|| segmint_core::gzip::gzip(big.as_bytes()));
    println!("gzip {} B -> {} B: peak {} B", big.len(), z.len(), peak);
    // Its window and tables, whatever the input's size.
    assert!(
        peak <= 300 * 1024,
        "gzip of {} B held {peak} B at once",
        big.len()
    );
}

#[test]
fn building_a_batch_holds_little_beyond_the_batch() {
    let _one = MEASURING.lock();
    let mut delivery = Delivery::new(DeliveryConfig {
        url: "http://c/v1/batch".into(),
        write_key: None,
        backoff: Backoff {
            base_ms: 1000.0,
            cap_ms: 300_000.0,
        },
        max_events: 500,
        max_bytes: 60 * 1024,
        interval_ms: 2000.0,
    });
    delivery.set_gzip(true);
    let mut queue = Queue::default();
    let ctx = queue.intern("{\"library\":{\"name\":\"segmint\",\"version\":\"0.1.0\"},\"page\":{\"path\":\"/p/1\"},\"locale\":\"en-US\"}");
    for i in 0..2000u64 {
        queue.push(
            format!("{{\"type\":\"track\",\"event\":\"Product Clicked\",\"properties\":{{\"product_id\":\"p{i}\",\"price\":19.5}},\"anonymousId\":\"2f8e6a4c-1b3d-4e5f-8a7b-9c0d1e2f3a4b\",\"timestamp\":\"2026-11-23T09:00:00.{:03}Z\",\"messageId\":\"{:08x}-4b1c-4d2e-8f3a-{:012x}\"", i % 1000, i * 2_654_435_761 % 0xffff_ffff, i * 40_503),
            ctx,
            0.0,
        );
    }
    let (batch, peak) = peak_of(|| delivery.poll(&mut queue, 1e9));
    let batch = batch.expect("a batch");
    let kept = Delivery::wire_len(&batch);
    println!(
        "batch of {} events: JSON {} B, wire {} B, peak {peak} B",
        batch.seqs.len(),
        batch.json_len,
        Delivery::wire_len(&batch)
    );
    assert_eq!(batch.seqs.len(), 500);
    // Gzipped, the JSON is compressed as it is made, never held whole:
    // the encoder's working memory, not the batch's size.
    assert!(batch.body.is_empty());
    assert!(
        peak <= 320 * 1024 && peak < batch.json_len * 2,
        "building a batch of {kept} B ({} B of JSON) held {peak} B at once",
        batch.json_len
    );
}
