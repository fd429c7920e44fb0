//! The clocks: wall time, CPU time and the time spent waiting for a CPU, and
//! the best of a step's repetitions.

use std::time::{Duration, Instant};

/// This thread's time on a CPU and waiting for one (ns), from the scheduler's
/// statistics: on a busy machine the wall clock also counts time spent
/// waiting behind other processes, the CPU time does not.
pub fn schedstat() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// The whole process's time on a CPU (ns), every thread included, also the
/// ones that have ended (from `/proc/self/stat`: user + system time in
/// clock ticks, 100 per second on Linux).
pub fn process_cpu() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: count fields after its ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

/// Whose CPU time a [`Clock`] reads.
#[derive(Clone, Copy)]
pub enum Cpu {
    /// The whole process, all threads: the work a step does on every core
    /// (in clock ticks of 10 ms).
    Process,
    /// The calling thread alone, to the nanosecond: with the wait, it tells
    /// the time the thread was blocked (on the disk).
    Thread,
}

pub struct Clock {
    wall: Instant,
    sched: Option<(u64, u64)>,
    process: Option<u64>,
}

#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub wall: Duration,
    /// CPU time, of the process or the thread as the clock was started.
    pub cpu: Option<Duration>,
    /// This thread's time waiting for a CPU.
    pub wait: Option<Duration>,
}

impl Clock {
    pub fn start(cpu: Cpu) -> Clock {
        let sched = schedstat();
        let process = match cpu {
            Cpu::Process => process_cpu(),
            Cpu::Thread => None,
        };
        Clock {
            wall: Instant::now(),
            sched,
            process,
        }
    }

    pub fn stop(&self) -> Sample {
        let wall = self.wall.elapsed();
        let d = match (self.sched, schedstat()) {
            (Some(a), Some(b)) => Some((b.0.saturating_sub(a.0), b.1.saturating_sub(a.1))),
            _ => None,
        };
        let cpu = match self.process {
            Some(a) => process_cpu().map(|b| Duration::from_nanos(b.saturating_sub(a))),
            None => d.map(|d| Duration::from_nanos(d.0)),
        };
        Sample {
            wall,
            cpu,
            wait: d.map(|d| Duration::from_nanos(d.1)),
        }
    }
}

/// A step's repetitions: the best and the sums.
#[derive(Default, Clone, Copy)]
pub struct Measure {
    /// The sample with the best wall time.
    pub best: Option<Sample>,
    /// Best CPU time of the repetitions.
    pub best_cpu: Option<Duration>,
    /// Time spent waiting for a CPU, summed over the repetitions.
    pub wait: Duration,
    /// Wall time summed over the repetitions.
    pub total: Duration,
}

impl Measure {
    pub fn add(&mut self, t: Sample) {
        if self.best.is_none_or(|b| t.wall < b.wall) {
            self.best = Some(t);
        }
        if let Some(c) = t.cpu {
            self.best_cpu = Some(self.best_cpu.map_or(c, |b| b.min(c)));
        }
        self.wait += t.wait.unwrap_or_default();
        self.total += t.wall;
    }

    /// The best wall time, in seconds.
    pub fn secs(&self) -> f64 {
        self.best.map_or(0.0, |b| b.wall.as_secs_f64())
    }

    /// `units` (rows, users) per second of the best wall time.
    pub fn rate(&self, units: u64) -> f64 {
        units as f64 / self.secs().max(1e-9)
    }

    /// `units` per second of the best CPU time; `None` when the step is too
    /// short for the scheduler's accounting, which advances in ticks of a
    /// few milliseconds.
    pub fn cpu_rate(&self, units: u64) -> Option<f64> {
        self.best_cpu
            .filter(|_| self.secs() >= 0.05)
            .map(|c| units as f64 / c.as_secs_f64().max(1e-9))
    }

    /// The share of the wall time spent waiting for a CPU, in percent.
    pub fn waited(&self) -> f64 {
        100.0 * self.wait.as_secs_f64() / self.total.as_secs_f64().max(1e-9)
    }

    /// Off the CPU and not waiting for one, in the best run: blocked (on
    /// the disk: reads, writes, fsync). Needs a [`Cpu::Thread`] clock.
    pub fn blocked(&self) -> Option<Duration> {
        let b = self.best?;
        Some(b.wall.saturating_sub(b.cpu? + b.wait?))
    }
}
