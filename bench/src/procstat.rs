//! CPU time and resident memory of a process and its descendants, read from /proc, and
//! the file-descriptor limit the harness needs for thousands of sockets.
//!
//! CPU is utime + stime of every thread (the kernel sums threads into the process's
//! `stat`), in clock ticks (1/100 s on Linux): coarse, so scenarios measure windows of
//! seconds. A process tree is summed because a server may run helpers (node may, and the
//! PostgreSQL server is one process per connection).

use std::collections::HashMap;
use std::fs;
use std::sync::Arc;

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_second() -> f64 {
    #[allow(unsafe_code, reason = "a libc call with no safe wrapper in std")]
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Seconds of CPU (user + system) used so far by `pid` alone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// `pid` and every live descendant of it.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
                && let Some(parent) = parent_of(p)
            {
                all.push((p, parent));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(
            all.iter()
                .filter(|(_, parent)| *parent == p)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    out
}

/// Every process whose command name is `comm` (e.g. `postgres`).
pub fn by_name(comm: &str) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
                && fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm)
            {
                out.push(p);
            }
        }
    }
    out
}

/// Resident memory of `pid` in bytes (VmRSS).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Finds a group's processes anew at each sample (e.g. PostgreSQL backends by
/// `application_name`, which come and go with a connection pool).
pub type Finder = Arc<dyn Fn() -> Vec<u32> + Send + Sync>;

#[derive(Clone)]
struct Group {
    label: &'static str,
    pids: Vec<u32>,
    find: Option<Finder>,
}

/// Processes whose CPU is summed, in labelled groups: the first group is the server under
/// test (its memory is the one reported), the others are services it needs (a bus
/// server, database backends), whose CPU is reported beside it. Processes that exit
/// between two samples lose their CPU from the sum, so sample trees whose members live
/// through the window.
#[derive(Clone)]
pub struct Watched {
    groups: Vec<Group>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for g in &self.groups {
            m.entry(&g.label, &g.pids);
        }
        m.finish()
    }
}

impl Watched {
    /// `root` and its descendants, as they are now.
    pub fn tree(root: u32) -> Watched {
        Watched::pids(tree(root))
    }

    /// Exactly these processes.
    pub fn pids(pids: Vec<u32>) -> Watched {
        Watched {
            groups: vec![Group {
                label: "server",
                pids,
                find: None,
            }],
        }
    }

    /// Nothing yet; add groups with [`Watched::with`] and [`Watched::with_finder`].
    pub fn empty() -> Watched {
        Watched { groups: Vec::new() }
    }

    /// Adds a group of fixed processes.
    pub fn with(mut self, label: &'static str, pids: Vec<u32>) -> Watched {
        self.groups.push(Group {
            label,
            pids,
            find: None,
        });
        self
    }

    /// Adds a group whose processes are looked up at every [`Watched::find`].
    pub fn with_finder(mut self, label: &'static str, find: Finder) -> Watched {
        self.groups.push(Group {
            label,
            pids: Vec::new(),
            find: Some(find),
        });
        self
    }

    /// Adds the processes now descended from `root` to the first group (for trees that
    /// grow).
    pub fn refresh(&mut self, root: u32) {
        if self.groups.is_empty() {
            *self = Watched::pids(Vec::new());
        }
        let pids = &mut self.groups[0].pids;
        for p in tree(root) {
            if !pids.contains(&p) {
                pids.push(p);
            }
        }
    }

    /// CPU of every group's known processes (finders are not consulted).
    pub fn cpu_seconds(&self) -> f64 {
        self.groups
            .iter()
            .flat_map(|g| &g.pids)
            .filter_map(|p| cpu_seconds(*p))
            .sum()
    }

    /// Resident memory of the first group (the server under test).
    pub fn rss_bytes(&self) -> u64 {
        self.groups
            .first()
            .map_or(0, |g| g.pids.iter().filter_map(|p| rss_bytes(*p)).sum())
    }

    /// Every group's processes as they are now (finders run here, which may take a few
    /// milliseconds: call it before the instant that matters, then [`Found::read`]).
    pub fn find(&self) -> Found {
        Found {
            groups: self
                .groups
                .iter()
                .map(|g| {
                    let pids = match &g.find {
                        Some(find) => find(),
                        None => g.pids.clone(),
                    };
                    (g.label, pids)
                })
                .collect(),
        }
    }
}

