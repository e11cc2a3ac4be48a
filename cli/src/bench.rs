//! `vodvault bench`: the vault's decrypt+verify throughput on one core.
//!
//! Three numbers, each the median of several rounds on one thread:
//! - **decrypt+verify**: opening sealed chunks in place, as they sit in a buffer just read from
//!   storage. This is the like-for-like peer of `openssl speed -evp aes-256-ctr`, which also
//!   transforms one buffer in place (see `benches/compare-openssl.sh`).
//! - **read_at**: the random-access reader reading sequentially in 1 MiB requests from sealed
//!   bytes in memory: copy out of the source, decrypt, verify.
//! - **read_at from a file**: the same reads from a sealed file on disk (in the page cache), the
//!   source an `AssetReader` of an Encrypted asset reads: the kernel copies, then decrypt+verify.
//! - **seal**: the streaming writer sealing into memory.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;
use vodvault_core::ContentKey;
use vodvault_core::seal::{self, ReadAt, SealOptions, SealWriter, SealedReader};

/// What `bench` measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The sealed format's cipher suite.
    pub suite: &'static str,
    /// Key size of the suite, for comparing with a cipher of the same size.
    pub key_bits: u32,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Plaintext bytes in the benchmark buffer.
    pub size: u64,
    /// Rounds per measurement (the medians are over these).
    pub rounds: usize,
    /// Median decrypt+verify throughput, in place, GB/s (10⁹ bytes).
    pub decrypt_verify_gbps: f64,
    /// Median reader throughput (copy + decrypt + verify), GB/s.
    pub read_at_gbps: f64,
    /// Median reader throughput from a sealed file in the page cache, GB/s.
    pub read_at_file_gbps: f64,
    /// Median seal throughput, GB/s.
    pub seal_gbps: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Repeats `pass` until `min_time` of measured time has accumulated; `pass` returns the bytes it
/// processed and the time it spent on the part being measured. Returns GB/s.
fn round(min_time: Duration, mut pass: impl FnMut() -> (u64, Duration)) -> f64 {
    let (mut bytes, mut spent) = (0u64, Duration::ZERO);
    while spent < min_time {
        let (b, t) = pass();
        bytes += b;
        spent += t;
    }
    bytes as f64 / spent.as_secs_f64() / 1e9
}

/// Runs the benchmark.
///
/// # Errors
/// Only if the OS random generator, sealing or opening fails (the latter would be a bug).
pub fn run(
    size: u64,
    chunk_size: u32,
    rounds: usize,
    round_time: Duration,
) -> Result<BenchReport, Box<dyn std::error::Error>> {
    let key = ContentKey::generate()?;
    let len = usize::try_from(size).map_err(|_| seal::SealError::TooLarge)?;
    let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let options = SealOptions { chunk_size };
    let mut writer = SealWriter::new(Vec::with_capacity(len + len / 1000 + 4096), &key, b"bench", options)?;
    writer.append(&plain)?;
    let (sealed, _) = writer.finish()?;

    let reader = SealedReader::open(&sealed[..], &key, b"bench")?;
    // Measure only a reader that returns the right bytes.
    if reader.read_all()? != plain {
        return Err(seal::SealError::Integrity.into());
    }
    let ranges: Vec<_> = (0..reader.chunk_count()).map(|i| reader.chunk_range(i)).collect();
    let mut work = sealed.clone();
    let mut failure = None;

    let mut decrypt = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        decrypt.push(round(round_time, || {
            work.copy_from_slice(&sealed); // untimed: restore the ciphertext
            let start = Instant::now();
            for (i, r) in ranges.iter().enumerate() {
                let chunk = &mut work[r.start as usize..r.end as usize];
                if let Err(e) = reader.decrypt_chunk_in_place(i as u64, chunk) {
                    failure = Some(e);
                }
            }
            (size, start.elapsed())
        }));
    }
    if let Some(e) = failure {
        return Err(e.into());
    }

    let read_at = sequential_reads(&reader, size, rounds, round_time)?;
    // The same bytes as a file: written once, read back through the page cache.
    let mut file = tempfile::tempfile()?;
    file.write_all(&sealed)?;
    file.sync_all()?;
    let file_reader = SealedReader::open(file, &key, b"bench")?;
    if file_reader.read_all()? != plain {
        return Err(seal::SealError::Integrity.into());
    }
    let read_at_file = sequential_reads(&file_reader, size, rounds, round_time)?;

    let mut sink = Vec::with_capacity(sealed.len());
    let mut seal_rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        seal_rates.push(round(round_time, || {
            sink.clear();
            let start = Instant::now();
            let res = SealWriter::new(&mut sink, &key, b"bench", options)
                .and_then(|mut w| w.append(&plain).and_then(|()| w.finish()));
            if let Err(e) = res {
                failure = Some(e);
            }
            (size, start.elapsed())
        }));
    }
    if let Some(e) = failure {
        return Err(e.into());
    }

    Ok(BenchReport {
        suite: "AES-256-GCM, HKDF-SHA256 (sealed format v1)",
        key_bits: 256,
        chunk_size,
        size,
        rounds,
        decrypt_verify_gbps: median(decrypt),
        read_at_gbps: read_at,
        read_at_file_gbps: read_at_file,
        seal_gbps: median(seal_rates),
    })
}

/// The median GB/s of reading all `size` plaintext bytes in 1 MiB requests from the start.
fn sequential_reads<S: ReadAt>(
    reader: &SealedReader<S>,
    size: u64,
    rounds: usize,
    round_time: Duration,
) -> Result<f64, seal::SealError> {
    let mut out = vec![0u8; 1 << 20];
    let mut failure = None;
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        rates.push(round(round_time, || {
            let start = Instant::now();
            let mut off = 0u64;
            while off < size {
                match reader.read_at(off, &mut out) {
                    Ok(0) => break,
                    Ok(n) => off += n as u64,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            (off, start.elapsed())
        }));
        if let Some(e) = failure.take() {
            return Err(e);
        }
    }
    Ok(median(rates))
}
