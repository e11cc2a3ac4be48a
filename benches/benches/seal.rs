//! Criterion benchmarks of the sealed format: seal throughput, sequential reads and random-access
//! reads, at 16 KiB, 64 KiB and 1 MiB chunks. `cargo bench -p vodvault-benches`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vodvault_core::ContentKey;
use vodvault_core::seal::{SealOptions, SealWriter, SealedReader};

const SIZE: usize = 32 << 20;
const CHUNK_SIZES: [u32; 3] = [16 << 10, 64 << 10, 1 << 20];

fn plaintext() -> Vec<u8> {
    (0..SIZE).map(|i| (i % 251) as u8).collect()
}

fn sealed(key: &ContentKey, plain: &[u8], chunk_size: u32) -> Vec<u8> {
    let mut w = SealWriter::new(Vec::new(), key, b"bench", SealOptions { chunk_size }).unwrap();
    w.append(plain).unwrap();
    w.finish().unwrap().0
}

fn seal(c: &mut Criterion) {
    let key = ContentKey::generate().unwrap();
    let plain = plaintext();
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes(SIZE as u64));
    for cs in CHUNK_SIZES {
        let mut sink = Vec::with_capacity(SIZE + SIZE / 512 + 4096);
        g.bench_with_input(BenchmarkId::from_parameter(cs), &cs, |b, &cs| {
            b.iter(|| {
                sink.clear();
                let mut w = SealWriter::new(&mut sink, &key, b"bench", SealOptions { chunk_size: cs }).unwrap();
                w.append(black_box(&plain)).unwrap();
                w.finish().unwrap();
            });
        });
    }
    g.finish();
}

fn open_sequential(c: &mut Criterion) {
    let key = ContentKey::generate().unwrap();
    let plain = plaintext();
    let mut g = c.benchmark_group("open_sequential_1MiB_reads");
    g.throughput(Throughput::Bytes(SIZE as u64));
    for cs in CHUNK_SIZES {
        let data = sealed(&key, &plain, cs);
        let reader = SealedReader::open(&data[..], &key, b"bench").unwrap();
        let mut buf = vec![0u8; 1 << 20];
        g.bench_with_input(BenchmarkId::from_parameter(cs), &cs, |b, _| {
            b.iter(|| {
                let mut off = 0;
                while off < SIZE as u64 {
                    off += reader.read_at(off, &mut buf).unwrap() as u64;
                }
                black_box(&buf);
            });
        });
    }
    g.finish();
}

fn open_in_place(c: &mut Criterion) {
    let key = ContentKey::generate().unwrap();
    let plain = plaintext();
    let mut g = c.benchmark_group("decrypt_verify_in_place");
    g.throughput(Throughput::Bytes(SIZE as u64));
    for cs in CHUNK_SIZES {
        let data = sealed(&key, &plain, cs);
        let reader = SealedReader::open(&data[..], &key, b"bench").unwrap();
        let ranges: Vec<_> = (0..reader.chunk_count()).map(|i| reader.chunk_range(i)).collect();
        g.bench_with_input(BenchmarkId::from_parameter(cs), &cs, |b, _| {
            // Each iteration opens a fresh copy: the copy is set-up, not measured.
            b.iter_batched_ref(
                || data.clone(),
                |work| {
                    for (i, r) in ranges.iter().enumerate() {
                        let chunk = &mut work[r.start as usize..r.end as usize];
                        reader.decrypt_chunk_in_place(i as u64, chunk).unwrap();
                    }
                },
                criterion::BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn open_random(c: &mut Criterion) {
    let key = ContentKey::generate().unwrap();
    let plain = plaintext();
    let mut g = c.benchmark_group("open_random_access");
    for read_len in [4096usize, 256 << 10] {
        for cs in CHUNK_SIZES {
            let data = sealed(&key, &plain, cs);
            let reader = SealedReader::open(&data[..], &key, b"bench").unwrap();
            let mut buf = vec![0u8; read_len];
            // A fixed pseudo-random walk of offsets (xorshift), the same for every chunk size.
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            g.throughput(Throughput::Bytes(read_len as u64));
            let id = BenchmarkId::new(format!("read_{}KiB", read_len >> 10), cs);
            g.bench_function(id, |b| {
                b.iter(|| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let off = x % (SIZE - read_len) as u64;
                    reader.read_at(off, &mut buf).unwrap();
                    black_box(&buf);
                });
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    targets = seal, open_sequential, open_in_place, open_random
}
criterion_main!(benches);
