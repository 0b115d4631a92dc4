//! Measuring a child process: wall time, peak RSS, bytes read; page-cache eviction; memory cgroups.

use super::*;

/// Wall time, peak RSS and bytes read from the disk of one child process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measured {
    pub(crate) secs: f64,
    pub(crate) rss_mb: f64,
    pub(crate) read_mb: f64,
}

/// Runs `cmd` to completion and measures it (`wait4`'s resource usage).
pub(crate) fn measure(cmd: &mut Command, log: &Path) -> Result<Measured, String> {
    // Both streams go to the log (Siril reports on stdout, jupiter on
    // stderr), except for `cat`, whose output is the data: /dev/null.
    let errfile = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    if cmd.get_program() == "cat" {
        cmd.stdout(Stdio::null());
    } else {
        let outfile = errfile
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdout(outfile);
    }
    cmd.stderr(errfile);
    let t = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let mut status = 0i32;
    // SAFETY: rusage is plain old data, zero is a valid value for every field.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own unreaped child; the pointers are valid.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    if r < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: String = text
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(format!(
            "{:?} failed (status {status}): {tail}",
            cmd.get_program()
        ));
    }
    // `ru_maxrss` of a child is at least this process's peak RSS at the
    // fork (Linux carries it across exec); a jupiter run's report holds its
    // own peak (VmHWM), which is used when present.
    let args: Vec<_> = cmd.get_args().collect();
    let reported = args
        .iter()
        .position(|a| *a == "--report")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["peak_rss_mb"].as_f64())
        .filter(|&v| v > 0.0);
    Ok(Measured {
        secs,
        rss_mb: reported.unwrap_or(ru.ru_maxrss as f64 / 1024.0),
        read_mb: ru.ru_inblock as f64 * 512.0 / 1e6,
    })
}

/// Drops the file's pages from the page cache (clean pages only; ours are).
pub(crate) fn evict(path: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.sync_all().ok();
    // SAFETY: valid open descriptor; advisory call.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r != 0 {
        return Err(format!("posix_fadvise({}): error {r}", path.display()));
    }
    Ok(())
}

/// Runs `make` `repeat` times (after one warm-up when `warm`); all results.
pub(crate) fn repeat(
    n: usize,
    warm: bool,
    mut make: impl FnMut() -> Command,
    log: &Path,
) -> Result<Vec<Measured>, String> {
    if warm {
        measure(&mut make(), log)?;
    }
    (0..n).map(|_| measure(&mut make(), log)).collect()
}

/// (min, median) of the wall times, and the largest peak RSS.
pub(crate) fn summary(runs: &[Measured]) -> (f64, f64, f64) {
    let mut t: Vec<f64> = runs.iter().map(|m| m.secs).collect();
    t.sort_by(f64::total_cmp);
    let rss = runs.iter().map(|m| m.rss_mb).fold(0.0, f64::max);
    (t[0], t[t.len() / 2], rss)
}

pub(crate) fn fmt_run(runs: &[Measured]) -> String {
    let (min, med, rss) = summary(runs);
    format!("{min:.2} / {med:.2} | {rss:.0}")
}

/// A memory cgroup (v1) that is removed on drop.
pub(crate) struct MemCgroup(pub(crate) PathBuf);

impl MemCgroup {
    pub(crate) fn new(limit_bytes: u64) -> Result<MemCgroup, String> {
        let dir = PathBuf::from(format!(
            "/sys/fs/cgroup/memory/jupiter-e2e-{}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cg = MemCgroup(dir);
        std::fs::write(cg.0.join("memory.limit_in_bytes"), limit_bytes.to_string())
            .map_err(|e| format!("memory.limit_in_bytes: {e}"))?;
        Ok(cg)
    }

    /// `cmd` run inside the cgroup (through `sh`, which joins it and execs).
    pub(crate) fn wrap(&self, cmd: &Command) -> Command {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
                self.0.display()
            ))
            .arg(cmd.get_program())
            .args(cmd.get_args());
        sh
    }

    pub(crate) fn read(&self, name: &str) -> u64 {
        std::fs::read_to_string(self.0.join(name))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

pub(crate) fn mem_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<f64>().ok())
                })
        })
        .map_or(0.0, |kb| kb / 1048576.0)
}
