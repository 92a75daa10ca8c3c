//! Any content of the store file: bit flips, zeroed and random pages, garbage runs and
//! truncation at many lengths, across the header, the pages, the keys and the values. Opening
//! must give a working tier (or a typed error, with the file moved aside), every read must give
//! the value written for that key or a miss, and no panic may reach the caller.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use mpm_cache::DiskTier;

const KEYS: usize = 48;
const PAGE: usize = 4096;

fn key(i: usize) -> String {
    format!("user:{i}")
}

fn value(i: usize) -> String {
    // Distinct per key, and long enough that entries spread over several pages.
    format!("value-{i}-").repeat(8 + (i * 37) % 120)
}

/// Keys written and never removed, with their values; and keys written then removed.
struct Written {
    live: HashMap<String, String>,
    removed: Vec<String>,
}

/// A store written and closed cleanly: tagged entries, some removed, saved heat.
fn base_store(dir: &Path) -> (Vec<u8>, Written) {
    let t: DiskTier<String> = DiskTier::builder(dir).open().unwrap();
    let mut live = HashMap::new();
    for i in 0..KEYS {
        let tags = [Arc::<str>::from(format!("t{}", i % 4))];
        t.put(&key(i), &value(i), None, &tags).unwrap();
        live.insert(key(i), value(i));
    }
    let mut removed = Vec::new();
    for i in (0..KEYS).step_by(7) {
        assert!(t.remove(&key(i)).unwrap());
        live.remove(&key(i));
        removed.push(key(i));
    }
    t.save_heat(&[("user:1", 10), ("user:2", 5)]).unwrap();
    t.flush().unwrap();
    let path = t.path().to_owned();
    drop(t);
    (std::fs::read(path).unwrap(), Written { live, removed })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Zero { page: usize },
    Random { page: usize, seed: u64 },
    Garbage { at: usize, len: usize, seed: u64 },
    Truncate { len: usize },
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match *m {
        Mutation::Flip { at, bit } => b[at] ^= 1 << bit,
        Mutation::Zero { page } => {
            let end = ((page + 1) * PAGE).min(b.len());
            b[page * PAGE..end].fill(0);
        }
        Mutation::Random { page, seed } | Mutation::Garbage { at: page, seed, .. }
            if matches!(m, Mutation::Random { .. }) =>
        {
            let mut r = Rng(seed | 1);
            let end = ((page + 1) * PAGE).min(b.len());
            for x in &mut b[page * PAGE..end] {
                *x = r.next() as u8;
            }
        }
        Mutation::Garbage { at, len, seed } => {
            let mut r = Rng(seed | 1);
            let end = (at + len).min(b.len());
            for x in &mut b[at..end] {
                *x = r.next() as u8;
            }
        }
        Mutation::Random { .. } => unreachable!(),
        Mutation::Truncate { len } => b.truncate(len),
    }
    b
}

/// Offsets of every occurrence of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// At least 1,000 mutations, spread over the whole file, its header, the pages in use, the key
/// bytes and the value bytes.
fn mutations(bytes: &[u8]) -> Vec<Mutation> {
    let mut r = Rng(0x2545_F491_4F6C_DD1D);
    let len = bytes.len();
    let used: Vec<usize> = (0..len.div_ceil(PAGE))
        .filter(|p| {
            bytes[p * PAGE..((p + 1) * PAGE).min(len)]
                .iter()
                .any(|&x| x != 0)
        })
        .collect();
    let keys = find_all(bytes, b"user:");
    let values = find_all(bytes, b"value-");
    assert!(!keys.is_empty() && !values.is_empty() && used.len() > 2);
    let mut out = Vec::new();
    let flip = |r: &mut Rng, at: usize| Mutation::Flip {
        at: at.min(len - 1),
        bit: (r.next() % 8) as u8,
    };
    for _ in 0..150 {
        let at = r.below(len);
        out.push(flip(&mut r, at));
    }
    for _ in 0..150 {
        // Inside the pages in use.
        let at = used[r.below(used.len())] * PAGE + r.below(PAGE);
        out.push(flip(&mut r, at));
    }
    for _ in 0..100 {
        // The header: the first page (redb's super-header and its two commit slots).
        let at = r.below(PAGE.min(len));
        out.push(flip(&mut r, at));
    }
    for _ in 0..120 {
        // A stored key: "user:" and the digits after it (user:1 -> user:3 and the like).
        let at = keys[r.below(keys.len())] + r.below(7);
        out.push(flip(&mut r, at));
    }
    for _ in 0..80 {
        let at = values[r.below(values.len())] + r.below(40);
        out.push(flip(&mut r, at));
    }
    for _ in 0..100 {
        out.push(Mutation::Zero {
            page: used[r.below(used.len())],
        });
    }
    for _ in 0..100 {
        out.push(Mutation::Random {
            page: used[r.below(used.len())],
            seed: r.next(),
        });
    }
    for _ in 0..60 {
        let at = used[r.below(used.len())] * PAGE + r.below(PAGE);
        out.push(Mutation::Garbage {
            at: at.min(len - 1),
            len: 1 + r.below(64),
            seed: r.next(),
        });
    }
    for n in [
        0, 1, 4, 8, 9, 10, 16, 32, 64, 100, 511, 512, 513, 1024, 4095, 4096, 4097,
    ] {
        out.push(Mutation::Truncate { len: n.min(len) });
    }
    for p in used.iter().skip(1).take(39) {
        out.push(Mutation::Truncate { len: p * PAGE });
    }
    while out.len() < 1_020 {
        out.push(Mutation::Truncate { len: r.below(len) });
    }
    out
}

