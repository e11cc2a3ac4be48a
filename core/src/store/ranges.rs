//! A progressive file written in byte-range pieces, in parallel and out of order, into
//! `<name>.ranges` beside its final name: plain bytes at their offsets (Normal mode), or sealed
//! chunks at theirs (Encrypted mode: the sealed format's fixed chunk stride puts chunk `i` at a
//! known offset, so a chunk can be sealed and written as soon as its bytes are in).
//!
//! A [`RangeFile`] seals each chunk index at most once ([`ChunkSealer`]); a download that resumes
//! after its process ended opens a new sealed file with a fresh salt and seals the kept pieces
//! into it again (after checking them), as a resumed part is (D36): no nonce ever seals two
//! plaintexts, whatever the origin sends later for the same offsets.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Layout, StoreError, StoredPiece, seal_context, temp_in};
use crate::keys::ContentKey;
use crate::live::PartialFile;
use crate::model::Mode;
use crate::seal::{self, ChunkOpener, ChunkSealer, SealError, SealOptions};

/// A progressive file being written in pieces.
pub(crate) struct RangeFile {
    file: Arc<File>,
    part: PathBuf,
    dest: PathBuf,
    len: u64,
    chunk: u32,
    sealed: Option<Sealed>,
}

struct Sealed {
    sealer: ChunkSealer,
    opener: ChunkOpener<Arc<File>>,
}

impl std::fmt::Debug for RangeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeFile").field("part", &self.part).field("len", &self.len).finish_non_exhaustive()
    }
}

impl RangeFile {
    /// The path of the part of file `name` of asset `id`.
    pub(crate) fn part_path(layout: &Layout, id: &str, name: &str, mode: Mode) -> PathBuf {
        let dest = layout.file(id, name, mode);
        let file_name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        dest.with_file_name(format!("{file_name}.ranges"))
    }

    /// Opens the part of file `name` (of `len` plaintext bytes) of asset `id`, keeping the
    /// byte ranges in `keep` (pieces recorded as durable) that are there and check out; returns
    /// the file and the ranges kept. Ranges start on a chunk boundary and end on one or at
    /// `len`. In Encrypted mode the part is always a new sealed file: kept pieces are decrypted,
    /// verified and sealed into it again. Blocking.
    ///
    /// # Errors
    /// [`StoreError`] (a full disk included: the old part then stays as it was).
    pub(crate) fn open(
        layout: &Layout,
        id: &str,
        name: &str,
        key: Option<&ContentKey>,
        options: SealOptions,
        len: u64,
        keep: &[(u64, u64)],
    ) -> Result<(Self, Vec<(u64, u64)>), StoreError> {
        let mode = if key.is_some() { Mode::Encrypted } else { Mode::Normal };
        let dest = layout.file(id, name, mode);
        let part = Self::part_path(layout, id, name, mode);
        let dir = part.parent().unwrap_or(layout.root()).to_owned();
        std::fs::create_dir_all(&dir)?;
        let chunk = options.chunk_size;
        let aligned = |&&(a, b): &&(u64, u64)| {
            a % u64::from(chunk) == 0 && (b % u64::from(chunk) == 0 || b == len) && a < b && b <= len
        };
        match key {
            None => {
                let file = File::options().create(true).truncate(false).read(true).write(true).open(&part)?;
                // Kept pieces were synced before they were recorded; a part of another length is
                // not this file.
                let kept: Vec<(u64, u64)> = if file.metadata()?.len() == len {
                    keep.iter().filter(aligned).copied().collect()
                } else {
                    Vec::new()
                };
                file.set_len(len)?;
                let f = Self { file: Arc::new(file), part, dest, len, chunk, sealed: None };
                Ok((f, kept))
            }
            Some(key) => {
                let context = seal_context(id, name);
                let sealer = ChunkSealer::new(key, &context, options, len)?;
                let (tmp, tmp_path) = temp_in(&dir, &part)?.into_parts();
                tmp.set_len(sealer.sealed_len())?;
                tmp.write_all_at(sealer.header(), 0)?;
                let mut kept = Vec::new();
                if let Ok(old) = File::open(&part)
                    && let Ok(opener) = ChunkOpener::new(old, key, &context, len)
                    && opener.chunk_size() == chunk
                {
                    let mut plain = Vec::new();
                    let mut buf = Vec::new();
                    for &(a, b) in keep.iter().filter(aligned) {
                        // Every chunk of the piece must verify before any of it is sealed again.
                        plain.clear();
                        let ok = (a / u64::from(chunk)..b.div_ceil(u64::from(chunk)))
                            .all(|i| opener.open(i, &mut buf).map(|_| plain.extend_from_slice(&buf)).is_ok());
                        if !ok {
                            tracing::info!("a kept piece of {name} does not verify: fetching it again");
                            continue;
                        }
                        for (n, piece) in plain.chunks(chunk as usize).enumerate() {
                            let index = a / u64::from(chunk) + n as u64;
                            buf.clear();
                            buf.extend_from_slice(piece);
                            sealer.seal(index, &mut buf)?;
                            tmp.write_all_at(&buf, sealer.offset(index))?;
                        }
                        kept.push((a, b));
                    }
                }
                tmp.sync_data()?;
                tmp_path.persist(&part).map_err(|e| StoreError::from(e.error))?;
                let file = Arc::new(tmp);
                let opener = ChunkOpener::new(Arc::clone(&file), key, &context, len)?;
                let f = Self { file, part, dest, len, chunk, sealed: Some(Sealed { sealer, opener }) };
                Ok((f, kept))
            }
        }
    }

