//! Delivery's entry points in the module the web build loads later (see
//! [`crate::tracker::lazy`]): making batches, hearing their answers, the
//! heartbeat and taking over queues other page views left. The first
//! module records and stores; until the later one arrives
//! ([`Tracker::engine_arrived`]) events wait in storage, and nothing is
//! sent, so no answer can come before these are there.
//!
//! scripts/split-wasm.mjs finds them by this module's name: each stays a
//! function of its own (`#[inline(never)]`).

use super::super::{Notice, Tracker};
use crate::delivery::{Batch, Outcome};
use crate::store::Store;

impl<S: Store> Tracker<S> {
    /// The batch due now, if any.
    #[inline(never)]
    pub(in crate::tracker) fn poll_batch(&mut self, now: f64) -> Option<Batch> {
        self.dispatch.poll(&mut self.notices, now)
    }

    /// Requests unanswered too long, settled as network errors.
    #[inline(never)]
    pub(in crate::tracker) fn give_up_requests(&mut self, now: f64) -> Vec<u64> {
        let overdue = self.dispatch.delivery.overdue(now);
        for &id in &overdue {
            self.notices.debug(|| {
                format!(
                    "batch unanswered for {} s: given up",
                    (crate::delivery::REQUEST_TIMEOUT_MS / 1000.0) as i64
                )
            });
            self.settle_answer(id, Outcome::NetworkError, now);
        }
        overdue
    }

    /// Applies the answer to batch `id`.
    #[inline(never)]
    pub(in crate::tracker) fn settle_answer(&mut self, id: u64, outcome: Outcome, now: f64) {
        if !self.dispatch.delivery.awaits(id) {
            return;
        }
        let random = self.rng.next_f64();
        let d = &mut self.dispatch;
        let settled = d.delivery.settle(&mut d.queue, id, outcome, now, random);
        let status = settled.status;
        match settled.retry_in_ms {
            Some(wait) => self.notices.debug(|| {
                format!(
                    "batch answered {status}: retry in {} ms",
                    wait.round() as i64
                )
            }),
            None => self.notices.debug(|| {
                format!(
                    "batch answered {status}: {} event(s) done",
                    settled.removed.len()
                )
            }),
        }
        d.settled(&mut self.storage, self.consent, &settled, now);
        for e in settled.errors {
            self.notices.error(e);
        }
        for f in settled.flushes {
            self.notices.push(Notice::Flushed(f));
        }
    }

    /// Keepalive batches (or beacons) for a page being hidden or going.
    #[inline(never)]
    pub(in crate::tracker) fn batches_to_unload(&mut self, now: f64, beacon: bool) -> Vec<Batch> {
        self.dispatch.unload_batches(now, beacon)
    }

    /// This page view's heartbeat, and what another page view adopted.
    #[inline(never)]
    pub(in crate::tracker) fn beat_and_check(&mut self, now: f64) {
        self.dispatch
            .heartbeat(&mut self.storage, &mut self.notices, now);
    }

    /// Whether other page views left queues behind.
    #[inline(never)]
    pub(in crate::tracker) fn find_orphans(&self, previous_tab: Option<&str>, now: f64) -> bool {
        self.dispatch
            .has_orphans(&self.storage.store, previous_tab, now)
    }

    /// Takes over the queues other page views left behind.
    #[inline(never)]
    pub(in crate::tracker) fn take_orphans(
        &mut self,
        previous_tab: Option<&str>,
        now: f64,
    ) -> usize {
        self.dispatch.adopt_orphans(
            &mut self.storage.store,
            &mut self.notices,
            previous_tab,
            now,
        )
    }
}
