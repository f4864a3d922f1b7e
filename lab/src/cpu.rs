//! Lambda's CPU share for a memory size, enforced through the OS.
//!
//! Lambda gives a function CPU in proportion to its memory: 1,769 MB is one
//! vCPU, and 10,240 MB is up to six. On a laptop every environment would
//! otherwise get a whole core, and a 128 MB function would look fourteen
//! times faster than it is on AWS. Where Linux lets the lab, each
//! environment runs in a cgroup of its own whose CPU quota is its share
//! (cgroup v2 `cpu.max`, or cgroup v1 `cpu.cfs_quota_us`); elsewhere the
//! share is only modelled, and [`CpuLimits::describe`] says so: a report
//! never passes a modelled figure off as a measured one.
//!
//! The quota is given per 10 ms rather than the kernel's default 100 ms, so
//! a request of 1-2 ms is slowed evenly instead of running at full speed
//! and then standing still for most of 100 ms.

use std::ffi::{CStr, CString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::ids::random_uuid;

/// The memory size that gets one vCPU on Lambda.
pub const MB_PER_VCPU: u32 = 1769;
/// The most vCPUs a function gets (at 10,240 MB).
pub const MAX_VCPUS: f64 = 6.0;
/// Lambda's memory sizes, in MB.
pub const MEMORY_RANGE_MB: std::ops::RangeInclusive<u32> = 128..=10_240;
/// The period the quota is given per, in µs: short, so short requests are
/// throttled smoothly.
pub const PERIOD_US: u64 = 10_000;
/// The smallest quota the kernel accepts, in µs (it rejects less with
/// EINVAL).
pub const MIN_QUOTA_US: u64 = 1_000;

/// What the lab suggests where it cannot enforce the share.
const HINT: &str = "run as root, or on cgroup v2 delegate cpu to your user \
     (systemd-run --user --scope -p CPUQuota=... caps the whole lab at once, not each environment)";

/// The CPU a memory size gets: Lambda's share, and what is left of it on
/// this machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuShare {
    memory_mb: u32,
    lambda_cores: f64,
    cores: f64,
    machine_cores: usize,
}

/// A CFS bandwidth limit: `quota_us` of CPU time in every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub quota_us: u64,
    pub period_us: u64,
}

impl CpuShare {
    /// The share of `memory_mb` (held to Lambda's 128-10,240 MB) on a
    /// machine with `machine_cores`: memory / 1,769 cores, at most six, and
    /// never more than the machine has.
    pub fn new(memory_mb: u32, machine_cores: usize) -> CpuShare {
        let memory = memory_mb.clamp(*MEMORY_RANGE_MB.start(), *MEMORY_RANGE_MB.end());
        let lambda_cores = (f64::from(memory) / f64::from(MB_PER_VCPU)).min(MAX_VCPUS);
        let machine_cores = machine_cores.max(1);
        CpuShare {
            memory_mb,
            lambda_cores,
            cores: lambda_cores.min(machine_cores as f64),
            machine_cores,
        }
    }

    pub fn memory_mb(&self) -> u32 {
        self.memory_mb
    }

    /// The cores Lambda gives this memory size.
    pub fn lambda_cores(&self) -> f64 {
        self.lambda_cores
    }

    /// The cores an environment gets here: Lambda's share, or the whole
    /// machine where that is less.
    pub fn cores(&self) -> f64 {
        self.cores
    }

    /// Whether this machine has fewer cores than Lambda would give.
    pub fn capped_by_machine(&self) -> bool {
        self.cores < self.lambda_cores
    }

    /// CPU time per 10 ms period, in µs: the share as a person reads it
    /// (128 MB: 724 µs).
    pub fn per_period_us(&self) -> u64 {
        (self.cores * PERIOD_US as f64).round() as u64
    }

    /// What the kernel is told. Where the share of 10 ms is under the
    /// kernel's 1 ms minimum (below 177 MB), the quota is that minimum and
    /// the period grows to keep the same ratio: 128 MB is 1,000 µs per
    /// 13,820 µs.
    pub fn quota(&self) -> Quota {
        let quota_us = self.per_period_us();
        if quota_us >= MIN_QUOTA_US {
            return Quota {
                quota_us,
                period_us: PERIOD_US,
            };
        }
        Quota {
            quota_us: MIN_QUOTA_US,
            period_us: (MIN_QUOTA_US as f64 / self.cores).round() as u64,
        }
    }

