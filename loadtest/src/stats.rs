//! Percentiles, process readings (/proc) and the progress bar style.

use serde_json::{json, Value};
use std::time::Duration;

pub fn bar_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} {elapsed}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `{p50, p99, max, n}` in milliseconds.
pub fn summary(samples: &mut [Duration]) -> Value {
    if samples.is_empty() {
        return json!({"n": 0});
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        round(samples[i].as_secs_f64() * 1000.0)
    };
    json!({"n": samples.len(), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time a process has used so far: (user, system). System time includes the kernel's work
/// in the process's system calls; on loopback that is most of the TCP stack, both ends.
pub fn cpu_split(pid: Option<u32>) -> Option<(Duration, Duration)> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // USER_HZ is 100 on Linux.
    let ticks = |i: usize| -> Option<Duration> {
        Some(Duration::from_millis(
            fields.get(i)?.parse::<u64>().ok()? * 10,
        ))
    };
    Some((ticks(11)?, ticks(12)?))
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    cpu_split(pid).map(|(user, system)| user + system)
}

/// CPU use over a window, as a percentage of one core.
pub fn cpu_percent(
    before: Option<Duration>,
    after: Option<Duration>,
    wall: Duration,
) -> Option<f64> {
    let used = after?.checked_sub(before?)?;
    Some(round(100.0 * used.as_secs_f64() / wall.as_secs_f64()))
}
