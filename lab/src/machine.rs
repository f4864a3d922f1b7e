//! How busy the machine running the lab is. On Lambda every environment
//! has its own share of a host; in the lab they all share this machine,
//! and when its cores are saturated every duration and latency grows for
//! reasons AWS would not show. The report says when that happened.

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
}
