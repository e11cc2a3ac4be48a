//! CRC-64/XZ (as OSS and VOD report it) over a mezzanine file as it arrives, in 64 KiB pieces:
//! the extra cost of checking a source file download (docs/design.md D26).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vodvault_core::testing::Crc64;

const SIZE: usize = 16 << 20;

fn crc64(c: &mut Criterion) {
    let data: Vec<u8> = (0..SIZE).map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8).collect();
    let mut g = c.benchmark_group("crc64");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("16MiB_in_64KiB_pieces", |b| {
        b.iter(|| {
            let mut crc = Crc64::default();
            for piece in data.chunks(64 << 10) {
                crc.update(piece);
            }
            crc.finish()
        });
    });
    g.finish();
}

criterion_group!(benches, crc64);
criterion_main!(benches);
