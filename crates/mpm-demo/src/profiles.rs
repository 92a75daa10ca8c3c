//! Step 4: agent profiles under a skewed workload, through a `TieredCache` with an L2 on disk,
//! and through moka on the same workload.
//!
//! A profile is an agent's settings for one project (a JSON file of about a kilobyte in the
//! profile store, the "disk" of the guide). Requests pick profiles by a Zipf law: a few agents
//! serve most requests, as in an orchestration service. The L1 holds a tenth of the profiles.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mpm_core::cache::TieredCache;
use serde::{Deserialize, Serialize};

use crate::Error;

/// An agent's profile for one project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// `agent@project`.
    pub id: String,
    /// The agent.
    pub agent: String,
    /// The project.
    pub project: String,
    /// The model it runs on.
    pub model: String,
    /// Tools it may use.
    pub tools: Vec<String>,
    /// Project-specific settings.
    pub settings: Vec<(String, String)>,
    /// The last tasks it ran.
    pub recent_tasks: Vec<String>,
}

const AGENTS: [&str; 15] = [
    "engineer",
    "qa",
    "documentation",
    "research",
    "ops",
    "security",
    "data-engineer",
    "version-control",
    "ticketing",
    "web-ui",
    "api-qa",
    "web-qa",
    "refactoring",
    "code-analyzer",
    "project-organizer",
];

/// The profile store: one JSON file per profile in a folder.
#[derive(Clone, Debug)]
pub struct ProfileStore {
    dir: PathBuf,
    count: usize,
}

impl ProfileStore {
    /// Writes `count` profiles into `dir`.
    pub fn create(dir: &Path, count: usize) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for i in 0..count {
            let p = Self::make(i);
            let path = dir.join(format!("{i}.json"));
            let json = serde_json::to_vec(&p).expect("a profile serializes");
            std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            count,
        })
    }

    fn make(i: usize) -> Profile {
        let agent = AGENTS[i % AGENTS.len()];
        let project = format!("project-{:04}", i / AGENTS.len());
        Profile {
            id: format!("{agent}@{project}"),
            agent: agent.to_owned(),
            model: ["sonnet", "opus", "haiku"][i % 3].to_owned(),
            tools: ["Read", "Write", "Edit", "Bash", "Grep", "Glob"][..3 + i % 4]
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            settings: (0..8)
                .map(|k| {
                    (
                        format!("setting_{k}"),
                        format!("value {} for {project}", i * 8 + k),
                    )
                })
                .collect(),
            recent_tasks: (0..6)
                .map(|k| format!("task {k} of {agent} in {project}: review and update the module"))
                .collect(),
            project,
        }
    }

    /// How many profiles it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The cache key of profile `i`.
    pub fn key(i: usize) -> String {
        format!("profile:{i}")
    }

    /// Reads and parses profile `i` from disk.
    pub fn load(&self, i: usize) -> Result<Profile, Error> {
        let path = self.dir.join(format!("{i}.json"));
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }
}

/// Profile indexes drawn by a Zipf law with exponent `s` over `n` items (rank 0 the most
/// frequent), by inverse transform over the cumulative weights.
pub struct Zipf {
    cumulative: Vec<f64>,
    rng: fastrand::Rng,
}

