//! The process's resident memory, read from `/proc/self/status` (Linux).

/// Resident memory now and at its peak, in mebibytes; `None` where `/proc` is missing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resident {
    /// `VmRSS`: resident now.
    pub now_mb: f64,
    /// `VmHWM`: the peak resident size since the process started.
    pub peak_mb: f64,
}

/// Reads this process's resident memory.
pub fn resident() -> Option<Resident> {
    parse(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn parse(status: &str) -> Option<Resident> {
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    };
    Some(Resident {
        now_mb: field("VmRSS:")?,
        peak_mb: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_status_fields() {
        let r = parse("Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n").unwrap();
        assert_eq!(
            r,
            Resident {
                now_mb: 10.0,
                peak_mb: 20.0
            }
        );
    }

    #[test]
    fn missing_fields_are_none() {
        assert_eq!(parse("Name:\tx\n"), None);
        assert_eq!(parse("VmRSS:\tlots kB\nVmHWM:\t1 kB\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        if cfg!(target_os = "linux") {
            let r = resident().unwrap();
            assert!(r.now_mb > 0.0 && r.peak_mb >= r.now_mb);
        }
    }
}
