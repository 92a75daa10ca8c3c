//! The file formats of published cache access traces, read into one key (`u64`) per access.

use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// A trace file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// cache2k: big-endian signed 32-bit integers, one key each.
    Cache2k,
    /// scarab / Caffeine simulator's binary traces: big-endian 64-bit integers, one key each.
    Scarab,
    /// LIRS: text, one integer key a line; `*` lines are checkpoint markers.
    Lirs,
    /// ARC `.lis`: text lines `start count ...`, each `count` accesses to `start..start+count`.
    Arc,
    /// Delimited text (comma, semicolon, tab or space), the key in the given column (from 0),
    /// as Wikipedia and CDN request logs are published. A key that is not an integer is hashed.
    Csv(usize),
}

impl Format {
    /// Parses `cache2k`, `scarab`, `lirs`, `arc`, `csv` or `csv:COLUMN`.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "cache2k" => Self::Cache2k,
            "scarab" => Self::Scarab,
            "lirs" => Self::Lirs,
            "arc" | "lis" => Self::Arc,
            "csv" => Self::Csv(0),
            other => match other.strip_prefix("csv:") {
                Some(col) => Self::Csv(
                    col.parse()
                        .with_context(|| format!("bad csv column in {other:?}"))?,
                ),
                None => bail!(
                    "unknown trace format {other:?} (cache2k, scarab, lirs, arc, csv or csv:COLUMN)"
                ),
            },
        })
    }

    /// Tells the format from the file name.
    pub(crate) fn guess(path: &Path) -> Result<Self> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = name
            .trim_end_matches(".xz")
            .trim_end_matches(".gz")
            .trim_end_matches(".zst");
        if stem.ends_with(".txt") || stem.ends_with(".md") {
            bail!("{} is a text document, not a trace", path.display())
        } else if name.starts_with("cache2k") {
            Ok(Self::Cache2k)
        } else if name.contains("scarab") {
            Ok(Self::Scarab)
        } else if name.starts_with("lirs") {
            Ok(Self::Lirs)
        } else if name.starts_with("arc") || stem.ends_with(".lis") {
            Ok(Self::Arc)
        } else if stem.ends_with(".csv") {
            Ok(Self::Csv(0))
        } else {
            bail!(
                "cannot tell the format of {}; pass --format",
                path.display()
            )
        }
    }
}

/// Opens `path`, decompressing by extension (`.xz`, `.gz`, `.zst`).
fn open(path: &Path) -> Result<Box<dyn Read>> {
    let f = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let f = BufReader::with_capacity(1 << 16, f);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    Ok(match ext {
        "xz" => Box::new(liblzma::read::XzDecoder::new(f)),
        "gz" => Box::new(flate2::read::MultiGzDecoder::new(f)),
        "zst" => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
        _ => Box::new(f),
    })
}

/// Reads at most `limit` keys of the trace at `path`.
pub(crate) fn read_trace(path: &Path, format: Format, limit: usize) -> Result<Vec<u64>> {
    let r = BufReader::with_capacity(1 << 16, open(path)?);
    read_keys(r, format, limit).with_context(|| format!("could not read {}", path.display()))
}

/// Reads at most `limit` keys in `format` from `r`.
pub(crate) fn read_keys(mut r: impl BufRead, format: Format, limit: usize) -> Result<Vec<u64>> {
    let mut keys = Vec::new();
    match format {
        Format::Cache2k => {
            let mut b = [0u8; 4];
            while keys.len() < limit && read_record(&mut r, &mut b)? {
                keys.push(i32::from_be_bytes(b) as u32 as u64);
            }
        }
        Format::Scarab => {
            let mut b = [0u8; 8];
            while keys.len() < limit && read_record(&mut r, &mut b)? {
                keys.push(u64::from_be_bytes(b));
            }
        }
        Format::Lirs | Format::Arc | Format::Csv(_) => {
            for (n, line) in r.lines().enumerate() {
                if keys.len() >= limit {
                    break;
                }
                let line = line?;
                let bad = || format!("line {}: {line:?}", n + 1);
                let line = line.trim();
                match format {
                    Format::Lirs => {
                        if line.is_empty() || line == "*" {
                            continue;
                        }
                        keys.push(line.parse().with_context(bad)?);
                    }
                    Format::Arc => {
                        let mut f = line.split_whitespace();
                        let (Some(start), Some(count)) = (f.next(), f.next()) else {
                            continue;
                        };
                        let start: u64 = start.parse().with_context(bad)?;
                        let count: u64 = count.parse().with_context(bad)?;
                        let room = (limit - keys.len()) as u64;
                        keys.extend(start..start.saturating_add(count.min(room)));
                    }
                    Format::Csv(col) => {
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        let field = line
                            .split([',', ';', '\t', ' '])
                            .filter(|f| !f.is_empty())
                            .nth(col)
                            .with_context(|| format!("{}: no column {col}", bad()))?;
                        keys.push(field.parse().unwrap_or_else(|_| text_key(field)));
                    }
                    Format::Cache2k | Format::Scarab => unreachable!("binary formats"),
                }
            }
        }
    }
    Ok(keys)
}

