//! The sealed file format: chunked, authenticated, random-access encryption of one stored file.
//!
//! The design is Tink's streaming AEAD (AES-GCM-HKDF); the byte layout, derivations and threat
//! model are specified in `docs/format.md`. In short:
//!
//! ```text
//! header (48 B) = "VVSEAL" | version 1 | suite 1 | chunk size u32 | content key id (8)
//!                 | salt (16) | nonce prefix (7) | 5 zero bytes
//! file key      = HKDF-SHA256(salt, content key, "vodvault/v1/seal" ‖ header ‖ context)
//! chunk i       = AES-256-GCM(file key, nonce = prefix ‖ i as u32 ‖ last?1:0, plaintext i) ‖ tag
//! ```
//!
//! Every chunk but the last holds exactly `chunk size` plaintext bytes; the last holds 1 to
//! `chunk size` bytes (0 only when the whole file is empty). Because the header (and the caller's
//! `context`, e.g. the file's role in its asset) feeds the file key, and the nonce carries the
//! chunk's index and a last-chunk flag, any change to any byte, truncation or extension at any
//! point, reordering chunks, and moving chunks or whole files between contexts all fail
//! authentication, as the single opaque [`SealError::Integrity`].
//!
//! This file is long because the format is kept in one place: the writers and readers share its
//! layout constants and nonce derivation, and side by side a mismatch between them shows.

use std::fmt;
use std::fs::File;
use std::io::{self, IoSliceMut, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

use crate::crypto::{self, AeadKey, RandomUnavailable};
use crate::keyfile::KeyId;
use crate::keys::ContentKey;

/// Length of the header at the start of every sealed file.
pub const HEADER_LEN: usize = 48;
/// Authentication tag bytes added to each chunk.
pub const TAG_LEN: usize = AeadKey::TAG_LEN;
/// Plaintext bytes per chunk unless configured otherwise.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Smallest accepted chunk size.
pub const MIN_CHUNK_SIZE: u32 = 1024;
/// Largest accepted chunk size (a reader allocates one chunk).
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

const MAGIC: [u8; 6] = *b"VVSEAL";
const SUITE_AES256GCM_HKDF_SHA256: u8 = 1;
const FILE_KEY_INFO: &[u8] = b"vodvault/v1/seal";
const SALT_LEN: usize = 16;
const PREFIX_LEN: usize = 7;
const MAX_CHUNKS: u64 = 1 << 32;

/// Errors from sealing or opening.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The sealed data failed verification: wrong key or context, or the file was modified,
    /// truncated, extended, reordered or spliced. Deliberately says nothing more.
    #[error("sealed data failed verification (wrong key, or the file was modified)")]
    Integrity,
    /// A chunk size outside [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`] was requested.
    #[error("chunk size {0} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}")]
    InvalidChunkSize(u32),
    /// The plaintext would need more than 2³² chunks.
    #[error("file too large for its chunk size")]
    TooLarge,
    /// Reading or writing the underlying storage failed.
    #[error("sealed file I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The OS random generator failed.
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

impl From<SealError> for io::Error {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Io(e) => e,
            SealError::Integrity => io::Error::new(io::ErrorKind::InvalidData, e),
            other => io::Error::other(other),
        }
    }
}

/// How a file is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealOptions {
    /// Plaintext bytes per chunk: the unit of random access and of verification.
    pub chunk_size: u32,
}

impl Default for SealOptions {
    fn default() -> Self {
        Self { chunk_size: DEFAULT_CHUNK_SIZE }
    }
}

/// Size of the sealed form of `plaintext_len` bytes at `chunk_size`.
pub fn sealed_len(plaintext_len: u64, chunk_size: u32) -> u64 {
    let chunks = plaintext_len.div_ceil(u64::from(chunk_size)).max(1);
    HEADER_LEN as u64 + plaintext_len + chunks * TAG_LEN as u64
}

/// The parsed header of a sealed file, and the per-file key derived from it.
struct FileCipher {
    key: AeadKey,
    prefix: [u8; PREFIX_LEN],
    chunk_size: u32,
}

impl FileCipher {
    fn new(content_key: &ContentKey, header: &[u8; HEADER_LEN], context: &[u8]) -> Self {
        let mut raw = Zeroizing::new([0u8; AeadKey::LEN]);
        crypto::hkdf_sha256(&header[20..36], content_key.raw(), &[FILE_KEY_INFO, header, context], &mut raw[..]);
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&header[36..43]);
        let chunk_size = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        Self { key: AeadKey::new(&raw), prefix, chunk_size }
    }

    fn nonce(&self, index: u64, last: bool) -> [u8; AeadKey::NONCE_LEN] {
        let mut nonce = [0u8; AeadKey::NONCE_LEN];
        nonce[..PREFIX_LEN].copy_from_slice(&self.prefix);
        // Callers keep index < 2^32 (MAX_CHUNKS), so this truncation never loses bits.
        nonce[7..11].copy_from_slice(&(index as u32).to_be_bytes());
        nonce[11] = u8::from(last);
        nonce
    }
}

