//! The sealed format: fixed vectors checked by an independent decoder, round trips at arbitrary
//! offsets, and detection of every kind of tampering as the one opaque error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly

use std::cell::RefCell;
use std::io;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use vodvault_core::ContentKey;
use vodvault_core::seal::{self, ReadAt, SealError, SealOptions, SealWriter, SealedReader};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31).wrapping_add(7) % 256) as u8).collect()
}

fn key(byte: u8) -> ContentKey {
    ContentKey::from_bytes([byte; 32])
}

fn seal_with(data: &[u8], k: &ContentKey, ctx: &[u8], chunk_size: u32) -> Vec<u8> {
    let mut w = SealWriter::new(Vec::new(), k, ctx, SealOptions { chunk_size }).unwrap();
    w.append(data).unwrap();
    w.finish().unwrap().0
}

fn seal(data: &[u8], chunk_size: u32) -> Vec<u8> {
    seal_with(data, &key(1), b"ctx", chunk_size)
}

fn is_integrity<T: std::fmt::Debug>(r: Result<T, SealError>) -> bool {
    matches!(r, Err(SealError::Integrity))
}

/// Opens and reads everything; any failure must be the opaque integrity error.
fn open_all(sealed: &[u8], k: &ContentKey, ctx: &[u8]) -> Result<Vec<u8>, SealError> {
    SealedReader::open(sealed, k, ctx)?.read_all()
}

// ---------------------------------------------------------------------------------------------
// Fixed vectors, and a decoder written from docs/format.md with other crypto crates.

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    content_key: String,
    salt: String,
    nonce_prefix: String,
    chunk_size: u32,
    context: String,
    plaintext_len: usize,
    sealed_sha256: String,
    sealed_hex: Option<String>,
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(include_str!("vectors/seal-v1.json")).unwrap()
}

fn array<const N: usize>(h: &str) -> [u8; N] {
    hex::decode(h).unwrap().try_into().unwrap()
}

/// Decodes a sealed file per docs/format.md using RustCrypto `aes-gcm` + `hkdf`, sharing no code
/// with `vodvault_core::seal`.
fn independent_decode(sealed: &[u8], content_key: &[u8; 32], context: &[u8]) -> Option<Vec<u8>> {
    let header = sealed.get(..48)?;
    if &header[..6] != b"VVSEAL" || header[6] != 1 || header[7] != 1 || header[43..] != [0; 5] {
        return None;
    }
    let chunk_size = u32::from_be_bytes(header[8..12].try_into().ok()?) as usize;
    // content key id = HKDF-SHA256(salt = "", ikm = content key, info)[..8]
    let mut kid = [0u8; 8];
    hkdf::Hkdf::<Sha256>::new(None, content_key).expand(b"vodvault/v1/content-key-id", &mut kid).ok()?;
    if header[12..20] != kid {
        return None;
    }
    let mut file_key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(&header[20..36]), content_key)
        .expand_multi_info(&[b"vodvault/v1/seal", header, context], &mut file_key)
        .ok()?;
    let cipher = Aes256Gcm::new(&file_key.into());
    let body = &sealed[48..];
    let stride = chunk_size + 16;
    let chunks = body.len().div_ceil(stride).max(1);
    let mut out = Vec::new();
    for (i, chunk) in body.chunks(stride).enumerate() {
        let (ct, tag) = chunk.split_at(chunk.len().checked_sub(16)?);
        let mut nonce = [0u8; 12];
        nonce[..7].copy_from_slice(&header[36..43]);
        nonce[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        nonce[11] = u8::from(i + 1 == chunks);
        let mut buf = ct.to_vec();
        cipher.decrypt_in_place_detached(&nonce.into(), b"", &mut buf, tag.into()).ok()?;
        out.extend(buf);
    }
    Some(out)
}

fn vector_bytes(v: &Vector) -> Vec<u8> {
    let k = ContentKey::from_bytes(array(&v.content_key));
    vodvault_core::testing::seal_with_salt_and_prefix(
        &k,
        v.context.as_bytes(),
        SealOptions { chunk_size: v.chunk_size },
        array(&v.salt),
        array(&v.nonce_prefix),
        &pattern(v.plaintext_len),
    )
    .unwrap()
}

