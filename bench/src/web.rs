//! The page's entry point.

use wasm_bindgen::prelude::*;

/// Runs the benchmarks: `input` and the result are JSON (see `Input` and `Report`).
#[wasm_bindgen(js_name = runBenchmarks)]
pub fn run_benchmarks(input: &str) -> String {
    crate::run_json(input)
}
