//! Reading `/proc/<pid>/stat`: parent pid, state and start time of a process.

use std::path::Path;

/// The fields of `/proc/<pid>/stat` that sessiond uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Field 4.
    pub ppid: u32,
    /// Field 22: start time in clock ticks since boot. Together with the pid it names one
    /// process even when pids are reused.
    pub start_ticks: u64,
}

impl ProcStat {
    /// A zombie or dead process has exited; only its table entry remains.
    pub fn exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the content of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and
/// may itself contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(content: &str) -> Option<ProcStat> {
    let rest = &content[content.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // Fields 3 (state) and 4 (ppid), then 22 (starttime) = 18 further on.
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let start_ticks = fields.nth(17)?.parse().ok()?;
    Some(ProcStat {
        state,
        ppid,
        start_ticks,
    })
}

/// Reads `/proc/<pid>/stat` under `proc_root` (normally `/proc`).
pub fn read_stat_in(proc_root: &Path, pid: u32) -> Option<ProcStat> {
    let content = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&content)
}

/// Reads `/proc/<pid>/stat`.
pub fn read_stat(pid: u32) -> Option<ProcStat> {
    read_stat_in(Path::new("/proc"), pid)
}

/// The start time of a process, in clock ticks since boot.
pub fn start_ticks(pid: u32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_ticks)
}

/// True if `pid` names a process that has not exited and started at `start_ticks`.
pub fn is_same_running(pid: u32, start_ticks: u64) -> bool {
    matches!(read_stat(pid), Some(s) if !s.exited() && s.start_ticks == start_ticks)
}

/// The parent pid of `pid`, if the process exists.
pub fn parent_pid(pid: u32) -> Option<u32> {
    read_stat(pid).map(|s| s.ppid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "4242 (game (srv) x) S 4200 4242 4242 0 -1 4194560 1234 0 0 0 \
        15 7 0 0 20 0 3 0 987654 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn parses_fields_after_the_last_paren() {
        let stat = parse_stat(SAMPLE).expect("parses");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 4200);
        assert_eq!(stat.start_ticks, 987654);
        assert!(!stat.exited());
    }

    #[test]
    fn zombie_counts_as_exited() {
        let stat =
            parse_stat("7 (a) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0").expect("parses");
        assert!(stat.exited());
        assert_eq!(stat.start_ticks, 55);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (x"), None);
        assert_eq!(parse_stat("12 (x) S notanumber"), None);
        assert_eq!(parse_stat("12 (x) S 1 2 3"), None);
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        let stat = read_stat(pid).expect("own stat readable");
        assert!(!stat.exited());
        assert_eq!(parent_pid(pid), Some(stat.ppid));
        let ticks = start_ticks(pid).expect("start ticks");
        assert!(ticks > 0);
        assert!(is_same_running(pid, ticks));
        assert!(!is_same_running(pid, ticks + 1));
    }

    #[test]
    fn reads_from_a_fake_proc_root() {
        let dir = std::env::temp_dir().join(format!("sessiond-procfs-test-{}", std::process::id()));
        let piddir = dir.join("4242");
        std::fs::create_dir_all(&piddir).expect("mkdir");
        std::fs::write(piddir.join("stat"), SAMPLE).expect("write");
        let stat = read_stat_in(&dir, 4242);
        let missing = read_stat_in(&dir, 4243);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(stat.map(|s| (s.ppid, s.start_ticks)), Some((4200, 987654)));
        assert_eq!(missing, None);
    }
}
