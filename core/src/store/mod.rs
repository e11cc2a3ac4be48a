//! Files on disk: where an asset's pieces live, writing them atomically in either mode, making
//! batches of them durable, and free space.
//!
//! Layout under the vault directory:
//!
//! ```text
//! catalog.sqlite               the catalog (+ -wal, -shm)
//! locks/<asset>.lock           held while a process downloads the asset
//! assets/<asset>/index.m3u8    HLS entry point (master playlist) — Normal mode
//! assets/<asset>/video/index.m3u8, video/seg-00000.ts, video/init-0.mp4, audio-1/…, subtitles-2/…
//! assets/<asset>/media.mp4     progressive file — Normal mode
//! ```
//!
//! In Encrypted mode every file has the same logical name plus `.vvs` and is a sealed file
//! (docs/format.md §3) whose context is `<asset id>/<logical name>`; the playlists are stored
//! sealed too. Pieces are written to a temporary file beside their final name and renamed into
//! place when complete, so a name on disk always holds a whole piece.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::keys::ContentKey;
use crate::model::Mode;
use crate::seal::{self, Durability, SealError, SealOptions, SealedFileWriter};
use crate::sniff::Sniffer;

mod ranges;
pub(crate) use ranges::{RangeFile, Readable};

/// Suffix of sealed files.
pub const SEALED_SUFFIX: &str = ".vvs";

/// The vault's directory layout.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root` (an absolute path).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The vault directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The catalog file.
    pub fn catalog(&self) -> PathBuf {
        self.root.join("catalog.sqlite")
    }

    /// An asset's directory.
    pub fn asset_dir(&self, id: &str) -> PathBuf {
        self.root.join("assets").join(id)
    }

    /// An asset's lock file.
    pub fn lock_file(&self, id: &str) -> PathBuf {
        self.root.join("locks").join(format!("{id}.lock"))
    }

    /// Where the piece with logical name `name` of asset `id` is stored in `mode`.
    pub fn file(&self, id: &str, name: &str, mode: Mode) -> PathBuf {
        let dir = self.asset_dir(id);
        match mode {
            Mode::Normal => dir.join(name),
            Mode::Encrypted => dir.join(format!("{name}{SEALED_SUFFIX}")),
        }
    }

    /// Space set aside for the catalog (see [`ensure_reserve`]).
    pub fn reserve(&self) -> PathBuf {
        self.root.join("catalog.reserve")
    }

    /// Creates the vault's directories.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(&self) -> io::Result<()> {
        std::fs::create_dir_all(self.root.join("assets"))?;
        std::fs::create_dir_all(self.root.join("locks"))
    }
}

/// The sealing context of a piece: binds a sealed file to its asset and its name.
pub fn seal_context(asset_id: &str, name: &str) -> Vec<u8> {
    format!("{asset_id}/{name}").into_bytes()
}

/// A storage failure, with "the disk is full" told apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No space left on the device (or quota exceeded).
    #[error("no space left on device")]
    Full,
    /// Any other I/O failure.
    #[error("storage I/O failed: {0}")]
    Io(io::Error),
    /// Sealing failed for another reason (never expected).
    #[error(transparent)]
    Seal(SealError),
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) || e.raw_os_error() == Some(122) {
            StoreError::Full
        } else {
            StoreError::Io(e)
        }
    }
}

impl From<SealError> for StoreError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Io(e) => e.into(),
            other => StoreError::Seal(other),
        }
    }
}

/// A piece being written: plain (with its SHA-256) or sealed.
#[allow(clippy::large_enum_variant)] // a handful alive at a time (one per worker)
pub enum PieceWriter {
    /// Normal mode.
    Plain {
        /// Temporary file, buffered.
        file: BufWriter<tempfile::NamedTempFile>,
        /// Running digest.
        digest: ring::digest::Context,
        /// Bytes written.
        len: u64,
        /// Final path.
        dest: PathBuf,
    },
    /// Encrypted mode.
    Sealed(Box<SealedFileWriter>),
}

impl std::fmt::Debug for PieceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PieceWriter::Plain { len, dest, .. } => {
                f.debug_struct("PieceWriter::Plain").field("len", len).field("dest", dest).finish_non_exhaustive()
            }
            PieceWriter::Sealed(w) => f.debug_tuple("PieceWriter::Sealed").field(w).finish(),
        }
    }
}