#[test]
fn fixed_vectors_never_change() {
    for v in vectors() {
        let sealed = vector_bytes(&v);
        assert_eq!(hex::encode(Sha256::digest(&sealed)), v.sealed_sha256, "{}", v.name);
        if let Some(h) = &v.sealed_hex {
            assert_eq!(&hex::encode(&sealed), h, "{}", v.name);
        }
    }
}

#[test]
fn fixed_vectors_decode_independently_and_with_the_reader() {
    for v in vectors() {
        let sealed = vector_bytes(&v);
        let ck: [u8; 32] = array(&v.content_key);
        let plain = independent_decode(&sealed, &ck, v.context.as_bytes())
            .unwrap_or_else(|| panic!("{}: independent decoder rejected it", v.name));
        assert_eq!(plain, pattern(v.plaintext_len), "{}", v.name);
        let k = ContentKey::from_bytes(ck);
        assert_eq!(open_all(&sealed, &k, v.context.as_bytes()).unwrap(), plain, "{}", v.name);
    }
}

#[test]
fn independent_decoder_reads_random_files_too() {
    for (len, cs) in [(0, 1024), (1, 1024), (70_000, 1024), (200_000, 65_536)] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let sealed = seal_with(&data, &key(3), b"file", cs);
        assert_eq!(independent_decode(&sealed, &[3; 32], b"file").unwrap(), data);
    }
}