    /// "128 MB gets 0.072 of a core (0.72 ms per 10 ms)", and where the
    /// machine caps it, what Lambda would have given.
    fn text(&self, verb: &str) -> String {
        let per_10ms = format!("{:.2} ms per 10 ms", self.per_period_us() as f64 / 1000.0);
        if self.capped_by_machine() {
            format!(
                "{} MB {verb} {} on Lambda, but this machine has {} {}, so it gets {} ({per_10ms})",
                self.memory_mb,
                cores_text(self.lambda_cores),
                self.machine_cores,
                if self.machine_cores == 1 {
                    "core"
                } else {
                    "cores"
                },
                cores_text(self.cores),
            )
        } else {
            format!(
                "{} MB {verb} {} ({per_10ms})",
                self.memory_mb,
                cores_text(self.cores)
            )
        }
    }
}

fn cores_text(cores: f64) -> String {
    if cores < 0.995 {
        format!("{cores:.3} of a core")
    } else if cores < 1.005 {
        "1.00 core".into()
    } else {
        format!("{cores:.2} cores")
    }
}

/// How the lab holds environments to their share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// A cgroup v2 per environment, limited through `cpu.max`.
    CgroupV2,
    /// A cgroup v1 per environment, limited through `cpu.cfs_quota_us`.
    CgroupV1,
    /// Nothing is enforced: every environment may use the whole machine.
    Modelled,
}

/// The lab's way of giving environments their CPU share, found once per
/// run ([`CpuLimits::detect`]) and shared by every function that opts in
/// through the function configuration's `cpu`. While it is alive it
/// owns this run's cgroup (`workshop-lab-<pid>-<random>`), which goes when
/// it and the last environment in it are gone.
#[derive(Debug)]
pub struct CpuLimits {
    how: How,
    machine_cores: usize,
    next: AtomicU64,
}

#[derive(Debug)]
enum How {
    Cgroup(Arc<RunDir>),
    Modelled { reason: String },
}

impl CpuLimits {
    /// Finds a way to enforce, in this order: cgroup v2 (a `cpu.max` under
    /// this process's own cgroup, which must have `cpu` in its
    /// `cgroup.subtree_control`), cgroup v1 (a writable `cpu` hierarchy),
    /// or else none, with the reason.
    pub fn detect() -> CpuLimits {
        let machine_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        CpuLimits {
            how: detect_how(),
            machine_cores,
            next: AtomicU64::new(1),
        }
    }

    /// Limits that only model the share, for `reason`.
    pub fn modelled(reason: impl Into<String>) -> CpuLimits {
        CpuLimits {
            how: How::Modelled {
                reason: reason.into(),
            },
            machine_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            next: AtomicU64::new(1),
        }
    }

    pub fn enforcement(&self) -> Enforcement {
        match &self.how {
            How::Cgroup(run) if run.v2 => Enforcement::CgroupV2,
            How::Cgroup(_) => Enforcement::CgroupV1,
            How::Modelled { .. } => Enforcement::Modelled,
        }
    }

    pub fn is_enforced(&self) -> bool {
        self.enforcement() != Enforcement::Modelled
    }

    /// Why the share is only modelled; `None` where it is enforced.
    pub fn reason(&self) -> Option<&str> {
        match &self.how {
            How::Modelled { reason } => Some(reason),
            How::Cgroup(_) => None,
        }
    }

    /// The cores this machine gives the lab (what it caps a share at).
    pub fn machine_cores(&self) -> usize {
        self.machine_cores
    }

    pub fn share(&self, memory_mb: u32) -> CpuShare {
        CpuShare::new(memory_mb, self.machine_cores)
    }

    /// One line for a report, e.g. "CPU share enforced by cgroup v1
    /// cpu.cfs_quota_us: 128 MB gets 0.072 of a core (0.72 ms per 10 ms)",
    /// or "CPU share modelled, not enforced: (the reason); ...". Never silent.
    pub fn describe(&self, memory_mb: u32) -> String {
        let share = self.share(memory_mb);
        match &self.how {
            How::Cgroup(run) if run.v2 => {
                format!(
                    "CPU share enforced by cgroup v2 cpu.max: {}",
                    share.text("gets")
                )
            }
            How::Cgroup(_) => format!(
                "CPU share enforced by cgroup v1 cpu.cfs_quota_us: {}",
                share.text("gets")
            ),
            How::Modelled { reason } => format!(
                "CPU share modelled, not enforced: {reason}. On Lambda {}; here an environment may use all {} of this machine's cores",
                share.text("would get"),
                self.machine_cores
            ),
        }
    }

