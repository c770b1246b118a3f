//! The stages of a long command (`cargo xtask test`, `cargo xtask bench`): each prints
//! its time as it ends, a failure is kept and the command goes on, and the list of
//! timings closes the run.

use std::time::Instant;

/// A stage that ran.
pub struct Stage {
    pub name: String,
    pub seconds: f64,
    pub result: Result<(), String>,
}

/// The stages run so far, in order.
pub struct Stages {
    /// Put before each stage's name in the progress lines ("bench: "), or "".
    prefix: &'static str,
    pub done: Vec<Stage>,
}

impl Stages {
    pub fn new(prefix: &'static str) -> Stages {
        Stages {
            prefix,
            done: Vec::new(),
        }
    }

    /// Runs one stage and prints its time; its error is kept and returned as None.
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Option<T> {
        let prefix = self.prefix;
        eprintln!("\n==> {prefix}{name}");
        let started = Instant::now();
        let result = f();
        let seconds = started.elapsed().as_secs_f64();
        match &result {
            Ok(_) => eprintln!("==> {prefix}{name}: ok ({seconds:.1} s)"),
            Err(e) => eprintln!("==> {prefix}{name}: FAILED ({seconds:.1} s): {e}"),
        }
        let (result, value) = match result {
            Ok(v) => (Ok(()), Some(v)),
            Err(e) => (Err(e), None),
        };
        self.done.push(Stage {
            name: name.to_owned(),
            seconds,
            result,
        });
        value
    }

    /// "stage: error" for each stage that failed.
    pub fn failures(&self) -> Vec<String> {
        self.done
            .iter()
            .filter_map(|s| s.result.as_ref().err().map(|e| format!("{}: {e}", s.name)))
            .collect()
    }

    /// Prints each stage's time and outcome, the names padded to `width`.
    pub fn print_timings(&self, width: usize) {
        for s in &self.done {
            eprintln!(
                "  {:<width$} {:>7.1} s  {}",
                s.name,
                s.seconds,
                if s.result.is_ok() { "ok" } else { "FAILED" }
            );
        }
    }
}