/// Regenerates `vectors/seal-v1.json`. Run only when adding a vector, never to "fix" one:
/// `VODVAULT_WRITE_VECTORS=1 cargo test -p vodvault-core --test seal_format -- --ignored`.
#[test]
#[ignore = "writes the fixed vectors; see its doc comment"]
fn write_vectors() {
    if std::env::var_os("VODVAULT_WRITE_VECTORS").is_none() {
        return;
    }
    let cases: &[(&str, u8, u32, &str, usize, bool)] = &[
        ("empty", 0x11, 1024, "", 0, true),
        ("one byte", 0x22, 1024, "seg/0", 1, true),
        ("exactly one chunk", 0x33, 1024, "x", 1024, true),
        ("one chunk plus one byte", 0x44, 1024, "x", 1025, true),
        ("three chunks of 2 KiB", 0x55, 2048, "asset/abc/segment/17", 5000, true),
        ("default chunk size, 200 KB", 0x66, 65536, "media/progressive.mp4", 200_000, false),
    ];
    let mut out = Vec::new();
    for &(name, kb, chunk_size, ctx, len, full) in cases {
        let mut v = Vector {
            name: name.into(),
            content_key: hex::encode([kb; 32]),
            salt: hex::encode((0..16u8).map(|i| kb ^ i).collect::<Vec<_>>()),
            nonce_prefix: hex::encode((0..7u8).map(|i| kb.wrapping_add(i)).collect::<Vec<_>>()),
            chunk_size,
            context: ctx.into(),
            plaintext_len: len,
            sealed_sha256: String::new(),
            sealed_hex: None,
        };
        let sealed = vector_bytes(&v);
        v.sealed_sha256 = hex::encode(Sha256::digest(&sealed));
        v.sealed_hex = full.then(|| hex::encode(&sealed));
        out.push(serde_json::json!({
            "name": v.name, "content_key": v.content_key, "salt": v.salt,
            "nonce_prefix": v.nonce_prefix, "chunk_size": v.chunk_size, "context": v.context,
            "plaintext_len": v.plaintext_len, "sealed_sha256": v.sealed_sha256,
            "sealed_hex": v.sealed_hex,
        }));
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/seal-v1.json");
    std::fs::write(path, serde_json::to_string_pretty(&out).unwrap() + "\n").unwrap();
}

// ---------------------------------------------------------------------------------------------
// Round trips.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_at_arbitrary_offsets(
        len in 0usize..12_000,
        chunk_size in 1024u32..3000,
        pieces in proptest::collection::vec(1usize..4000, 1..8),
        reads in proptest::collection::vec((0u64..13_000, 0usize..5000), 1..16),
    ) {
        let data = pattern(len);
        let k = key(7);
        // Feed the writer in uneven pieces.
        let mut w = SealWriter::new(Vec::new(), &k, b"p", SealOptions { chunk_size }).unwrap();
        let mut rest = &data[..];
        for p in pieces.iter().cycle() {
            if rest.is_empty() { break; }
            let n = (*p).min(rest.len());
            w.append(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
        let (sealed, summary) = w.finish().unwrap();
        prop_assert_eq!(summary.plaintext_len, len as u64);
        prop_assert_eq!(sealed.len() as u64, seal::sealed_len(len as u64, chunk_size));
        let r = SealedReader::open(&sealed, &k, b"p").unwrap();
        prop_assert_eq!(r.len(), len as u64);
        for (offset, n) in reads {
            let mut buf = vec![0xEEu8; n];
            let got = r.read_at(offset, &mut buf).unwrap();
            let start = (offset as usize).min(len);
            let end = (start + n).min(len);
            prop_assert_eq!(got, end - start);
            prop_assert_eq!(&buf[..got], &data[start..end]);
            // Nothing is written past what was read.
            prop_assert!(buf[got..].iter().all(|&b| b == 0xEE));
        }
    }
}

#[test]
fn large_reads_spanning_many_chunks_use_the_direct_path() {
    let data = pattern(1_000_000);
    let sealed = seal(&data, 16 * 1024);
    let r = SealedReader::open(&sealed, &key(1), b"ctx").unwrap();
    for (off, n) in [(0, 1_000_000), (16 * 1024, 65 * 1024), (100, 300_000), (999_990, 100)] {
        let mut buf = vec![0u8; n];
        let got = r.read_at(off as u64, &mut buf).unwrap();
        assert_eq!(&buf[..got], &data[off..(off + n).min(data.len())]);
    }
}

#[test]
fn reads_from_a_file_match_memory_across_runs_of_whole_chunks_and_fail_whole_when_the_file_changes() {
    // 100 chunks of 1 KiB and a short last one: reads of up to 100 whole chunks go through the
    // file's vectored reads (several runs per read), partial ones through the chunk cache.
    let data = pattern(100 * 1024 + 300);
    let sealed = seal(&data, 1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealed");
    std::fs::write(&path, &sealed).unwrap();
    let r = SealedReader::open(std::fs::File::open(&path).unwrap(), &key(1), b"ctx").unwrap();
    let reads = [(0, data.len()), (0, 1 << 20), (1024, 40 * 1024), (1000, 50 * 1024), (99 * 1024, 2000), (5, 10)];
    for (off, n) in reads {
        let mut buf = vec![0xEEu8; n];
        let got = r.read_at(off as u64, &mut buf).unwrap();
        let end = (off + n).min(data.len());
        assert_eq!(got, end - off, "read at {off} of {n}");
        assert_eq!(&buf[..got], &data[off..end], "read at {off} of {n}");
        assert!(buf[got..].iter().all(|&b| b == 0xEE));
    }

    // A byte of chunk 37 flipped on disk: a read across it fails as a whole.
    let mut tampered = sealed.clone();
    tampered[seal::HEADER_LEN + 37 * (1024 + 16) + 9] ^= 1;
    std::fs::write(&path, &tampered).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    assert!(is_integrity(r.read_at(0, &mut buf)));
    // Cut after opening: a read into the missing part is an integrity failure, not short bytes.
    std::fs::write(&path, &sealed[..sealed.len() / 2]).unwrap();
    assert!(is_integrity(r.read_at(40 * 1024, &mut buf)));
    assert!(r.read_at(0, &mut buf[..1024]).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Tampering: every case is the one opaque Integrity error, never wrong bytes.

#[test]
fn every_single_byte_change_is_detected() {
    let data = pattern(2500);
    let sealed = seal(&data, 1024);
    for i in 0..sealed.len() {
        for flip in [0x01u8, 0x80] {
            let mut t = sealed.clone();
            t[i] ^= flip;
            assert!(is_integrity(open_all(&t, &key(1), b"ctx")), "byte {i} ^ {flip:#x}");
        }
    }
}

#[test]
fn every_truncation_and_extension_is_detected() {
    let data = pattern(3 * 1024);
    let sealed = seal(&data, 1024);
    for len in 0..sealed.len() {
        assert!(is_integrity(open_all(&sealed[..len], &key(1), b"ctx")), "truncated to {len}");
    }
    for extra in [1usize, 15, 16, 17, 1040, 2080] {
        let mut t = sealed.clone();
        t.extend(std::iter::repeat_n(0u8, extra));
        assert!(is_integrity(open_all(&t, &key(1), b"ctx")), "extended by {extra}");
    }
    // Appending a copy of a genuine chunk.
    let mut t = sealed.clone();
    t.extend_from_slice(&sealed[48..48 + 1040]);
    assert!(is_integrity(open_all(&t, &key(1), b"ctx")));
    // Dropping the genuine last chunk leaves a file whose new "last" chunk was sealed as
    // not-last.
    let cut = sealed.len() - 1040;
    assert!(is_integrity(open_all(&sealed[..cut], &key(1), b"ctx")));
}

#[test]
fn reordered_chunks_are_detected() {
    let data = pattern(4 * 1024);
    let sealed = seal(&data, 1024);
    let chunk = |i: usize| 48 + i * 1040..48 + (i + 1) * 1040;
    let mut t = sealed.clone();
    t[chunk(0)].copy_from_slice(&sealed[chunk(1)]);
    t[chunk(1)].copy_from_slice(&sealed[chunk(0)]);
    let r = SealedReader::open(&t[..], &key(1), b"ctx").unwrap(); // the last chunk is intact
    assert!(is_integrity(r.read_at(0, &mut [0u8; 10])));
    assert!(is_integrity(r.read_at(1024, &mut [0u8; 10])));
    // Chunks 2 and 3 are untouched and still readable: verification is per chunk.
    let mut buf = [0u8; 2048];
    assert_eq!(r.read_at(2048, &mut buf).unwrap(), 2048);
    assert_eq!(&buf[..], &data[2048..]);
}

#[test]
fn chunks_and_files_do_not_move_between_files_or_contexts() {
    let data = pattern(3 * 1024);
    let a = seal_with(&data, &key(1), b"segment/1", 1024);
    let b = seal_with(&data, &key(1), b"segment/1", 1024);
    assert_ne!(a, b, "fresh salt per file");
    // A chunk of `a` in `b`, same key, same context, same position: still rejected.
    let mut t = b.clone();
    t[48..48 + 1040].copy_from_slice(&a[48..48 + 1040]);
    assert!(is_integrity(open_all(&t, &key(1), b"segment/1")));
    // `a`'s header on `b`'s chunks.
    let mut t = b;
    t[..48].copy_from_slice(&a[..48]);
    assert!(is_integrity(open_all(&t, &key(1), b"segment/1")));
    // A whole file presented as another one of the same asset.
    assert!(is_integrity(open_all(&a, &key(1), b"segment/2")));
    // The wrong key.
    assert!(is_integrity(open_all(&a, &key(2), b"segment/1")));
}

#[test]
fn garbage_and_short_inputs_are_integrity_errors_not_panics() {
    for junk in [&b""[..], b"VVSEAL", &[0u8; 47], &[0u8; 48], &[0u8; 64], b"#EXTM3U\n#EXT-X-VERSION:3\n"] {
        assert!(is_integrity(open_all(junk, &key(1), b"ctx")));
    }
    // A header that claims a huge chunk size is refused before any allocation.
    let mut t = seal(b"abc", 1024);
    t[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(is_integrity(open_all(&t, &key(1), b"ctx")));
}

// ---------------------------------------------------------------------------------------------
// Random access reads only what it needs.

struct CountingSource<'a> {
    data: &'a [u8],
    reads: RefCell<Vec<(u64, usize)>>,
}

impl ReadAt for CountingSource<'_> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.reads.borrow_mut().push((offset, buf.len()));
        self.data.read_exact_at(buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.data.len() as u64)
    }
}

#[test]
fn a_read_touches_only_its_chunks() {
    let data = pattern(64 * 1024 * 10);
    let sealed = seal(&data, 64 * 1024);
    let src = CountingSource { data: &sealed, reads: RefCell::new(Vec::new()) };
    let r = SealedReader::open(&src, &key(1), b"ctx").unwrap();
    src.reads.borrow_mut().clear();
    let mut buf = [0u8; 100];
    r.read_at(5 * 65536 + 1000, &mut buf).unwrap();
    assert_eq!(&buf[..], &data[5 * 65536 + 1000..5 * 65536 + 1100]);
    let reads = src.reads.borrow().clone();
    let chunk5 = r.chunk_range(5);
    assert!(!reads.is_empty());
    for (off, n) in reads {
        assert!(off >= chunk5.start && off + n as u64 <= chunk5.end, "read {off}+{n} outside chunk 5");
    }
}