    /// Plaintext bytes of the whole file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Bytes per chunk: pieces and writes start on a multiple of it.
    pub(crate) fn chunk_size(&self) -> u32 {
        self.chunk
    }

    /// Writes the chunk that starts at plaintext `offset` (a multiple of the chunk size): `buf`
    /// holds exactly its bytes (a chunk, fewer only at the end of the file). In Encrypted mode
    /// `buf` is sealed in place.
    ///
    /// # Errors
    /// [`StoreError`]; a chunk written a second time in Encrypted mode is refused.
    pub(crate) fn write_chunk(&self, offset: u64, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let size = u64::from(self.chunk);
        let want = (self.len.saturating_sub(offset)).min(size) as usize;
        if !offset.is_multiple_of(size) || buf.len() != want || offset >= self.len {
            return Err(StoreError::Io(io::Error::other("a piece's chunk is not where it belongs")));
        }
        match &self.sealed {
            None => self.file.write_all_at(buf, offset)?,
            Some(s) => {
                let index = offset / size;
                s.sealer.seal(index, buf)?;
                self.file.write_all_at(buf, s.sealer.offset(index))?;
            }
        }
        Ok(())
    }

    /// Makes every chunk written so far durable.
    ///
    /// # Errors
    /// [`StoreError`].
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        Ok(self.file.sync_data()?)
    }

    /// Reads plaintext at `offset` into `buf` from chunks that are written (the caller knows
    /// which); fewer bytes only at the end of the file.
    ///
    /// # Errors
    /// [`StoreError::Seal`] (`Integrity`) for a chunk that is not there or does not verify.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let n = (self.len.saturating_sub(offset)).min(buf.len() as u64) as usize;
        match &self.sealed {
            None => {
                self.file.read_exact_at(&mut buf[..n], offset)?;
            }
            Some(s) => {
                let size = u64::from(self.chunk);
                let mut done = 0;
                let mut chunk = Vec::new();
                while done < n {
                    let at = offset + done as u64;
                    s.opener.open(at / size, &mut chunk)?;
                    let from = (at % size) as usize;
                    let take = (chunk.len() - from).min(n - done);
                    buf[done..done + take].copy_from_slice(&chunk[from..from + take]);
                    done += take;
                }
            }
        }
        Ok(n)
    }

    /// Reads the whole file back in order (every sealed chunk verified), passing each block to
    /// `each`, then makes it durable and moves it to its final name. A plain file's SHA-256 is
    /// computed on the way.
    ///
    /// # Errors
    /// [`StoreError`] (`Integrity` if a chunk is missing or does not verify).
    pub(crate) fn finish(&self, each: &mut dyn FnMut(&[u8])) -> Result<StoredPiece, StoreError> {
        let mut digest = self.sealed.is_none().then(|| ring::digest::Context::new(&ring::digest::SHA256));
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0;
        while pos < self.len {
            let n = self.read_at(pos, &mut buf)?;
            if n == 0 {
                return Err(StoreError::Seal(SealError::Integrity));
            }
            each(&buf[..n]);
            if let Some(d) = &mut digest {
                d.update(&buf[..n]);
            }
            pos += n as u64;
        }
        self.file.sync_data()?;
        std::fs::rename(&self.part, &self.dest)?;
        seal::sync_parent_dir(&self.dest)?;
        Ok(StoredPiece { path: self.dest.clone(), size: self.len, sha256: digest.map(|d| hex::encode(d.finish())) })
    }

    /// Deletes the part (it is not the file, and must not be resumed from).
    pub(crate) fn discard(&self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

/// Players read the pieces that are written while the rest downloads.
pub(crate) struct Readable {
    pub(crate) file: Arc<RangeFile>,
    pub(crate) piece: u64,
}

impl PartialFile for Readable {
    fn len(&self) -> u64 {
        self.file.len
    }

    fn piece(&self) -> u64 {
        self.piece
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read_at(offset, buf).map_err(|e| match e {
            StoreError::Io(io) => io,
            other => io::Error::other(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_piece(f: &RangeFile, data: &[u8], a: u64, b: u64) {
        let c = u64::from(f.chunk_size());
        let mut at = a;
        while at < b {
            let end = (at + c).min(b);
            let mut buf = data[at as usize..end as usize].to_vec();
            f.write_chunk(at, &mut buf).unwrap();
            at = end;
        }
    }

    #[test]
    fn pieces_in_any_order_make_the_file_and_a_resume_keeps_what_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let key = ContentKey::from_bytes([3u8; 32]);
        let opts = SealOptions { chunk_size: 1024 };
        for key in [None, Some(&key)] {
            let (f, kept) = RangeFile::open(&layout, "a", "media.mp4", key, opts, 10_000, &[]).unwrap();
            assert!(kept.is_empty());
            write_piece(&f, &data, 4096, 8192);
            write_piece(&f, &data, 8192, 10_000);
            f.sync().unwrap();
            let mut out = vec![0u8; 100];
            assert_eq!(f.read_at(9_950, &mut out).unwrap(), 50);
            assert_eq!(out[..50], data[9_950..]);
            if key.is_some() {
                let mut again = data[4096..5120].to_vec();
                assert!(f.write_chunk(4096, &mut again).is_err(), "a chunk is sealed once");
            }
            drop(f);
            // Resumed: the two pieces written are kept (sealed again, under a fresh salt), a
            // piece never written is not.
            let (f, kept) = RangeFile::open(
                &layout,
                "a",
                "media.mp4",
                key,
                opts,
                10_000,
                &[(0, 4096), (4096, 8192), (8192, 10_000)],
            )
            .unwrap();
            if key.is_some() {
                assert_eq!(kept, vec![(4096, 8192), (8192, 10_000)]);
            }
            write_piece(&f, &data, 0, 4096);
            let mut seen = Vec::new();
            let stored = f.finish(&mut |b| seen.extend_from_slice(b)).unwrap();
            assert_eq!(seen, data);
            assert_eq!(stored.size, 10_000);
            let path = layout.file("a", "media.mp4", if key.is_some() { Mode::Encrypted } else { Mode::Normal });
            match key {
                None => assert_eq!(std::fs::read(&path).unwrap(), data),
                Some(k) => {
                    let r = seal::SealedReader::open_path(&path, k, &seal_context("a", "media.mp4")).unwrap();
                    assert_eq!(r.read_all().unwrap(), data);
                }
            }
        }
    }
}