/// A piece renamed into place (see [`PieceWriter::finish`] for how durable).
#[derive(Debug, Clone)]
pub struct StoredPiece {
    /// Final path.
    pub path: PathBuf,
    /// Plaintext bytes.
    pub size: u64,
    /// Normal mode: hex SHA-256 of the stored bytes.
    pub sha256: Option<String>,
}

impl PieceWriter {
    /// Starts writing the piece with logical name `name` of asset `id`.
    ///
    /// # Errors
    /// [`StoreError`] creating the directory or the temporary file.
    pub fn create(
        layout: &Layout,
        id: &str,
        name: &str,
        mode: Mode,
        key: Option<&ContentKey>,
        options: SealOptions,
    ) -> Result<Self, StoreError> {
        let dest = layout.file(id, name, mode);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match (mode, key) {
            (Mode::Encrypted, Some(key)) => Ok(PieceWriter::Sealed(Box::new(SealedFileWriter::create(
                &dest,
                key,
                &seal_context(id, name),
                options,
            )?))),
            (Mode::Encrypted, None) => Err(StoreError::Io(io::Error::other("encrypted asset without content key"))),
            (Mode::Normal, _) => {
                let dir = dest.parent().unwrap_or(layout.root());
                let tmp = temp_in(dir, &dest)?;
                Ok(PieceWriter::Plain {
                    file: BufWriter::with_capacity(64 * 1024, tmp),
                    digest: ring::digest::Context::new(&ring::digest::SHA256),
                    len: 0,
                    dest,
                })
            }
        }
    }

    /// Appends plaintext.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        match self {
            PieceWriter::Plain { file, digest, len, .. } => {
                file.write_all(data)?;
                digest.update(data);
                *len += data.len() as u64;
                Ok(())
            }
            PieceWriter::Sealed(w) => Ok(w.append(data)?),
        }
    }

    /// Completes the piece and renames it into place, making it as durable as `durability`
    /// says first (blocking: run it on a blocking pool).
    ///
    /// # Errors
    /// [`StoreError`]; the temporary file is removed.
    pub fn finish(self, durability: Durability) -> Result<StoredPiece, StoreError> {
        self.complete()?.persist(durability)
    }

    /// Ends the piece (sealed: its last chunk sealed) under a name that proves it whole, beside
    /// its destination: `.<name>.<sha256>.done` for a plain piece (its bytes hash to its name),
    /// `.<name>.done` for a sealed one (it verifies). A process killed before
    /// [`CompletePiece::persist`] leaves a piece that [`finished_piece`] finds and a resume keeps
    /// instead of fetching it again. Cheap: one rename, no sync.
    ///
    /// # Errors
    /// [`StoreError`]; the temporary file is removed.
    pub fn complete(self) -> Result<CompletePiece, StoreError> {
        match self {
            PieceWriter::Plain { file, digest, len, dest } => {
                let tmp = file.into_inner().map_err(io::IntoInnerError::into_error)?;
                let sha256 = hex::encode(digest.finish());
                let path = done_path(&dest, Some(&sha256));
                let file = tmp.persist(&path).map_err(|e| StoreError::from(e.error))?;
                Ok(CompletePiece { path, file, dest, size: len, sha256: Some(sha256) })
            }
            PieceWriter::Sealed(w) => {
                let dest = w.dest().to_owned();
                let path = done_path(&dest, None);
                let (file, summary) = w.complete_at(&path)?;
                Ok(CompletePiece { path, file, dest, size: summary.plaintext_len, sha256: None })
            }
        }
    }
}

/// A progressive file being written at `<dest>.part`, resumable from its last durable point.
///
/// In Encrypted mode every part is a new sealed file with a fresh salt, and so a fresh file key:
/// a resumed part is not continued in place but written anew, its kept bytes decrypted, checked
/// and sealed again first. No nonce is ever used twice, whatever an origin sends for the same
/// offsets on a later attempt (a changed object served with `206` despite `If-Range`).
pub(crate) struct PartWriter {
    part: PathBuf,
    dest: PathBuf,
    out: PartOut,
}

#[allow(clippy::large_enum_variant)] // one per progressive download
enum PartOut {
    Plain { file: BufWriter<File>, digest: ring::digest::Context, len: u64 },
    Sealed(Box<seal::SealWriter<File>>),
}

