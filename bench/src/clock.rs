//! The time source: `std::time::Instant` natively and on WASI, `performance.now()` in a
//! page. Everything else measures through [`now_us`] and [`Stopwatch`].

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod imp {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn performance_now() -> f64;
    }

    /// What [`now_us`] reads.
    pub const SOURCE: &str = "performance.now()";

    /// Microseconds since an arbitrary origin.
    pub fn now_us() -> f64 {
        performance_now() * 1000.0
    }
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
mod imp {
    use std::sync::OnceLock;
    use std::time::Instant;

    static ORIGIN: OnceLock<Instant> = OnceLock::new();

    /// What [`now_us`] reads.
    pub const SOURCE: &str = "std::time::Instant";

    /// Microseconds since an arbitrary origin.
    pub fn now_us() -> f64 {
        ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e6
    }
}

pub use imp::{now_us, SOURCE};

/// The smallest step the clock shows, in µs (browsers coarsen `performance.now()`).
pub fn resolution_us() -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let start = now_us();
        let mut next = now_us();
        let deadline = start + 50_000.0;
        while next == start && next < deadline {
            next = now_us();
        }
        if next > start {
            best = best.min(next - start);
        }
    }
    best
}

/// Adds up the time spent in the sections it times.
#[derive(Debug, Default)]
pub struct Stopwatch {
    total_us: f64,
}

impl Stopwatch {
    /// Runs `f` and adds its duration.
    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = now_us();
        let out = f();
        self.total_us += now_us() - start;
        out
    }

    /// The time added so far, in µs.
    pub fn total_us(&self) -> f64 {
        self.total_us
    }
}