fn build_header(chunk_size: u32, key_id: KeyId, salt: &[u8; SALT_LEN], prefix: &[u8; PREFIX_LEN]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..6].copy_from_slice(&MAGIC);
    h[6] = FORMAT_VERSION;
    h[7] = SUITE_AES256GCM_HKDF_SHA256;
    h[8..12].copy_from_slice(&chunk_size.to_be_bytes());
    h[12..20].copy_from_slice(&key_id.0);
    h[20..36].copy_from_slice(salt);
    h[36..43].copy_from_slice(prefix);
    h
}

fn check_chunk_size(chunk_size: u32) -> Result<(), SealError> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        Ok(())
    } else {
        Err(SealError::InvalidChunkSize(chunk_size))
    }
}

/// What a finished writer produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealSummary {
    /// Plaintext bytes sealed.
    pub plaintext_len: u64,
    /// Bytes written, header and tags included.
    pub sealed_len: u64,
    /// Chunks written.
    pub chunks: u64,
}

/// Seals bytes as they arrive into any [`Write`]: plaintext is only ever held in memory, one
/// chunk at a time. Call [`SealWriter::finish`]; a writer dropped without it leaves an
/// incomplete file that no reader accepts.
pub struct SealWriter<W: Write> {
    inner: W,
    cipher: FileCipher,
    /// Plaintext of the current chunk, with room for its tag.
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    plaintext_len: u64,
}

impl<W: Write> fmt::Debug for SealWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealWriter")
            .field("chunk_size", &self.cipher.chunk_size)
            .field("chunks_written", &self.index)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

impl<W: Write> SealWriter<W> {
    /// Starts a sealed file in `inner` under `key`, bound to `context` (the same bytes must be
    /// given to open it). Writes the header at once; salt and nonce prefix are random.
    ///
    /// # Errors
    /// [`SealError::InvalidChunkSize`], [`SealError::Random`], or I/O errors from `inner`.
    pub fn new(inner: W, key: &ContentKey, context: &[u8], options: SealOptions) -> Result<Self, SealError> {
        let mut salt = [0u8; SALT_LEN];
        let mut prefix = [0u8; PREFIX_LEN];
        crypto::fill_random(&mut salt)?;
        crypto::fill_random(&mut prefix)?;
        Self::with_salt_and_prefix(inner, key, context, options, salt, prefix)
    }

    /// As [`SealWriter::new`] with a chosen salt and nonce prefix. Reusing them under one key
    /// and context is catastrophic: only `new` and the format's fixed test vectors
    /// (`testing::seal_with_salt_and_prefix`) choose them.
    pub(crate) fn with_salt_and_prefix(
        mut inner: W,
        key: &ContentKey,
        context: &[u8],
        options: SealOptions,
        salt: [u8; SALT_LEN],
        prefix: [u8; PREFIX_LEN],
    ) -> Result<Self, SealError> {
        check_chunk_size(options.chunk_size)?;
        let header = build_header(options.chunk_size, key.id(), &salt, &prefix);
        inner.write_all(&header)?;
        let cipher = FileCipher::new(key, &header, context);
        let cap = options.chunk_size as usize + TAG_LEN;
        Ok(Self { inner, cipher, buf: Zeroizing::new(Vec::with_capacity(cap)), index: 0, plaintext_len: 0 })
    }

    /// Full chunks sealed and written so far.
    pub fn chunks_written(&self) -> u64 {
        self.index
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.cipher.chunk_size
    }

    /// The inner writer (e.g. to sync it).
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    fn seal_chunk(&mut self, last: bool) -> Result<(), SealError> {
        if self.index >= MAX_CHUNKS {
            return Err(SealError::TooLarge);
        }
        let nonce = self.cipher.nonce(self.index, last);
        let tag = self.cipher.key.seal(nonce, &[], &mut self.buf[..]);
        self.buf.extend_from_slice(&tag);
        let res = self.inner.write_all(&self.buf);
        // Wipe as we go: the buffer now holds ciphertext, but clear() alone keeps old bytes.
        self.buf.clear();
        res?;
        self.index += 1;
        Ok(())
    }