/// Fills `b` with the next record; false at a clean end of input. A torn last record is an error.
fn read_record(r: &mut impl Read, b: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < b.len() {
        match r.read(&mut b[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => bail!("the trace ends inside a {}-byte record", b.len()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// A key for a text field (a URL, an object name), hashed with fixed keys so it repeats.
fn text_key(field: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(format: &str, input: &[u8], expect: &[u64]) {
        let keys = read_keys(input, Format::parse(format).unwrap(), usize::MAX).unwrap();
        assert_eq!(keys, expect);
    }

    #[test]
    fn cache2k_keys_are_big_endian_i32() {
        check(
            "cache2k",
            &[0, 0, 1, 2, 255, 255, 255, 255],
            &[258, 0xffff_ffff],
        );
    }

    #[test]
    fn scarab_keys_are_big_endian_u64() {
        check(
            "scarab",
            &[0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 0, 0, 0, 0, 0, 0],
            &[258, 1 << 56],
        );
    }

    #[test]
    fn a_torn_binary_record_is_an_error() {
        assert!(read_keys(&[0u8, 0, 1][..], Format::Cache2k, usize::MAX).is_err());
    }

    #[test]
    fn lirs_skips_markers_and_blank_lines() {
        check("lirs", b"5\n*\n\n7\n", &[5, 7]);
    }

    #[test]
    fn arc_lines_expand_to_runs() {
        check("arc", b"10 3 0 0\n4 1 0 1\n", &[10, 11, 12, 4]);
    }

    #[test]
    fn csv_takes_the_column_and_hashes_text() {
        let keys = read_keys(
            &b"1,a.html,9\n2 b.html 9\n# c\n3,a.html\n"[..],
            Format::Csv(1),
            usize::MAX,
        )
        .unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[0], keys[2]);
        assert_ne!(keys[0], keys[1]);
        check("csv:0", b"1,x\n2,y\n", &[1, 2]);
    }

    #[test]
    fn the_limit_cuts_the_trace() {
        let keys = read_keys(&b"10 100 0 0\n"[..], Format::Arc, 5).unwrap();
        assert_eq!(keys, [10, 11, 12, 13, 14]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(read_keys(&b"x\n"[..], Format::Lirs, usize::MAX).is_err());
        assert!(read_keys(&b"1 y\n"[..], Format::Arc, usize::MAX).is_err());
        assert!(read_keys(&b"1,2\n"[..], Format::Csv(5), usize::MAX).is_err());
        assert!(Format::parse("csv:x").is_err());
    }

    #[test]
    fn format_is_guessed_from_the_name() {
        for (name, f) in [
            ("x/cache2k-web07.trace.xz", Format::Cache2k),
            ("lirs-loop.trace.gz", Format::Lirs),
            ("arc-P3.lis.zst", Format::Arc),
            ("S3.lis", Format::Arc),
            ("scarab-recs.trace.gz", Format::Scarab),
            ("wiki.csv.gz", Format::Csv(0)),
        ] {
            assert_eq!(Format::guess(Path::new(name)).unwrap(), f, "{name}");
        }
        assert!(Format::guess(Path::new("other.bin")).is_err());
        assert!(Format::guess(Path::new("cache2k-LICENSE.txt")).is_err());
    }
}
