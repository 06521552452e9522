//! Poll-lease holder names that say where their process runs, so that a restarted bridge can tell
//! a lease left by a dead process of the same machine from one held by a live bridge.

use std::path::Path;

/// The holder name of this process: `<machine>/<pid>/<random>`. The machine is the host name
/// plus the boot id, so a reboot or another host never looks like this machine.
pub(super) fn holder_name(random: u32) -> String {
    format!("{}/{}/{random:08x}", machine(), std::process::id())
}

/// Whether `holder` names a process of this machine (same host name and boot) that no longer
/// runs. Anything else, including names in the older `pid<n>-<random>` form, is treated as alive.
pub(super) fn is_dead_local_holder(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, '/');
    let (Some(_random), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    host == machine() && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

fn machine() -> String {
    let read =
        |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
    format!("{}@{}", read("/proc/sys/kernel/hostname"), read("/proc/sys/kernel/random/boot_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_only_a_gone_process_of_this_machine_is_dead() {
        let me = holder_name(7);
        assert!(!is_dead_local_holder(&me), "this process is alive");
        // A pid that cannot exist (above the kernel's pid_max) on this machine: gone.
        let gone = format!("{}/{}/00000001", machine(), u32::MAX - 1);
        assert!(is_dead_local_holder(&gone));
        // pid 1 always runs.
        assert!(!is_dead_local_holder(&format!("{}/1/00000001", machine())));
        // Another machine, an older name form, garbage: never taken.
        for other in [
            format!("otherhost@x/{}/00000001", u32::MAX - 1),
            "pid12345-0000abcd".to_owned(),
            String::new(),
            "a/b/c".to_owned(),
        ] {
            assert!(!is_dead_local_holder(&other), "{other}");
        }
    }
}