    /// Seals `data`. Equivalent to [`Write::write_all`], with the typed error.
    ///
    /// # Errors
    /// [`SealError::TooLarge`] or I/O errors from the inner writer.
    pub fn append(&mut self, mut data: &[u8]) -> Result<(), SealError> {
        let chunk = self.cipher.chunk_size as usize;
        while !data.is_empty() {
            // A full chunk is sealed only when more data follows: only `finish` knows which is
            // the last one.
            if self.buf.len() == chunk {
                self.seal_chunk(false)?;
            }
            let n = (chunk - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            self.plaintext_len += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Plaintext bytes accepted so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Seals the last chunk, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// I/O errors from the inner writer.
    pub fn finish(mut self) -> Result<(W, SealSummary), SealError> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        let summary = SealSummary {
            plaintext_len: self.plaintext_len,
            sealed_len: sealed_len(self.plaintext_len, self.cipher.chunk_size),
            chunks: self.index,
        };
        Ok((self.inner, summary))
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.append(data)?;
        Ok(data.len())
    }

    /// Flushes the inner writer. The chunk being filled stays in memory: a sealed chunk is
    /// final, so it is only written when full.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// How hard [`SealedFileWriter::finish`] works to make the file survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file before the rename and the directory after it: when `finish` returns, the
    /// file is on stable storage.
    Synced,
    /// fsync the file (data and size) before the rename, but not the directory: the caller
    /// syncs the directories of many files at once ([`sync_parent_dir`]) before relying on the
    /// renames.
    FileSynced,
    /// Rename without fsync: the file is complete for every reader at once, but a power loss
    /// may lose it. For callers that sync many files together later.
    Deferred,
}

/// Seals into a new file at a path, atomically: bytes go to a temporary file beside it, which is
/// renamed into place only by [`SealedFileWriter::finish`]. Dropped unfinished, it deletes the
/// temporary file and leaves the destination untouched.
#[derive(Debug)]
pub struct SealedFileWriter {
    writer: SealWriter<io::BufWriter<tempfile::NamedTempFile>>,
    dest: PathBuf,
}

impl SealedFileWriter {
    /// Starts sealing into `dest` (which appears only on `finish`).
    ///
    /// # Errors
    /// I/O errors creating the temporary file, or as [`SealWriter::new`].
    pub fn create(dest: &Path, key: &ContentKey, context: &[u8], options: SealOptions) -> Result<Self, SealError> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
        // Whole chunks are written at once, so the buffer only coalesces header + first chunk.
        let file = io::BufWriter::with_capacity(HEADER_LEN, tmp);
        Ok(Self { writer: SealWriter::new(file, key, context, options)?, dest: dest.to_owned() })
    }

    /// Seals `data`.
    ///
    /// # Errors
    /// As [`SealWriter::append`].
    pub fn append(&mut self, data: &[u8]) -> Result<(), SealError> {
        self.writer.append(data)
    }

    /// Plaintext bytes accepted so far.
    pub fn plaintext_len(&self) -> u64 {
        self.writer.plaintext_len()
    }

    /// Where the file will appear.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Seals the last chunk and moves the file to its destination (replacing any file there).
    ///
    /// # Errors
    /// I/O errors; on error the destination is untouched and the temporary file removed.
    pub fn finish(self, durability: Durability) -> Result<SealSummary, SealError> {
        let dest = self.dest.clone();
        let (tmp, summary) = self.seal_last()?;
        if durability != Durability::Deferred {
            tmp.as_file().sync_data()?;
        }
        tmp.persist(&dest).map_err(|e| SealError::Io(e.error))?;
        if durability == Durability::Synced {
            sync_parent_dir(&dest)?;
        }
        Ok(summary)
    }

    /// Seals the last chunk and renames the (complete, not yet synced) file to `path` instead of
    /// its destination: the caller moves it into place later. The file verifies whole, so a
    /// process killed in between leaves a file that can be checked and kept.
    ///
    /// # Errors
    /// I/O errors; on error the temporary file is removed.
    pub fn complete_at(self, path: &Path) -> Result<(File, SealSummary), SealError> {
        let (tmp, summary) = self.seal_last()?;
        let file = tmp.persist(path).map_err(|e| SealError::Io(e.error))?;
        Ok((file, summary))
    }

    fn seal_last(self) -> Result<(tempfile::NamedTempFile, SealSummary), SealError> {
        let (buffered, summary) = self.writer.finish()?;
        let tmp = buffered.into_inner().map_err(io::IntoInnerError::into_error)?;
        Ok((tmp, summary))
    }
}

impl Write for SealedFileWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.writer.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// fsyncs the directory holding `path`, making a rename into it durable.
///
/// # Errors
/// I/O errors opening or syncing the directory.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Positional reads from sealed storage.
pub trait ReadAt {
    /// Fills `buf` from `offset`, or fails with [`io::ErrorKind::UnexpectedEof`].
    ///
    /// # Errors
    /// I/O errors, or `UnexpectedEof` when fewer bytes are available.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Fills `bufs` one after the other with the bytes from `offset`, or fails with
    /// [`io::ErrorKind::UnexpectedEof`]. Files do it in one system call (`preadv`) on Linux,
    /// Android and Apple systems; the default reads a buffer at a time.
    ///
    /// # Errors
    /// As [`ReadAt::read_exact_at`].
    fn read_exact_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<()> {
        read_in_turn(self, bufs, offset)
    }
    /// Total size in bytes.
    ///
    /// # Errors
    /// I/O errors.
    fn size(&self) -> io::Result<u64>;
}

/// Fills `bufs` one after the other from `offset`, a `read_exact_at` each.
fn read_in_turn<S: ReadAt + ?Sized>(source: &S, bufs: &mut [IoSliceMut<'_>], mut offset: u64) -> io::Result<()> {
    for buf in bufs {
        source.read_exact_at(buf, offset)?;
        offset += buf.len() as u64;
    }
    Ok(())
}

#[cfg(unix)]
impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    fn read_exact_vectored_at(&self, mut bufs: &mut [IoSliceMut<'_>], mut offset: u64) -> io::Result<()> {
        while !bufs.is_empty() {
            match rustix::io::preadv(self, bufs, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    IoSliceMut::advance_slices(&mut bufs, n);
                    offset += n as u64;
                }
                Err(rustix::io::Errno::INTR) => {}
                // Older Apple systems (before iOS 14, macOS 11) have no preadv: a buffer at a time.
                Err(rustix::io::Errno::NOSYS) => return read_in_turn(self, bufs, offset),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src =
            start.checked_add(buf.len()).and_then(|end| self.get(start..end)).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
    fn read_exact_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<()> {
        (**self).read_exact_vectored_at(bufs, offset)
    }
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
    fn read_exact_vectored_at(&self, bufs: &mut [IoSliceMut<'_>], offset: u64) -> io::Result<()> {
        (**self).read_exact_vectored_at(bufs, offset)
    }
    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }
}

/// The most recently decrypted chunk, for reads that do not cover whole chunks.
struct ChunkCache {
    index: Option<u64>,
    buf: Zeroizing<Vec<u8>>,
}

/// Random access to a sealed file: [`SealedReader::len`] and [`SealedReader::read_at`] decrypt
/// and verify only the chunks a read touches. `open` verifies the last chunk, so the length is
/// authentic before any read. Shareable between threads (`&self` reads).
pub struct SealedReader<S> {
    source: S,
    cipher: FileCipher,
    chunks: u64,
    len: u64,
    cache: Mutex<ChunkCache>,
}

impl<S> fmt::Debug for SealedReader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedReader")
            .field("len", &self.len)
            .field("chunk_size", &self.cipher.chunk_size)
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

impl SealedReader<File> {
    /// Opens the sealed file at `path`; see [`SealedReader::open`].
    ///
    /// # Errors
    /// As [`SealedReader::open`], or I/O errors opening the file.
    pub fn open_path(path: &Path, key: &ContentKey, context: &[u8]) -> Result<Self, SealError> {
        Self::open(File::open(path)?, key, context)
    }
}

impl<S: ReadAt> SealedReader<S> {
    /// Opens sealed data in `source` with `key` and the `context` it was sealed with, verifying
    /// the header and the last chunk.
    ///
    /// # Errors
    /// [`SealError::Integrity`] for anything but a genuine file under this key and context;
    /// [`SealError::Io`] if the source cannot be read.
    pub fn open(source: S, key: &ContentKey, context: &[u8]) -> Result<Self, SealError> {
        let size = source.size()?;
        let mut header = [0u8; HEADER_LEN];
        read_exact_or_integrity(&source, &mut header, 0)?;
        let chunk_size = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if header[..6] != MAGIC
            || header[6] != FORMAT_VERSION
            || header[7] != SUITE_AES256GCM_HKDF_SHA256
            || header[12..20] != key.id().0
            || header[43..] != [0u8; 5]
            || check_chunk_size(chunk_size).is_err()
        {
            return Err(SealError::Integrity);
        }
        let body = size.checked_sub(HEADER_LEN as u64).ok_or(SealError::Integrity)?;
        let stride = u64::from(chunk_size) + TAG_LEN as u64;
        let chunks = body.div_ceil(stride);
        let last_sealed = body - (chunks.max(1) - 1) * stride;
        // Shapes the writer never produces: no chunk, a last chunk too short for its tag, an
        // empty last chunk after full ones, or too many chunks.
        if chunks == 0
            || last_sealed < TAG_LEN as u64
            || (chunks > 1 && last_sealed == TAG_LEN as u64)
            || chunks > MAX_CHUNKS
        {
            return Err(SealError::Integrity);
        }
        let len = (chunks - 1) * u64::from(chunk_size) + (last_sealed - TAG_LEN as u64);
        let cache = ChunkCache { index: None, buf: Zeroizing::new(Vec::with_capacity(stride as usize)) };
        let reader =
            Self { source, cipher: FileCipher::new(key, &header, context), chunks, len, cache: Mutex::new(cache) };
        {
            let mut cache = reader.cache.lock().unwrap_or_else(PoisonError::into_inner);
            reader.load_into_cache(&mut cache, chunks - 1)?;
        }
        Ok(reader)
    }

    /// Plaintext length in bytes (authenticated when the reader was opened).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.cipher.chunk_size
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// The byte range of chunk `index` (ciphertext and tag) in the sealed file.
    pub fn chunk_range(&self, index: u64) -> std::ops::Range<u64> {
        let stride = u64::from(self.cipher.chunk_size) + TAG_LEN as u64;
        let start = HEADER_LEN as u64 + index * stride;
        start..start + self.plain_chunk_len(index) as u64 + TAG_LEN as u64
    }

    fn plain_chunk_len(&self, index: u64) -> usize {
        let start = index * u64::from(self.cipher.chunk_size);
        (self.len - start).min(u64::from(self.cipher.chunk_size)) as usize
    }

    /// Decrypts and verifies chunk `index` in place: `sealed` holds the chunk exactly as stored
    /// (ciphertext then tag, as [`SealedReader::chunk_range`] locates it); on success its first
    /// bytes hold the plaintext, which is returned.
    ///
    /// # Errors
    /// [`SealError::Integrity`] if the chunk does not verify (or has the wrong length).
    pub fn decrypt_chunk_in_place<'a>(&self, index: u64, sealed: &'a mut [u8]) -> Result<&'a mut [u8], SealError> {
        if index >= self.chunks {
            return Err(SealError::Integrity);
        }
        let plain_len = self.plain_chunk_len(index);
        if sealed.len() != plain_len + TAG_LEN {
            return Err(SealError::Integrity);
        }
        let (body, tag) = sealed.split_at_mut(plain_len);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| SealError::Integrity)?;
        self.open_chunk(index, body, tag)?;
        Ok(body)
    }

    fn open_chunk(&self, index: u64, body: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), SealError> {
        let nonce = self.cipher.nonce(index, index + 1 == self.chunks);
        self.cipher.key.open(nonce, &[], tag, body).map_err(|_| {
            // Never leave unverified plaintext behind for a careless caller.
            body.fill(0);
            SealError::Integrity
        })
    }

    /// How many whole chunks from `index` (at most [`READ_RUN`]) fit in `room` plaintext bytes,
    /// and their plaintext length. At least one when chunk `index` fits whole.
    fn whole_chunks_from(&self, index: u64, room: u64) -> (usize, usize) {
        let (mut chunks, mut bytes) = (0usize, 0u64);
        while chunks < READ_RUN && index + (chunks as u64) < self.chunks {
            let len = self.plain_chunk_len(index + chunks as u64) as u64;
            if bytes + len > room {
                break;
            }
            bytes += len;
            chunks += 1;
        }
        (chunks, bytes as usize)
    }

    fn load_into_cache(&self, cache: &mut ChunkCache, index: u64) -> Result<(), SealError> {
        if cache.index == Some(index) {
            return Ok(());
        }
        cache.index = None;
        let range = self.chunk_range(index);
        cache.buf.resize((range.end - range.start) as usize, 0);
        read_exact_or_integrity(&self.source, &mut cache.buf, range.start)?;
        let sealed = &mut cache.buf[..];
        self.decrypt_chunk_in_place(index, sealed)?;
        cache.index = Some(index);
        Ok(())
    }

    /// Reads plaintext from `offset` into `buf`, returning how many bytes were read: fewer than
    /// `buf.len()` only at the end of the file, 0 at or past it. Only the chunks the range
    /// touches are read and verified.
    ///
    /// # Errors
    /// [`SealError::Integrity`] if any touched chunk fails verification (no byte of `buf` is then
    /// meaningful), [`SealError::Io`] if the source fails.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, SealError> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let end = self.len.min(offset + buf.len() as u64);
        let chunk = u64::from(self.cipher.chunk_size);
        let mut pos = offset;
        let mut out = 0usize;
        while pos < end {
            let index = pos / chunk;
            let within = (pos - index * chunk) as usize;
            let chunk_len = self.plain_chunk_len(index);
            let take = (chunk_len - within).min((end - pos) as usize);
            if within == 0 && take == chunk_len {
                // A run of whole chunks: read straight into the caller's buffer in one vectored
                // read (bodies into place, tags aside), then decrypt there. No copy, and one
                // system call per run instead of one or two per chunk.
                let (chunks, bytes) = self.whole_chunks_from(index, end - pos);
                let region = &mut buf[out..out + bytes];
                let mut tags = [[0u8; TAG_LEN]; READ_RUN];
                let mut iov = Vec::with_capacity(2 * chunks);
                for (body, tag) in region.chunks_mut(chunk as usize).zip(tags.iter_mut()) {
                    iov.push(IoSliceMut::new(body));
                    iov.push(IoSliceMut::new(tag));
                }
                self.source
                    .read_exact_vectored_at(&mut iov, self.chunk_range(index).start)
                    .map_err(eof_is_integrity)?;
                drop(iov);
                for (i, (body, tag)) in region.chunks_mut(chunk as usize).zip(&tags).enumerate() {
                    self.open_chunk(index + i as u64, body, tag)?;
                }
                pos += bytes as u64;
                out += bytes;
            } else {
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                self.load_into_cache(&mut cache, index)?;
                buf[out..out + take].copy_from_slice(&cache.buf[within..within + take]);
                pos += take as u64;
                out += take;
            }
        }
        Ok(out)
    }

