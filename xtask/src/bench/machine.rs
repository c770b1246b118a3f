//! Facts about the machine a run measured on: the CPU, memory and system, the tools'
//! and crates' versions, and how busy other processes kept the CPUs while a host ran.

use std::fs;
use std::path::Path;
use std::process::Command;

/// Interference above which a host's run is repeated once (the quieter run is kept).
pub const BUSY: f64 = 1.0;
/// The same for runs in Chromium: its helper processes are not waited for by their
/// launcher, so their CPU time counts as other processes' (about 0.9 CPU here).
pub const BUSY_CHROMIUM: f64 = 1.5;

/// The first line of a command's output (stdout, else stderr), or "unknown".
pub fn version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The load averages of /proc/loadavg (1, 5 and 15 minutes).
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU (with whether it has AES-NI), the memory and the system, for the report.
pub fn machine() -> (String, String, String) {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            let model = s
                .lines()
                .find(|l| l.starts_with("model name"))?
                .split(':')
                .nth(1)?
                .trim()
                .to_owned();
            let aes = s
                .lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|l| l.split_whitespace().any(|f| f == "aes"));
            Some(format!(
                "{model} ({})",
                if aes { "with AES-NI" } else { "no AES-NI" }
            ))
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kib: f64 = s
                .lines()
                .find(|l| l.starts_with("MemTotal"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into());
    let os = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    (cpu, mem, os)
}

/// The version of crate `name` in Cargo.lock (the first entry), or "?".
pub fn locked_version(root: &Path, name: &str) -> String {
    let lock = fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|i| lock[i + needle.len()..].split('"').next())
        .unwrap_or("?")
        .to_owned()
}

/// CPU time of the whole machine (busy and all) and of this process and its waited-for
/// children, in clock ticks.
struct CpuTimes {
    busy: u64,
    all: u64,
    ours: u64,
}

fn cpu_times() -> Option<CpuTimes> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user)
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?;
    let all = busy + v.get(3)? + v.get(4)?;
    let me = fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<u64> = me
        .rsplit(')')
        .next()?
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    Some(CpuTimes {
        busy,
        all,
        ours: fields.iter().sum(),
    })
}

/// How many CPUs other processes kept busy on average between `a` and `b`.
fn others_cpus(a: &CpuTimes, b: &CpuTimes, cpus: f64) -> Option<f64> {
    let elapsed = (b.all.checked_sub(a.all)? as f64 / cpus).max(1.0);
    let others = b.busy.checked_sub(a.busy)? as f64 - b.ours.checked_sub(a.ours)? as f64;
    Some((others / elapsed).max(0.0))
}

/// Runs a measurement once; returns it and how many CPUs other processes kept busy.
pub fn measured<T>(f: impl FnOnce() -> Result<T, String>) -> Result<(T, Option<f64>), String> {
    let cpus: f64 = version("nproc", &[]).parse().unwrap_or(1.0);
    let before = cpu_times();
    let value = f()?;
    let busy = before
        .zip(cpu_times())
        .and_then(|(a, b)| others_cpus(&a, &b, cpus));
    Ok((value, busy))
}

/// Runs a measurement; if other processes kept more than `limit` CPUs busy meanwhile,
/// runs it once more and keeps the quieter run. Returns it and that interference.
pub fn quiet<T>(
    limit: f64,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<(T, Option<f64>), String> {
    let cpus: f64 = version("nproc", &[]).parse().unwrap_or(1.0);
    let mut best: Option<(T, Option<f64>)> = None;
    for attempt in 0..2 {
        let before = cpu_times();
        let value = f()?;
        let busy = before
            .zip(cpu_times())
            .and_then(|(a, b)| others_cpus(&a, &b, cpus));
        eprintln!(
            "other processes kept {} CPUs busy meanwhile",
            busy.map_or("?".into(), |b| format!("{b:.2}"))
        );
        let better = match (&best, busy) {
            (None, _) => true,
            (Some((_, Some(old))), Some(new)) => new < *old,
            _ => false,
        };
        if better {
            best = Some((value, busy));
        }
        if attempt == 0 && busy.is_some_and(|b| b > limit) {
            eprintln!("the machine was busy: measuring once more");
            continue;
        }
        break;
    }
    best.ok_or_else(|| "no run".to_owned())
}