/// The processes of each group at one moment.
pub struct Found {
    groups: Vec<(&'static str, Vec<u32>)>,
}

impl Found {
    /// The CPU each process has used so far.
    pub fn read(&self) -> Snapshot {
        Snapshot {
            groups: self
                .groups
                .iter()
                .map(|(label, pids)| {
                    let cpu = pids
                        .iter()
                        .filter_map(|p| Some((*p, cpu_seconds(*p)?)))
                        .collect();
                    (*label, cpu)
                })
                .collect(),
        }
    }
}

/// CPU seconds per process, per group, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    groups: Vec<(&'static str, HashMap<u32, f64>)>,
}

impl Snapshot {
    /// CPU each group used since `before`. A process not in `before` was not there
    /// then (or its group found it later), and all of its CPU counts as used since.
    pub fn since(&self, before: &Snapshot) -> Vec<(&'static str, f64)> {
        self.groups
            .iter()
            .enumerate()
            .map(|(i, (label, now))| {
                let then = before.groups.get(i).map(|(_, m)| m);
                let used: f64 = now
                    .iter()
                    .map(|(p, c)| {
                        (c - then.and_then(|m| m.get(p)).copied().unwrap_or(0.0)).max(0.0)
                    })
                    .sum();
                // An empty sum is -0.0; nobody wants to read that a bus used "-0" cores.
                (*label, used + 0.0)
            })
            .collect()
    }
}

/// CPU seconds the whole machine has been busy (all cores, from /proc/stat).
pub fn machine_busy_seconds() -> f64 {
    let Ok(text) = fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = text.lines().next() else {
        return 0.0;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let busy: f64 =
        v.iter().take(8).sum::<f64>() - v.get(3).unwrap_or(&0.0) - v.get(4).unwrap_or(&0.0);
    busy / ticks_per_second()
}

/// CPU seconds of this process plus its waited-for children (the servers it started
/// and stopped).
pub fn self_and_children_cpu_seconds() -> f64 {
    let Ok(stat) = fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<f64> = stat[close + 2..]
        .split(' ')
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime: fields 14-17 of the line, 11-14 here.
    fields.iter().skip(11).take(4).sum::<f64>() / ticks_per_second()
}

/// CPU seconds of this process (the load generator).
pub fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
/// Children inherit it, so the servers the harness starts get it too.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    #[allow(unsafe_code, reason = "libc calls with no safe wrapper in std")]
    // SAFETY: getrlimit/setrlimit write/read the struct we pass and nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                return wanted.rlim_cur;
            }
        }
    }
    limit.rlim_cur
}

/// The 1-minute load average, to say under which conditions figures were taken.
pub fn load_average() -> Option<(f64, f64, f64)> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<f64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(tree(me).contains(&me));
    }

    #[test]
    fn a_process_found_later_counts_from_zero_and_groups_stay_apart() {
        let before = Snapshot {
            groups: vec![
                ("nodes", HashMap::from([(1, 2.0), (2, 1.0)])),
                ("database", HashMap::from([(10, 5.0)])),
            ],
        };
        let after = Snapshot {
            groups: vec![
                // 2 exited: its CPU is lost, as documented.
                ("nodes", HashMap::from([(1, 3.5)])),
                // 11 appeared in the window: all of its CPU is the window's.
                ("database", HashMap::from([(10, 5.25), (11, 0.5)])),
            ],
        };
        assert_eq!(
            after.since(&before),
            vec![("nodes", 1.5), ("database", 0.75)]
        );
        let empty = Snapshot {
            groups: vec![("bus", HashMap::new())],
        };
        assert!(empty.since(&empty)[0].1.is_sign_positive());
    }

    #[test]
    fn finders_run_at_each_find() {
        let me = std::process::id();
        let w = Watched::empty()
            .with("fixed", vec![me])
            .with_finder("found", Arc::new(move || vec![me]));
        let found = w.find();
        assert_eq!(found.groups, vec![("fixed", vec![me]), ("found", vec![me])]);
        let cpu = found.read().since(&Snapshot::default());
        assert_eq!(cpu.len(), 2);
        assert!(cpu.iter().all(|(_, c)| *c >= 0.0));
        assert!(w.rss_bytes() > 0, "the first group's memory");
    }
}