    /// Reads exactly `buf.len()` bytes from `offset`.
    ///
    /// # Errors
    /// As [`SealedReader::read_at`]; [`SealError::Io`] with `UnexpectedEof` if the range passes
    /// the end.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SealError> {
        if self.read_at(offset, buf)? == buf.len() {
            Ok(())
        } else {
            Err(SealError::Io(io::ErrorKind::UnexpectedEof.into()))
        }
    }

    /// Reads the whole plaintext (for small files: playlists, keys, tests).
    ///
    /// # Errors
    /// As [`SealedReader::read_at`].
    pub fn read_all(&self) -> Result<Vec<u8>, SealError> {
        let len = usize::try_from(self.len).map_err(|_| SealError::TooLarge)?;
        let mut out = vec![0u8; len];
        self.read_exact_at(0, &mut out)?;
        Ok(out)
    }

    /// The underlying source.
    pub fn source(&self) -> &S {
        &self.source
    }
}

/// A sealed file of known plaintext length written out of order: each chunk sealed at its own
/// position by whoever has its plaintext (byte-range pieces fetched in parallel). The salt and
/// nonce prefix are fresh for every sealer, and a sealer seals each chunk index at most once
/// (a second time is refused, even with the same plaintext): no nonce ever seals two plaintexts.
pub(crate) struct ChunkSealer {
    cipher: FileCipher,
    header: [u8; HEADER_LEN],
    len: u64,
    chunks: u64,
    sealed: Mutex<Vec<u64>>,
}