    /// A cgroup for environment `id`, limited to the share of `memory_mb`,
    /// for the process to join before it runs; `None` where nothing is
    /// enforced.
    pub(crate) fn environment(&self, id: usize, memory_mb: u32) -> io::Result<Option<EnvCgroup>> {
        let How::Cgroup(run) = &self.how else {
            return Ok(None);
        };
        // Ids are per fleet and several fleets may share these limits.
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = run.limited(&format!("env-{id}-{n}"), self.share(memory_mb).quota())?;
        Ok(Some(EnvCgroup::new(dir, run.clone())))
    }

    /// This run's cgroup, where enforced.
    #[cfg(test)]
    pub(crate) fn run_dir(&self) -> Option<&Path> {
        match &self.how {
            How::Cgroup(run) => Some(&run.dir),
            How::Modelled { .. } => None,
        }
    }
}

/// The cgroup one environment runs in. Dropped, it is removed once the
/// process in it has gone.
#[derive(Debug)]
pub(crate) struct EnvCgroup {
    dir: PathBuf,
    procs: CString,
    removed: bool,
    /// Keeps the run's cgroup until this one is gone.
    _run: Arc<RunDir>,
}

impl EnvCgroup {
    fn new(dir: PathBuf, run: Arc<RunDir>) -> EnvCgroup {
        use std::os::unix::ffi::OsStrExt;
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .expect("a cgroup path has no NUL");
        EnvCgroup {
            dir,
            procs,
            removed: false,
            _run: run,
        }
    }