impl PartWriter {
    /// Opens the part of piece `name` of asset `id`, keeping its first `keep` plaintext bytes
    /// when they are there and verify (each passed to `each`, in order), or starting empty.
    /// Blocking: reads (and in Encrypted mode re-seals) what is kept.
    ///
    /// # Errors
    /// [`StoreError`].
    pub(crate) fn open(
        layout: &Layout,
        id: &str,
        name: &str,
        key: Option<&ContentKey>,
        options: SealOptions,
        keep: u64,
        each: &mut dyn FnMut(&[u8]),
    ) -> Result<Self, StoreError> {
        let mode = if key.is_some() { Mode::Encrypted } else { Mode::Normal };
        let dest = layout.file(id, name, mode);
        let file_name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let part = dest.with_file_name(format!("{file_name}.part"));
        if let Some(dir) = part.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out = match key {
            None => {
                let mut file = File::options().create(true).truncate(false).read(true).write(true).open(&part)?;
                let keep = keep.min(file.metadata()?.len());
                file.set_len(keep)?;
                let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
                let mut reader = io::Read::take(&mut file, keep);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = io::Read::read(&mut reader, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    digest.update(&buf[..n]);
                    each(&buf[..n]);
                }
                io::Seek::seek(&mut file, io::SeekFrom::Start(keep))?;
                PartOut::Plain { file: BufWriter::with_capacity(256 * 1024, file), digest, len: keep }
            }
            Some(key) => {
                let context = seal_context(id, name);
                let dir = part.parent().unwrap_or(layout.root()).to_owned();
                let fresh = || -> Result<(seal::SealWriter<File>, tempfile::TempPath), StoreError> {
                    let (file, path) = temp_in(&dir, &part)?.into_parts();
                    Ok((seal::SealWriter::new(file, key, &context, options)?, path))
                };
                let (mut w, mut tmp_path) = fresh()?;
                // What is kept is whole chunks of the old part that verify; a part that is gone or
                // does not verify is fetched again. Failing to write (a full disk) is an error:
                // the part stays as it is, to resume from later.
                if keep > 0 {
                    match reseal_prefix(&part, key, &context, keep, &mut w, each) {
                        Ok(()) => {}
                        Err(StoreError::Seal(SealError::Integrity)) | Err(StoreError::Io(_)) if !part.exists() => {
                            (w, tmp_path) = fresh()?;
                        }
                        Err(StoreError::Seal(SealError::Integrity)) => {
                            tracing::info!("the kept part of {name} does not verify: fetching it again");
                            (w, tmp_path) = fresh()?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                w.get_ref().sync_data()?;
                tmp_path.persist(&part).map_err(|e| StoreError::from(e.error))?;
                PartOut::Sealed(Box::new(w))
            }
        };
        Ok(Self { part, dest, out })
    }

    /// Plaintext bytes written so far (kept ones included).
    pub(crate) fn len(&self) -> u64 {
        match &self.out {
            PartOut::Plain { len, .. } => *len,
            PartOut::Sealed(w) => w.plaintext_len(),
        }
    }

    /// Appends plaintext.
    ///
    /// # Errors
    /// [`StoreError`].
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        match &mut self.out {
            PartOut::Plain { file, digest, len } => {
                file.write_all(data)?;
                digest.update(data);
                *len += data.len() as u64;
                Ok(())
            }
            PartOut::Sealed(w) => Ok(w.append(data)?),
        }
    }

    /// Makes what is written durable (as far as whole sealed chunks go); returns the plaintext
    /// bytes that are.
    ///
    /// # Errors
    /// [`StoreError`].
    pub(crate) fn checkpoint(&mut self) -> Result<u64, StoreError> {
        match &mut self.out {
            PartOut::Plain { file, len, .. } => {
                file.flush()?;
                file.get_ref().sync_data()?;
                Ok(*len)
            }
            PartOut::Sealed(w) => {
                w.get_ref().sync_data()?;
                Ok(w.chunks_written() * u64::from(w.chunk_size()))
            }
        }
    }

    /// Ends the file, makes it durable and moves it to its final name.
    ///
    /// # Errors
    /// [`StoreError`].
    pub(crate) fn finish(self) -> Result<StoredPiece, StoreError> {
        let (file, size, sha256) = match self.out {
            PartOut::Plain { file, digest, len } => {
                (file.into_inner().map_err(io::IntoInnerError::into_error)?, len, Some(hex::encode(digest.finish())))
            }
            PartOut::Sealed(w) => {
                let (file, summary) = w.finish()?;
                (file, summary.plaintext_len, None)
            }
        };
        file.sync_data()?;
        std::fs::rename(&self.part, &self.dest)?;
        seal::sync_parent_dir(&self.dest)?;
        Ok(StoredPiece { path: self.dest, size, sha256 })
    }

    /// Deletes the part (it is not the file, and must not be resumed from).
    pub(crate) fn discard(self) {
        let part = self.part.clone();
        drop(self);
        let _ = std::fs::remove_file(part);
    }
}

/// Decrypts the first `keep` bytes (whole chunks) of the sealed part at `old`, passes them to
/// `each` and seals them into `w`. [`SealError::Integrity`] when they are not whole chunks that
/// verify.
fn reseal_prefix(
    old: &Path,
    key: &ContentKey,
    context: &[u8],
    keep: u64,
    w: &mut seal::SealWriter<File>,
    each: &mut dyn FnMut(&[u8]),
) -> Result<(), StoreError> {
    let file = File::open(old)?;
    let reader = seal::PartialReader::new(&file, key, context)?;
    let chunk = u64::from(reader.chunk_size());
    if !keep.is_multiple_of(chunk) {
        return Err(StoreError::Seal(SealError::Integrity));
    }
    let mut buf = vec![0u8; reader.chunk_size() as usize + seal::TAG_LEN];
    for i in 0..keep / chunk {
        let plain = reader.decrypt_chunk(i, &mut buf)?;
        each(plain);
        w.append(plain)?;
    }
    Ok(())
}

/// Where a complete piece waits to be moved into place at `dest`: `.<name>.<sha256>.done` for
/// a plain piece, `.<name>.done` for a sealed one.
fn done_path(dest: &Path, sha256: Option<&str>) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match sha256 {
        Some(d) => dest.with_file_name(format!(".{name}.{d}.done")),
        None => dest.with_file_name(format!(".{name}.done")),
    }
}

/// A piece with every byte written, under a name that proves it whole ([`PieceWriter::complete`]),
/// not yet synced or in place. Dropping it leaves the file for a resume to find.
#[derive(Debug)]
pub struct CompletePiece {
    path: PathBuf,
    file: File,
    dest: PathBuf,
    size: u64,
    sha256: Option<String>,
}

impl CompletePiece {
    /// Makes the piece as durable as `durability` says and moves it into place (blocking).
    ///
    /// # Errors
    /// [`StoreError`]; the file is removed.
    pub fn persist(self, durability: Durability) -> Result<StoredPiece, StoreError> {
        let moved = (|| -> io::Result<()> {
            if durability != Durability::Deferred {
                self.file.sync_data()?;
            }
            std::fs::rename(&self.path, &self.dest)?;
            if durability == Durability::Synced {
                seal::sync_parent_dir(&self.dest)?;
            }
            Ok(())
        })();
        if let Err(e) = moved {
            let _ = std::fs::remove_file(&self.path);
            return Err(e.into());
        }
        Ok(StoredPiece { path: self.dest, size: self.size, sha256: self.sha256 })
    }
}

/// A piece a process finished but did not record (it was killed): where it is, and what it
/// holds once checked.
#[derive(Debug)]
pub struct FinishedPiece {
    /// Plaintext bytes.
    pub size: u64,
    /// Normal mode: hex SHA-256 of the stored bytes.
    pub sha256: Option<String>,
}

/// Looks for piece `name` of asset `id` finished by an earlier process but not recorded: at its
/// final name (written, synced, renamed), or complete beside it ([`PieceWriter::complete`]).
/// Each candidate is checked — a sealed file must verify whole, a plain one must hash to the
/// digest its name carries (a file at its final name is hashed for its row) — and its plaintext,
/// fed to a fresh [`Sniffer`], must satisfy `accept` (the content check). A candidate that
/// passes is moved into place and synced (not its directory: [`sync_dirs`]); one that fails is
/// deleted. `done_names` lists the `.done` files of the piece's directory (from [`done_files`]).
///
/// # Errors
/// [`StoreError`] for I/O failures other than a missing or bad candidate.
pub fn finished_piece(
    layout: &Layout,
    id: &str,
    name: &str,
    mode: Mode,
    key: Option<&ContentKey>,
    done_names: &[String],
    accept: &dyn Fn(&Sniffer) -> bool,
) -> Result<Option<FinishedPiece>, StoreError> {
    let dest = layout.file(id, name, mode);
    let file_name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let sealed_done = format!(".{file_name}.done");
    let plain_prefix = format!(".{file_name}.");
    let mut candidates: Vec<(PathBuf, Option<String>)> = vec![(dest.clone(), None)];
    for n in done_names {
        if mode == Mode::Encrypted && *n == sealed_done {
            candidates.push((dest.with_file_name(n), None));
        } else if let Some(d) = n.strip_prefix(&plain_prefix).and_then(|r| r.strip_suffix(".done"))
            && mode == Mode::Normal
            && d.len() == 64
            && d.bytes().all(|b| b.is_ascii_hexdigit())
        {
            candidates.push((dest.with_file_name(n), Some(d.to_owned())));
        }
    }
    let mut found = None;
    for (path, digest) in candidates {
        if found.is_some() || !path.exists() {
            if path != dest {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        let mut sniff = Sniffer::new();
        let checked = match (mode, key) {
            (Mode::Encrypted, Some(key)) => verify_sealed(&path, key, &seal_context(id, name), &mut sniff),
            (Mode::Encrypted, None) => None,
            (Mode::Normal, _) => hash_plain(&path, &mut sniff).filter(|p| digest.is_none() || p.sha256 == digest),
        };
        let checked = checked.filter(|_| accept(&sniff));
        match checked {
            Some(piece) => {
                if path != dest {
                    let moved =
                        File::open(&path).and_then(|f| f.sync_data()).and_then(|()| std::fs::rename(&path, &dest));
                    match moved {
                        // Moved into place meanwhile by the writer that completed it.
                        Err(e) if e.kind() == io::ErrorKind::NotFound && dest.exists() => {}
                        other => other?,
                    }
                }
                found = Some(piece);
            }
            None => {
                tracing::debug!("{} does not check out; fetching it again", path.display());
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(found)
}

/// The `.done` files in `dir` (complete pieces not yet in place), by name.
pub fn done_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(".done"))
        .collect()
}

fn verify_sealed(path: &Path, key: &ContentKey, context: &[u8], sniff: &mut Sniffer) -> Option<FinishedPiece> {
    let reader = seal::SealedReader::open_path(path, key, context).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < reader.len() {
        let n = reader.read_at(at, &mut buf).ok()?;
        if n == 0 {
            return None;
        }
        sniff.update(&buf[..n]);
        at += n as u64;
    }
    Some(FinishedPiece { size: reader.len(), sha256: None })
}

fn hash_plain(path: &Path, sniff: &mut Sniffer) -> Option<FinishedPiece> {
    let (size, sha256) = hash_file(path, |b| sniff.update(b)).ok()?;
    Some(FinishedPiece { size, sha256: Some(sha256) })
}

/// The length and hex SHA-256 of the file at `path`, read 1 MiB at a time (memory stays flat
/// whatever its size); `each` sees every block.
///
/// # Errors
/// I/O errors.
pub fn hash_file(path: &Path, mut each: impl FnMut(&[u8])) -> io::Result<(u64, String)> {
    use std::io::Read as _;
    let mut file = File::open(path)?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        each(&buf[..n]);
        digest.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(digest.finish())))
}

fn temp_in(dir: &Path, dest: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)
}

/// Writes a small whole file (a playlist) in `mode`, atomically and durably.
///
/// # Errors
/// [`StoreError`].
pub fn write_small(
    layout: &Layout,
    id: &str,
    name: &str,
    mode: Mode,
    key: Option<&ContentKey>,
    data: &[u8],
) -> Result<StoredPiece, StoreError> {
    let mut w = PieceWriter::create(layout, id, name, mode, key, SealOptions::default())?;
    w.write(data)?;
    w.finish(Durability::Synced)
}

/// Makes the renames of files already synced ([`Durability::FileSynced`]) durable: fsyncs each
/// distinct parent directory once. Blocking: call it from a blocking pool.
///
/// # Errors
/// [`StoreError`].
pub fn sync_dirs(paths: &[PathBuf]) -> Result<(), StoreError> {
    let mut dirs: Vec<&Path> = Vec::new();
    for p in paths {
        if let Some(d) = p.parent()
            && !dirs.contains(&d)
        {
            dirs.push(d);
        }
    }
    for d in dirs {
        File::open(d)?.sync_all()?;
    }
    Ok(())
}

/// Size of the catalog's reserve.
pub const RESERVE_BYTES: u64 = 128 * 1024;

/// Sets aside [`RESERVE_BYTES`] of real disk blocks (a preallocated file) so that when a
/// download fills the disk, releasing them lets the catalog still record what was stored and why
/// it stopped. Best effort: without room for it, nothing is reserved (and nothing is left half
/// made).
pub fn ensure_reserve(layout: &Layout) {
    let path = layout.reserve();
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
        return;
    }
    let made = (|| -> io::Result<()> {
        let f = File::create(&path)?;
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, RESERVE_BYTES).map_err(io::Error::from)?;
        f.sync_all()
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&path);
    }
}