impl ChunkSealer {
    /// A new sealed file of `len` plaintext bytes under `key` and `context`.
    ///
    /// # Errors
    /// [`SealError::InvalidChunkSize`], [`SealError::TooLarge`], [`SealError::Random`].
    pub(crate) fn new(key: &ContentKey, context: &[u8], options: SealOptions, len: u64) -> Result<Self, SealError> {
        check_chunk_size(options.chunk_size)?;
        let chunks = len.div_ceil(u64::from(options.chunk_size)).max(1);
        if chunks > MAX_CHUNKS {
            return Err(SealError::TooLarge);
        }
        let mut salt = [0u8; SALT_LEN];
        let mut prefix = [0u8; PREFIX_LEN];
        crypto::fill_random(&mut salt)?;
        crypto::fill_random(&mut prefix)?;
        let header = build_header(options.chunk_size, key.id(), &salt, &prefix);
        let cipher = FileCipher::new(key, &header, context);
        let sealed = Mutex::new(vec![0u64; chunks.div_ceil(64) as usize]);
        Ok(Self { cipher, header, len, chunks, sealed })
    }

    /// The file's header (at offset 0).
    pub(crate) fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// The whole sealed file's length.
    pub(crate) fn sealed_len(&self) -> u64 {
        sealed_len(self.len, self.cipher.chunk_size)
    }