    /// Its `cgroup.procs`, for [`join`] in the child.
    pub(crate) fn procs(&self) -> &CStr {
        &self.procs
    }

    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl EnvCgroup {
    /// Ends what is left in the cgroup and removes it, waiting (without
    /// blocking) up to `patience` for the processes to be gone.
    pub(crate) async fn remove(mut self, patience: Duration) {
        let deadline = std::time::Instant::now() + patience;
        while !self.try_remove() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.removed = true;
    }

    /// Kills the members, then removes the cgroup; false while one is
    /// still exiting.
    fn try_remove(&self) -> bool {
        // Lambda ends the whole sandbox: whatever the bootstrap started
        // goes too, and with it the last hold on the cgroup.
        kill_members(&self.dir);
        match std::fs::remove_dir(&self.dir) {
            Err(e) => e.raw_os_error() != Some(libc::EBUSY),
            Ok(()) => true,
        }
    }
}

impl Drop for EnvCgroup {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // A killed process is gone within a millisecond or so; one that
        // takes longer is left to the run's cleanup ([`RunDir`]).
        for _ in 0..20 {
            if self.try_remove() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// SIGKILL to every process in the cgroup at `dir`.
fn kill_members(dir: &Path) {
    let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    let pids = procs
        .lines()
        .filter_map(|p| p.trim().parse::<libc::pid_t>().ok());
    // Never 0 or -1, which would name this process group or every process.
    for pid in pids.filter(|&pid| pid > 0) {
        // SAFETY: kill(2) on a process of this environment's cgroup.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is
/// `procs`. It runs in the forked child before exec, so that INIT is held
/// to the share too: only async-signal-safe calls, and no allocation.
#[cfg(unix)]
pub(crate) fn join(procs: &CStr) -> io::Result<()> {
    // SAFETY: open, write and close on a NUL-terminated path and a static
    // buffer; the descriptor is closed on every path.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let error = io::Error::last_os_error();
        libc::close(fd);
        if written != 1 {
            return Err(error);
        }
    }
    Ok(())
}

/// This run's cgroup, which every environment's is made under. The name is
/// new each run, so one a crashed run left behind is never in the way.
#[derive(Debug)]
struct RunDir {
    dir: PathBuf,
    v2: bool,
}

impl RunDir {
    fn create(parent: &Path, v2: bool) -> Result<RunDir, String> {
        let name = format!(
            "workshop-lab-{}-{}",
            std::process::id(),
            &random_uuid().simple().to_string()[..8]
        );
        let dir = parent.join(name);
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot create a cgroup in {}: {e}", parent.display()))?;
        let run = RunDir { dir, v2 };
        if v2 {
            write(&run.dir.join("cgroup.subtree_control"), "+cpu")
                .map_err(|e| format!("cannot enable cpu for its children: {e}"))?;
        }
        // A child limited to the smallest share, and gone again: proof that
        // quotas can be written here.
        let probe = run
            .limited("probe", CpuShare::new(128, 1).quota())
            .map_err(|e| format!("cannot limit a cgroup's CPU: {e}"))?;
        let _ = std::fs::remove_dir(probe);
        Ok(run)
    }

    /// Creates the child `name` with `quota`.
    fn limited(&self, name: &str, quota: Quota) -> io::Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir(&dir).map_err(|e| with_path(&dir, e))?;
        let limited = if self.v2 {
            write(
                &dir.join("cpu.max"),
                &format!("{} {}", quota.quota_us, quota.period_us),
            )
        } else {
            // The period first: a fresh cgroup has no quota to conflict with.
            write(&dir.join("cpu.cfs_period_us"), &quota.period_us.to_string())
                .and_then(|()| write(&dir.join("cpu.cfs_quota_us"), &quota.quota_us.to_string()))
        };
        match limited {
            Ok(()) => Ok(dir),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // The last environment has gone; any cgroup one could not remove
        // (its process was slow to die) goes now, within a second. One that
        // is still busy after that is left, harmlessly: the next run's
        // cgroup has another name.
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let children = || {
            std::fs::read_dir(&self.dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_type().is_ok_and(|t| t.is_dir()).then(|| e.path()))
        };
        for child in children() {
            kill_members(&child);
            while std::fs::remove_dir(&child).is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY))
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
                kill_members(&child);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Writes `value` to a file that must exist (cgroup files are made by the
/// kernel, never by the lab).
fn write(path: &Path, value: &str) -> io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| with_path(path, e))
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn detect_how() -> How {
    if !cfg!(target_os = "linux") {
        return How::Modelled {
            reason: format!("cgroups are Linux's, and this is {}", std::env::consts::OS),
        };
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mounts = parse_mountinfo(&mountinfo);
    let v2 = match try_v2(&mounts, &membership) {
        Ok(run) => return How::Cgroup(Arc::new(run)),
        Err(why) => why,
    };
    let v1 = match try_v1(&mounts, &membership) {
        Ok(run) => return How::Cgroup(Arc::new(run)),
        Err(why) => why,
    };
    How::Modelled {
        reason: format!("cgroup v2: {v2}; cgroup v1: {v1}; {HINT}"),
    }
}

fn try_v2(mounts: &[Mount], membership: &str) -> Result<RunDir, String> {
    let mount = mounts
        .iter()
        .find(|m| m.fstype == "cgroup2")
        .ok_or("not mounted")?;
    let own = membership
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no v2 cgroup")?;
    let base = mount.path_of(own);
    let controllers = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    if !has_word(&controllers, "cpu") {
        return Err(format!(
            "the cpu controller is not available in {} (it has: {})",
            base.display(),
            words_or_none(&controllers)
        ));
    }
    let subtree = std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
    if !has_word(&subtree, "cpu") {
        return Err(format!(
            "cpu is not enabled for the children of {} (cgroup.subtree_control: {})",
            base.display(),
            words_or_none(&subtree)
        ));
    }
    RunDir::create(&base, true)
}

fn try_v1(mounts: &[Mount], membership: &str) -> Result<RunDir, String> {
    let mount = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && has_item(&m.options, "cpu"))
        .ok_or("no cpu hierarchy mounted")?;
    let own = membership
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            has_item(controllers, "cpu").then_some(path)
        })
        .unwrap_or("/");
    RunDir::create(&mount.path_of(own), false)
}

/// One cgroup line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// The cgroup mounted there (not `/` inside some containers).
    root: String,
    point: PathBuf,
    fstype: String,
    /// The super options; for cgroup v1, its controllers among them.
    options: String,
}

impl Mount {
    /// Where the cgroup `path` (as `/proc/self/cgroup` names it) is.
    fn path_of(&self, path: &str) -> PathBuf {
        let path = path.trim();
        let inside = path.strip_prefix(self.root.as_str()).unwrap_or(path);
        match inside.trim_start_matches('/') {
            "" => self.point.clone(),
            inside => self.point.join(inside),
        }
    }
}

/// The cgroup mounts: `id parent dev root point opts... - fstype source super`.
fn parse_mountinfo(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split_whitespace().collect();
            let mut right = right.split_whitespace();
            let fstype = right.next()?;
            if !fstype.starts_with("cgroup") {
                return None;
            }
            let options = right.nth(1).unwrap_or_default();
            Some(Mount {
                root: (*left.get(3)?).into(),
                point: PathBuf::from(left.get(4)?),
                fstype: fstype.into(),
                options: options.into(),
            })
        })
        .collect()
}

