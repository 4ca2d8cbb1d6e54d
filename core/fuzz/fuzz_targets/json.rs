//! The JSON parser: never panics; what parses writes back identically;
//! the allocation-free validator agrees with the parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| segmint_core::fuzzing::json(data));