    /// Where chunk `index` starts in the sealed file.
    pub(crate) fn offset(&self, index: u64) -> u64 {
        HEADER_LEN as u64 + index * (u64::from(self.cipher.chunk_size) + TAG_LEN as u64)
    }

    /// Plaintext bytes of chunk `index`.
    pub(crate) fn plain_len(&self, index: u64) -> usize {
        let start = index * u64::from(self.cipher.chunk_size);
        self.len.saturating_sub(start).min(u64::from(self.cipher.chunk_size)) as usize
    }

    /// Seals chunk `index` in place: `buf` holds exactly its plaintext, and gets its tag.
    ///
    /// # Errors
    /// [`SealError::Integrity`] for a wrong length, an index past the end, or an index already
    /// sealed by this sealer.
    pub(crate) fn seal(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), SealError> {
        if index >= self.chunks || buf.len() != self.plain_len(index) {
            return Err(SealError::Integrity);
        }
        {
            let mut sealed = self.sealed.lock().unwrap_or_else(PoisonError::into_inner);
            let (word, bit) = ((index / 64) as usize, 1u64 << (index % 64));
            if sealed[word] & bit != 0 {
                return Err(SealError::Integrity);
            }
            sealed[word] |= bit;
        }
        let tag = self.cipher.key.seal(self.cipher.nonce(index, index + 1 == self.chunks), &[], &mut buf[..]);
        buf.extend_from_slice(&tag);
        Ok(())
    }
}