fn has_word(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|w| w == word)
}

fn has_item(list: &str, item: &str) -> bool {
    list.split(',').any(|w| w == item)
}

fn words_or_none(list: &str) -> String {
    let words: Vec<&str> = list.split_whitespace().collect();
    if words.is_empty() {
        "none".into()
    } else {
        words.join(" ")
    }
}

/// CPU time a process has used, what Lambda Insights reports as
/// `cpu_total_time`: the sum over its threads of the nanoseconds the
/// scheduler ran them (`/proc/<pid>/task/*/schedstat`), or, where that is
/// not kept, user and system time from `/proc/<pid>/stat`, its own and its
/// waited-for children's, in clock ticks (10 ms). `None` once the process
/// is gone, and where there is no `/proc`.
pub fn process_cpu_time(pid: u32) -> Option<Duration> {
    if let Some(ns) = schedstat_ns(pid) {
        return Some(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if per_second <= 0 {
        return None;
    }
    let ticks = stat_ticks(&stat)?;
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// The nanoseconds on CPU of every live thread of `pid`.
fn schedstat_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread that ended since the listing is simply not counted.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        threads += 1;
    }
    (threads > 0).then_some(total)
}

/// utime + stime + cutime + cstime, in clock ticks. The command name
/// before them is in parentheses and may hold spaces and parentheses
/// itself, so fields are counted from the last `)`.
fn stat_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // After the name: state (field 3) ... utime (14), stime, cutime, cstime.
    let fields: Vec<&str> = after_name.split_whitespace().skip(11).take(4).collect();
    if fields.len() < 4 {
        return None;
    }
    let mut ticks = 0u64;
    for f in fields {
        ticks += f.parse::<i64>().ok()?.max(0) as u64;
    }
    Some(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_1769_mb_per_core_capped_by_lambda_and_the_machine() {
        let q = |quota_us, period_us| Quota {
            quota_us,
            period_us,
        };
        let share = CpuShare::new(128, 2);
        assert_eq!(share.per_period_us(), 724);
        assert!((share.cores() - 128.0 / 1769.0).abs() < 1e-9);
        // Under the kernel's 1 ms minimum: the period grows, the ratio stays.
        assert_eq!(share.quota(), q(1_000, 13_820));
        let ratio = 1_000.0 / 13_820.0;
        assert!((ratio - share.cores()).abs() / share.cores() < 1e-3);

        assert_eq!(CpuShare::new(176, 2).quota(), q(1_000, 10_051));
        assert_eq!(CpuShare::new(177, 2).quota(), q(1_001, 10_000));
        assert_eq!(CpuShare::new(512, 2).quota(), q(2_894, 10_000));
        assert_eq!(CpuShare::new(1024, 2).quota(), q(5_789, 10_000));
        assert_eq!(CpuShare::new(1769, 2).quota(), q(10_000, 10_000));

        // 3,008 MB is 1.70 cores: within 2 cores, capped by 1.
        let two = CpuShare::new(3008, 2);
        assert_eq!(two.quota(), q(17_004, 10_000));
        assert!(!two.capped_by_machine());
        let one = CpuShare::new(3008, 1);
        assert_eq!(one.quota(), q(10_000, 10_000));
        assert!(one.capped_by_machine());
        assert!((one.lambda_cores() - 3008.0 / 1769.0).abs() < 1e-9);

        // The largest function: 5.79 cores by the ratio (Lambda rounds it
        // up to 6, which is the cap), held to the machine's 2 here.
        assert_eq!(CpuShare::new(10_240, 2).quota(), q(20_000, 10_000));
        assert_eq!(CpuShare::new(10_240, 8).quota(), q(57_886, 10_000));
        assert!(CpuShare::new(u32::MAX, 64).cores() <= MAX_VCPUS);
        // Outside Lambda's range the nearest size counts.
        assert_eq!(CpuShare::new(0, 2).quota(), CpuShare::new(128, 2).quota());
    }

    fn limits(how: How, machine_cores: usize) -> CpuLimits {
        CpuLimits {
            how,
            machine_cores,
            next: AtomicU64::new(1),
        }
    }

    fn fake_run(v2: bool) -> How {
        How::Cgroup(Arc::new(RunDir {
            dir: PathBuf::from("/nonexistent/workshop-lab-test"),
            v2,
        }))
    }

    #[test]
    fn descriptions_say_what_is_enforced_and_how() {
        assert_eq!(
            limits(fake_run(false), 2).describe(128),
            "CPU share enforced by cgroup v1 cpu.cfs_quota_us: 128 MB gets 0.072 of a core (0.72 ms per 10 ms)"
        );
        assert_eq!(
            limits(fake_run(true), 2).describe(1769),
            "CPU share enforced by cgroup v2 cpu.max: 1769 MB gets 1.00 core (10.00 ms per 10 ms)"
        );
        assert_eq!(
            limits(fake_run(false), 2).describe(3008),
            "CPU share enforced by cgroup v1 cpu.cfs_quota_us: 3008 MB gets 1.70 cores (17.00 ms per 10 ms)"
        );
        assert_eq!(
            limits(fake_run(false), 2).describe(10_240),
            "CPU share enforced by cgroup v1 cpu.cfs_quota_us: 10240 MB gets 5.79 cores on Lambda, \
             but this machine has 2 cores, so it gets 2.00 cores (20.00 ms per 10 ms)"
        );
        let modelled = limits(
            How::Modelled {
                reason: "no cgroups".into(),
            },
            2,
        );
        assert!(!modelled.is_enforced());
        assert_eq!(modelled.enforcement(), Enforcement::Modelled);
        assert_eq!(modelled.reason(), Some("no cgroups"));
        assert_eq!(
            modelled.describe(128),
            "CPU share modelled, not enforced: no cgroups. On Lambda 128 MB would get 0.072 of a core \
             (0.72 ms per 10 ms); here an environment may use all 2 of this machine's cores"
        );
        assert_eq!(
            modelled.environment(1, 128).unwrap().map(|c| c.dir.clone()),
            None
        );
    }

    #[test]
    fn proc_stat_times_are_counted_after_the_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 120 0 0 0 \
                    250 30 7 3 20 0 1 0 123 4096 100 18446744073709551615";
        assert_eq!(stat_ticks(stat), Some(290));
        assert_eq!(stat_ticks("4242 (short) S 1 2"), None);
        assert_eq!(stat_ticks(""), None);
        if cfg!(target_os = "linux") {
            let me = process_cpu_time(std::process::id()).expect("this process has a stat");
            assert!(me < Duration::from_secs(24 * 3600));
            assert_eq!(process_cpu_time(u32::MAX), None);
        }
    }

    #[test]
    fn cgroup_mounts_and_membership_are_read_as_linux_writes_them() {
        let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
50 1 8:1 / / rw - ext4 /dev/sda1 rw";
        let mounts = parse_mountinfo(mountinfo);
        assert_eq!(mounts.len(), 4, "{mounts:?}");
        let v2 = mounts.iter().find(|m| m.fstype == "cgroup2").unwrap();
        assert_eq!(v2.point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(v2.path_of("/"), Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(
            v2.path_of("/user.slice/app.scope\n"),
            Path::new("/sys/fs/cgroup/unified/user.slice/app.scope")
        );
        let cpu: Vec<_> = mounts
            .iter()
            .filter(|m| m.fstype == "cgroup" && has_item(&m.options, "cpu"))
            .collect();
        assert_eq!(cpu.len(), 2, "cpuset is not cpu");
        // Inside a container the mount's root is the container's cgroup.
        assert_eq!(
            cpu[1].path_of("/docker/abc"),
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert!(has_word("cpuset cpu io", "cpu") && !has_word("cpuset io", "cpu"));
        assert_eq!(words_or_none(" \n"), "none");
    }

    #[test]
    fn detection_enforces_or_says_why() {
        let limits = CpuLimits::detect();
        eprintln!("{}", limits.describe(128));
        match limits.run_dir().map(Path::to_path_buf) {
            Some(run) => {
                assert!(run.is_dir(), "{}", run.display());
                assert!(
                    limits
                        .describe(128)
                        .starts_with("CPU share enforced by cgroup v")
                );
                assert!(!run.join("probe").exists(), "the probe is gone");
                drop(limits);
                assert!(!run.exists(), "the run's cgroup goes with the limits");
            }
            None => {
                let reason = limits.reason().expect("a reason");
                assert!(reason.contains("cgroup v1: "), "{reason}");
                assert!(reason.contains("systemd-run --user --scope"), "{reason}");
                assert!(
                    limits
                        .describe(128)
                        .starts_with("CPU share modelled, not enforced: ")
                );
            }
        }
    }
}
