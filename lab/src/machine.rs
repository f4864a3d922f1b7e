//! How busy the machine running the lab is. On Lambda every environment
//! has its own share of a host; in the lab they all share this machine,
//! and when its cores are saturated every duration and latency grows for
//! reasons AWS would not show. The report says when that happened.

use std::time::Duration;

/// At or above this share of all cores busy, the machine is saturated.
pub const SATURATED: f64 = 0.9;

/// CPU time counters of the whole machine, from `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    busy: u64,
    total: u64,
}

impl CpuTimes {
    /// Parses the first line of `/proc/stat`: `cpu user nice system idle
    /// iowait irq softirq steal ...`, in clock ticks. Idle and iowait are
    /// idle; everything else is busy.
    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().next()?;
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let ticks: Vec<u64> = fields
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        if ticks.len() < 5 {
            return None;
        }
        let total: u64 = ticks.iter().sum();
        let idle = ticks[3] + ticks[4];
        Some(CpuTimes {
            busy: total - idle,
            total,
        })
    }

    /// Reads them now; `None` where there is no `/proc/stat` (macOS,
    /// Windows), and the report then says the machine was not sampled.
    pub fn now() -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of all cores (0 to 1) that was busy between `earlier`
    /// and `self`.
    pub fn busy_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        (total > 0).then(|| busy as f64 / total as f64)
    }
}

/// The machine's logical cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU time used, user and system together, by whom `who` names: this
/// process, its children that have exited and been waited for, or the
/// calling thread (Linux only). `None` where the OS does not count it.
pub fn cpu_used(who: Who) -> Option<Duration> {
    let who = match who {
        Who::Process => libc::RUSAGE_SELF,
        Who::Children => libc::RUSAGE_CHILDREN,
        #[cfg(target_os = "linux")]
        Who::Thread => libc::RUSAGE_THREAD,
        #[cfg(not(target_os = "linux"))]
        Who::Thread => return None,
    };
    // SAFETY: getrusage writes one `rusage` into the zeroed struct it is
    // given and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

/// Whose CPU time [`cpu_used`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Process,
    Children,
    Thread,
}

/// The CPU a run cost, split between the lab itself (the gateway, the
/// fleet and the Runtime API), the function's processes and the load
/// generator, so the report can tell the laptop's share from the
/// function's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunCpu {
    pub lab: Duration,
    pub functions: Duration,
    pub load: Duration,
}

/// Readings taken when a run starts; [`CpuMeter::finish`] turns them into
/// a [`RunCpu`] once the run's processes have exited.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    process: Duration,
    children: Duration,
}

impl CpuMeter {
    pub fn start() -> Option<CpuMeter> {
        Some(CpuMeter {
            process: cpu_used(Who::Process)?,
            children: cpu_used(Who::Children)?,
        })
    }

    /// `load` is the CPU the load generator's own thread used; the rest of
    /// this process's time since `start` is the lab's.
    pub fn finish(&self, load: Duration) -> Option<RunCpu> {
        let process = cpu_used(Who::Process)?.checked_sub(self.process)?;
        let functions = cpu_used(Who::Children)?.checked_sub(self.children)?;
        Some(RunCpu {
            lab: process.saturating_sub(load),
            functions,
            load,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_is_read_as_busy_and_total_ticks() {
        let before = CpuTimes::parse("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n").unwrap();
        let after = CpuTimes::parse("cpu  250 0 100 850 50 0 0 0 0 0\n").unwrap();
        // 200 busy ticks of 250: 80 % of the machine.
        assert_eq!(after.busy_since(&before), Some(0.8));
        assert_eq!(before.busy_since(&before), None);
        assert_eq!(CpuTimes::parse("intr 1 2 3"), None);
        assert_eq!(CpuTimes::parse(""), None);
    }

    #[test]
    fn this_machine_is_sampled_where_it_has_proc_stat() {
        if cfg!(target_os = "linux") {
            assert!(CpuTimes::now().is_some());
        }
        assert!(cores() >= 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_is_split_between_the_load_thread_and_the_rest() {
        // Spins until the calling thread has used `d` of CPU.
        let spin = |d: Duration| {
            let mut x = 0u64;
            while cpu_used(Who::Thread).unwrap() < d {
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
        };
        let meter = CpuMeter::start().expect("getrusage counts this process");
        let start = cpu_used(Who::Thread).unwrap();
        let load = std::thread::spawn(move || {
            spin(Duration::from_millis(200));
            cpu_used(Who::Thread).unwrap()
        })
        .join()
        .unwrap();
        spin(start + Duration::from_millis(100));
        let cpu = meter.finish(load).unwrap();
        assert_eq!(cpu.load, load);
        assert!(load >= Duration::from_millis(200), "{cpu:?}");
        // The rest of the process (this thread, and any other test running
        // beside it) is the lab's; no child exited.
        assert!(cpu.lab >= Duration::from_millis(100), "{cpu:?}");
    }
}