/// Chunks of a sealed file being written out of order ([`ChunkSealer`]), read back one by one:
/// to serve what is there while the rest downloads, and to keep what verifies when a download
/// resumes (then sealed again under a fresh sealer).
pub(crate) struct ChunkOpener<S> {
    source: S,
    cipher: FileCipher,
    len: u64,
    chunks: u64,
}

impl<S: ReadAt> ChunkOpener<S> {
    /// Reads the header in `source`, a file of `len` plaintext bytes.
    ///
    /// # Errors
    /// [`SealError::Integrity`] unless it is a header for `key`.
    pub(crate) fn new(source: S, key: &ContentKey, context: &[u8], len: u64) -> Result<Self, SealError> {
        let r = PartialReader::new(source, key, context)?;
        let chunks = len.div_ceil(u64::from(r.cipher.chunk_size)).max(1);
        Ok(Self { source: r.source, cipher: r.cipher, len, chunks })
    }

    /// Plaintext bytes per chunk.
    pub(crate) fn chunk_size(&self) -> u32 {
        self.cipher.chunk_size
    }

    /// Decrypts chunk `index` into `buf` and returns its plaintext.
    ///
    /// # Errors
    /// [`SealError::Integrity`] if it is not there or does not verify.
    pub(crate) fn open(&self, index: u64, buf: &mut Vec<u8>) -> Result<usize, SealError> {
        let size = u64::from(self.cipher.chunk_size);
        let plain = self.len.saturating_sub(index * size).min(size) as usize;
        if index >= self.chunks {
            return Err(SealError::Integrity);
        }
        buf.resize(plain + TAG_LEN, 0);
        let start = HEADER_LEN as u64 + index * (size + TAG_LEN as u64);
        read_exact_or_integrity(&self.source, &mut buf[..], start)?;
        let (body, tag) = buf.split_at_mut(plain);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| SealError::Integrity)?;
        let last = index + 1 == self.chunks;
        self.cipher.key.open(self.cipher.nonce(index, last), &[], &tag, body).map_err(|_| {
            body.fill(0);
            SealError::Integrity
        })?;
        buf.truncate(plain);
        Ok(plain)
    }
}

/// The full chunks of a sealed file that is still being written (no last chunk yet), e.g. to
/// verify what survived a crash before it is sealed again into a new file (a fresh salt: see
/// `store::PartWriter`).
pub struct PartialReader<S> {
    source: S,
    cipher: FileCipher,
}

impl<S> fmt::Debug for PartialReader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialReader").field("chunk_size", &self.cipher.chunk_size).finish_non_exhaustive()
    }
}

impl<S: ReadAt> PartialReader<S> {
    /// Reads the header of the partial file in `source`.
    ///
    /// # Errors
    /// [`SealError::Integrity`] unless it is a header for `key`.
    pub fn new(source: S, key: &ContentKey, context: &[u8]) -> Result<Self, SealError> {
        let mut header = [0u8; HEADER_LEN];
        read_exact_or_integrity(&source, &mut header, 0)?;
        let chunk_size = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        if header[..6] != MAGIC
            || header[6] != FORMAT_VERSION
            || header[12..20] != key.id().0
            || check_chunk_size(chunk_size).is_err()
        {
            return Err(SealError::Integrity);
        }
        Ok(Self { source, cipher: FileCipher::new(key, &header, context) })
    }

    /// The header of the file.
    pub fn chunk_size(&self) -> u32 {
        self.cipher.chunk_size
    }

    /// Decrypts full, non-last chunk `index` into `buf` (at least chunk size + 16 bytes) and
    /// returns its plaintext.
    ///
    /// # Errors
    /// [`SealError::Integrity`] if the chunk is missing, cut or does not verify.
    pub fn decrypt_chunk<'a>(&self, index: u64, buf: &'a mut [u8]) -> Result<&'a [u8], SealError> {
        let chunk = self.cipher.chunk_size as usize;
        if index >= MAX_CHUNKS || buf.len() < chunk + TAG_LEN {
            return Err(SealError::Integrity);
        }
        let sealed = &mut buf[..chunk + TAG_LEN];
        let start = HEADER_LEN as u64 + index * (chunk + TAG_LEN) as u64;
        read_exact_or_integrity(&self.source, sealed, start)?;
        let (body, tag) = sealed.split_at_mut(chunk);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| SealError::Integrity)?;
        self.cipher.key.open(self.cipher.nonce(index, false), &[], &tag, body).map_err(|_| {
            body.fill(0);
            SealError::Integrity
        })?;
        Ok(body)
    }
}

/// A short source means the file was cut: that is an integrity failure, not an I/O one.
fn read_exact_or_integrity<S: ReadAt + ?Sized>(source: &S, buf: &mut [u8], offset: u64) -> Result<(), SealError> {
    source.read_exact_at(buf, offset).map_err(eof_is_integrity)
}

