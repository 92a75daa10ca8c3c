//! The kill test: a child process writes to the disk tier without pause and is killed with
//! SIGKILL at a random instant; the store is reopened and checked.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mpm_cache::DiskTier;

const CHILD_ENV: &str = "MPM_CACHE_KILL_CHILD_DIR";
const TRIALS_ENV: &str = "MPM_CACHE_KILL_TRIALS";

fn payload(i: u64) -> Vec<u8> {
    (0..1024u64)
        .map(|b| (i.wrapping_mul(31).wrapping_add(b)) as u8)
        .collect()
}

/// Keys the child may invalidate (so their absence is not a lost write).
fn may_be_invalidated(j: u64) -> bool {
    j % 25 == 4
}

/// Runs only inside the child process (the parent sets the environment variable).
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let t: DiskTier<Vec<u8>> = DiskTier::builder(dir).open().unwrap();
    for i in 0u64.. {
        t.put(&format!("w{i}"), &payload(i), None, &[]).unwrap();
        if i % 10 == 9 {
            t.flush().unwrap();
            println!("ACK {i}");
        }
        if i % 25 == 24 {
            let j = i - 20;
            assert!(may_be_invalidated(j));
            t.remove(&format!("w{j}")).unwrap();
            println!("INV {j}");
        }
    }
}

fn seed() -> u64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    n | 1
}

#[test]
fn sigkill_at_a_random_instant_loses_nothing_acknowledged() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let trials: usize = std::env::var(TRIALS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let exe = std::env::current_exe().unwrap();
    let mut rng = seed();
    let (mut corrupt, mut lost, mut resurrected) = (0, 0, 0);
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&exe)
            .args([
                "kill::child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = None;
            let mut invalidated = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.strip_prefix("ACK ") {
                    let i: u64 = i.parse().unwrap();
                    if acked.is_none() {
                        let _ = tx.send(());
                    }
                    acked = Some(i);
                } else if let Some(j) = line.strip_prefix("INV ") {
                    invalidated.push(j.parse::<u64>().unwrap());
                }
            }
            (acked, invalidated)
        });
        // Wait for the first acknowledged flush, then kill at a random instant after it.
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the child never acknowledged a write");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 150_000));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let (acked, invalidated) = reader.join().unwrap();
        let acked = acked.unwrap();

        let t: DiskTier<Vec<u8>> = DiskTier::builder(dir.path()).open().unwrap();
        let keys = t.newest_keys(usize::MAX).unwrap();
        let present: HashSet<&str> = keys.iter().map(String::as_str).collect();
        for k in &keys {
            let i: u64 = k[1..].parse().unwrap();
            match t.get(k) {
                Ok(Some(v)) if v == payload(i) => {}
                other => {
                    corrupt += 1;
                    eprintln!(
                        "trial {trial}: {k} read back as {:?}",
                        other.map(|o| o.map(|v| v.len()))
                    );
                }
            }
        }
        corrupt += t.stats().corrupt.get() as usize;
        for i in 0..=acked {
            if !may_be_invalidated(i) && !present.contains(format!("w{i}").as_str()) {
                lost += 1;
                eprintln!("trial {trial}: acknowledged w{i} lost (acked up to {acked})");
            }
        }
        for j in &invalidated {
            if present.contains(format!("w{j}").as_str()) {
                resurrected += 1;
                eprintln!("trial {trial}: invalidated w{j} came back");
            }
        }
    }
    assert_eq!(
        (corrupt, lost, resurrected),
        (0, 0, 0),
        "corrupt reads, lost acknowledged writes, resurrected invalidations over {trials} trials"
    );
}