impl Zipf {
    /// A Zipf law over `n` items with exponent `s`, seeded.
    pub fn new(n: usize, s: f64, seed: u64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|k| {
                total += (k as f64).powf(-s);
                total
            })
            .collect();
        Self {
            cumulative,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The next index.
    pub fn sample(&mut self) -> usize {
        let total = *self.cumulative.last().expect("at least one item");
        let u = self.rng.f64() * total;
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }
}

/// The workload.
#[derive(Clone, Copy, Debug)]
pub struct ProfilePlan {
    /// Profiles in the store.
    pub profiles: usize,
    /// Requests made.
    pub requests: usize,
    /// The Zipf exponent.
    pub zipf_s: f64,
    /// The seed of the request sequence (the same for mpm and moka).
    pub seed: u64,
}

/// The profile indexes `plan` requests, in order.
pub fn requests(plan: ProfilePlan) -> Vec<usize> {
    let mut zipf = Zipf::new(plan.profiles, plan.zipf_s, plan.seed);
    (0..plan.requests).map(|_| zipf.sample()).collect()
}

/// What the workload measured.
#[derive(Clone, Debug)]
pub struct ProfileFigures {
    /// Mean time to read and parse a profile from the store.
    pub disk_load: Duration,
    /// Mean time of a lookup answered by L1.
    pub cached: Duration,
    /// Lookups answered by L1, in percent of all.
    pub l1_hit_pct: f64,
    /// Of the lookups L1 missed, those answered by L2, in percent.
    pub l2_hit_pct: f64,
    /// Mean time of a lookup, whatever answered it.
    pub access_avg: Duration,
    /// moka on the same requests: hit rate in percent.
    pub moka_hit_pct: f64,
    /// moka on the same requests: mean time of a lookup.
    pub moka_access_avg: Duration,
}

/// Runs `plan` against `cache` (whose L1 should hold a tenth of the profiles) and against a
/// moka cache of the same capacity, each loading misses from `store`.
pub async fn run(
    cache: &TieredCache<Arc<Profile>>,
    store: &ProfileStore,
    plan: ProfilePlan,
    l1_capacity: usize,
) -> Result<ProfileFigures, Error> {
    let loads = AtomicU64::new(0);
    let load_nanos = AtomicU64::new(0);
    let before = cache.stats();
    // The workload is drawn before the clock starts, for mpm and moka alike: the timed loops
    // hold the lookups only, with keys as a service has them (a profile's key, made once).
    let keys: Vec<String> = (0..plan.profiles).map(ProfileStore::key).collect();
    let requests = requests(plan);
    let started = Instant::now();
    for &i in &requests {
        cache
            .get_or_load(&keys[i], || async {
                let t = Instant::now();
                let p = store.load(i)?;
                load_nanos.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                loads.fetch_add(1, Ordering::Relaxed);
                Ok::<_, Error>(Arc::new(p))
            })
            .await
            .map_err(|e| Error::Cache(e.to_string()))?;
    }
    let elapsed = started.elapsed();
    let after = cache.stats();
    let loads = loads.load(Ordering::Relaxed);
    let l1_hits = after.hits - before.hits;
    let misses = plan.requests as u64 - l1_hits;
    let l2_hits = misses.saturating_sub(loads);

    // L1 hits alone: the hottest profiles, looked up again.
    let hot = &keys[..16.min(keys.len())];
    let rounds = 20_000;
    let t = Instant::now();
    let mut found = 0usize;
    for r in 0..rounds {
        found += usize::from(cache.get(&hot[r % hot.len()]).is_some());
    }
    let cached = t.elapsed() / rounds as u32;
    if found < rounds * 9 / 10 {
        return Err(Error::Cache(format!(
            "the hottest profiles are not in L1 ({found} of {rounds} lookups hit)"
        )));
    }

    // moka, same capacity, same requests, misses loaded from the same store.
    let moka: moka::sync::Cache<String, Arc<Profile>> = moka::sync::Cache::new(l1_capacity as u64);
    let moka_misses = AtomicU64::new(0);
    let t = Instant::now();
    for &i in &requests {
        let v = moka.try_get_with_by_ref(keys[i].as_str(), || {
            moka_misses.fetch_add(1, Ordering::Relaxed);
            store.load(i).map(Arc::new)
        });
        v.map_err(|e| Error::Cache(e.to_string()))?;
    }
    let moka_elapsed = t.elapsed();
    let moka_misses = moka_misses.load(Ordering::Relaxed);

    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    Ok(ProfileFigures {
        disk_load: Duration::from_nanos(load_nanos.load(Ordering::Relaxed) / loads.max(1)),
        cached,
        l1_hit_pct: pct(l1_hits, plan.requests as u64),
        l2_hit_pct: pct(l2_hits, misses),
        access_avg: elapsed / plan.requests.max(1) as u32,
        moka_hit_pct: pct(plan.requests as u64 - moka_misses, plan.requests as u64),
        moka_access_avg: moka_elapsed / plan.requests.max(1) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_low_ranks_and_stays_in_range() {
        let mut z = Zipf::new(1000, 1.2, 7);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.sample()] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        let top_tenth: u32 = counts[..100].iter().sum();
        assert!(top_tenth > 80_000, "{top_tenth}");
    }

    #[test]
    fn profiles_round_trip_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::create(dir.path(), 30).unwrap();
        assert_eq!(store.load(17).unwrap(), ProfileStore::make(17));
        assert!(store.load(30).is_err());
    }
}