fn eof_is_integrity(e: io::Error) -> SealError {
    if e.kind() == io::ErrorKind::UnexpectedEof { SealError::Integrity } else { SealError::Io(e) }
}

/// The most whole chunks [`SealedReader::read_at`] reads in one vectored read (1 MiB of the
/// default 64 KiB chunks; 32 buffers, far below any system's `IOV_MAX`).
const READ_RUN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_sealed_out_of_order_make_a_sealed_file_and_no_index_is_sealed_twice() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let opts = SealOptions { chunk_size: 1024 };
        let s = ChunkSealer::new(&key(), b"ctx", opts, data.len() as u64).unwrap();
        let mut file = vec![0u8; s.sealed_len() as usize];
        file[..HEADER_LEN].copy_from_slice(s.header());
        for i in [3u64, 0, 4, 2, 1] {
            let start = (i * 1024) as usize;
            let mut buf = data[start..(start + 1024).min(data.len())].to_vec();
            s.seal(i, &mut buf).unwrap();
            let at = s.offset(i) as usize;
            file[at..at + buf.len()].copy_from_slice(&buf);
        }
        let mut again = data[..1024].to_vec();
        assert!(matches!(s.seal(0, &mut again), Err(SealError::Integrity)), "an index is sealed once");
        let r = SealedReader::open(&file[..], &key(), b"ctx").unwrap();
        assert_eq!(r.read_all().unwrap(), data);
        let o = ChunkOpener::new(&file[..], &key(), b"ctx", data.len() as u64).unwrap();
        let mut buf = Vec::new();
        assert_eq!(o.open(4, &mut buf).unwrap(), 5000 - 4096);
        assert_eq!(buf, data[4096..]);
        assert!(ChunkOpener::new(&file[..], &key(), b"other", 5000).unwrap().open(1, &mut buf).is_err());
    }

    fn key() -> ContentKey {
        ContentKey::from_bytes([9u8; 32])
    }

    fn seal(data: &[u8], chunk_size: u32, context: &[u8]) -> Vec<u8> {
        let opts = SealOptions { chunk_size };
        let mut w = SealWriter::new(Vec::new(), &key(), context, opts).unwrap();
        w.append(data).unwrap();
        let (out, summary) = w.finish().unwrap();
        assert_eq!(summary.sealed_len, out.len() as u64);
        assert_eq!(sealed_len(data.len() as u64, chunk_size), out.len() as u64);
        out
    }

    #[test]
    fn empty_file_round_trips() {
        let sealed = seal(b"", 1024, b"ctx");
        assert_eq!(sealed.len(), HEADER_LEN + TAG_LEN);
        let r = SealedReader::open(&sealed, &key(), b"ctx").unwrap();
        assert_eq!(r.len(), 0);
        assert_eq!(r.read_at(0, &mut [0u8; 8]).unwrap(), 0);
    }

    #[test]
    fn exact_chunk_multiples_have_no_empty_trailing_chunk() {
        for n in [1024usize, 2048, 3072] {
            let data = vec![5u8; n];
            let sealed = seal(&data, 1024, b"");
            assert_eq!(sealed.len(), HEADER_LEN + n + (n / 1024) * TAG_LEN);
            let r = SealedReader::open(&sealed, &key(), b"").unwrap();
            assert_eq!(r.read_all().unwrap(), data);
        }
    }

    #[test]
    fn chunk_size_bounds() {
        for bad in [0, MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1] {
            let err = SealWriter::new(Vec::new(), &key(), b"", SealOptions { chunk_size: bad });
            assert!(matches!(err, Err(SealError::InvalidChunkSize(c)) if c == bad));
        }
    }

    #[test]
    fn file_writer_is_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("seg.bin");
        let mut w = SealedFileWriter::create(&dest, &key(), b"s", SealOptions::default()).unwrap();
        w.append(&[1u8; 100_000]).unwrap();
        assert!(!dest.exists());
        drop(w);
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temp file removed");

        let mut w = SealedFileWriter::create(&dest, &key(), b"s", SealOptions::default()).unwrap();
        w.append(&[1u8; 100_000]).unwrap();
        let summary = w.finish(Durability::Synced).unwrap();
        assert_eq!(summary.plaintext_len, 100_000);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let r = SealedReader::open_path(&dest, &key(), b"s").unwrap();
        assert_eq!(r.read_all().unwrap(), vec![1u8; 100_000]);
    }

    #[test]
    fn plaintext_never_reaches_storage() {
        let marker = b"PLAINTEXT-MARKER-0123456789";
        let data: Vec<u8> = marker.iter().copied().cycle().take(300_000).collect();
        let sealed = seal(&data, 16 * 1024, b"");
        assert!(!sealed.windows(marker.len()).any(|w| w == marker));
    }
}