/// Opens the damaged store and uses it; returns a description of what went wrong, if anything.
fn check(dir: &Path, written: &Written) -> Result<(), String> {
    let t: DiskTier<String> = match DiskTier::builder(dir).open() {
        Ok(t) => t,
        Err(e) => {
            // A typed error, and the damaged file moved aside.
            let aside = std::fs::read_dir(dir)
                .unwrap()
                .any(|e| e.unwrap().file_name().to_string_lossy().contains("corrupt"));
            return if aside {
                Ok(())
            } else {
                Err(format!("open failed without moving the file aside: {e}"))
            };
        }
    };
    for (k, v) in &written.live {
        if let Ok(Some(got)) = t.get(k)
            && &got != v
        {
            return Err(format!("{k} read back another value: {:.40}", got));
        }
    }
    for k in &written.removed {
        if let Ok(Some(got)) = t.get(k) {
            return Err(format!("removed {k} came back as {got:.40}"));
        }
    }
    let _ = t.get("user:999");
    let _ = t.newest_keys(100);
    let _ = t.hottest_keys(100);
    let _ = t.len();
    let _ = t.bytes();
    let _ = t.remove_tag("t1");
    let _ = t.remove_prefix("user:2");
    // Still a working tier: a write reads back.
    t.put("probe", &"fresh".to_owned(), None, &[])
        .map_err(|e| format!("the tier does not take writes: {e}"))?;
    match t.get("probe") {
        Ok(Some(v)) if v == "fresh" => Ok(()),
        other => Err(format!("a fresh write read back as {other:?}")),
    }
}

/// The caught panics inside the tier are expected; keep their messages out of the test output.
fn quiet_panics_in_this_module() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = std::env::var_os("MPM_CACHE_DAMAGE_VERBOSE").is_none()
                && std::thread::current()
                    .name()
                    .is_some_and(|n| n.starts_with("damage::"));
            if !ours {
                default(info);
            }
        }));
    });
}

#[test]
fn no_mutation_of_the_store_file_panics_or_returns_a_wrong_value() {
    quiet_panics_in_this_module();
    let base = tempfile::tempdir().unwrap();
    let (bytes, written) = base_store(base.path());
    let all = mutations(&bytes);
    assert!(all.len() >= 1_000, "{}", all.len());
    let mut failures = Vec::new();
    let mut set_aside = 0;
    for (n, m) in all.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cache.redb"), apply(&bytes, m)).unwrap();
        match catch_unwind(AssertUnwindSafe(|| check(dir.path(), &written))) {
            Ok(Ok(())) => {}
            Ok(Err(what)) => failures.push(format!("#{n} {m:?}: {what}")),
            Err(_) => failures.push(format!("#{n} {m:?}: a panic reached the caller")),
        }
        set_aside += std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("corrupt")
            })
            .count();
    }
    eprintln!(
        "{} mutations of a {} byte store: {set_aside} stores moved aside",
        all.len(),
        bytes.len()
    );
    // The panic hook above is quiet in this thread, so the failures are printed first.
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} mutations failed",
        failures.len(),
        all.len()
    );
}
