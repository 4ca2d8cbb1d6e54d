//! Rules documents and GrowthBook conditions from arbitrary input: the
//! validator, the evaluator, the profile and its persisted form never
//! panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| segmint_core::fuzzing::rules_and_conditions(data));