/// Frees the catalog's reserve (the disk is full). Returns whether there was one.
pub fn release_reserve(layout: &Layout) -> bool {
    std::fs::remove_file(layout.reserve()).is_ok()
}

/// Bytes available to an unprivileged writer on the filesystem holding `path`.
///
/// # Errors
/// I/O errors from `statvfs`.
pub fn available_space(path: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The space of the filesystem holding `path`: available to an unprivileged writer, and its size.
///
/// # Errors
/// I/O errors from `statvfs`.
pub fn space(path: &Path) -> io::Result<crate::model::Space> {
    let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    Ok(crate::model::Space {
        free: st.f_bavail.saturating_mul(st.f_frsize),
        total: st.f_blocks.saturating_mul(st.f_frsize),
    })
}

/// Removes leftover temporary files (`.<name>.<random>.tmp`) under `dir`, recursively: pieces
/// whose writer was interrupted.
pub fn remove_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        match e.file_type() {
            Ok(t) if t.is_dir() => remove_temp_files(&path),
            Ok(_) if name.starts_with('.') && name.ends_with(".tmp") => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_sealed_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        layout.create().unwrap();
        let mut w =
            PieceWriter::create(&layout, "a1", "video/seg-00000.ts", Mode::Normal, None, SealOptions::default())
                .unwrap();
        w.write(b"hello ").unwrap();
        w.write(b"world").unwrap();
        let p = w.finish(Durability::Synced).unwrap();
        assert_eq!(std::fs::read(&p.path).unwrap(), b"hello world");
        assert_eq!(p.sha256.as_deref(), Some(hex::encode(crate::crypto::sha256(&[b"hello world"])).as_str()));

        let key = ContentKey::generate().unwrap();
        let mut w = PieceWriter::create(
            &layout,
            "a1",
            "video/seg-00001.ts",
            Mode::Encrypted,
            Some(&key),
            SealOptions::default(),
        )
        .unwrap();
        w.write(b"secret media").unwrap();
        let p = w.finish(Durability::FileSynced).unwrap();
        assert!(p.path.to_string_lossy().ends_with("seg-00001.ts.vvs"));
        sync_dirs(std::slice::from_ref(&p.path)).unwrap();
        let r = seal::SealedReader::open_path(&p.path, &key, &seal_context("a1", "video/seg-00001.ts")).unwrap();
        assert_eq!(r.read_all().unwrap(), b"secret media");
        // Only the two final files remain: no temporaries.
        let names: Vec<_> =
            std::fs::read_dir(layout.asset_dir("a1").join("video")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(available_space(dir.path()).unwrap() > 0);
    }

    #[test]
    fn unfinished_pieces_leave_nothing_and_leftovers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        let mut w = PieceWriter::create(&layout, "a1", "seg.ts", Mode::Normal, None, SealOptions::default()).unwrap();
        w.write(&[0u8; 100_000]).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(layout.asset_dir("a1")).unwrap().count(), 0);
        std::fs::write(layout.asset_dir("a1").join(".seg.ts.abc.tmp"), b"x").unwrap();
        std::fs::write(layout.asset_dir("a1").join("keep.ts"), b"x").unwrap();
        remove_temp_files(dir.path());
        let names: Vec<_> =
            std::fs::read_dir(layout.asset_dir("a1")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("keep.ts")]);
    }
}
