//! Reading what is stored: the files of a completed asset, decrypted and verified chunk by chunk
//! (Encrypted mode) or read as they are (Normal mode), at any offset.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::catalog::{Catalog, RenditionRow};
use crate::clock::now_ms;
use crate::error::VaultError;
use crate::error::{Error, Result};
use crate::hls::media::MediaPlaylist;
use crate::keys::{ContentKey, Kek, KeyError, WrappedKey};
use crate::live::{Live, LiveAsset, WatchGuard};
use crate::model::{AssetKind, AssetState, Mode, SegmentKind};
use crate::plan::{LOCAL_MPD, LocalRendition, local_playlists, stored_playlist};
use crate::seal::{ReadAt, SealError, SealedReader};
use crate::store::{self, Layout};

/// Whether loading an asset's view enforces its offline expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// An expired asset is refused (playing, reading).
    Enforce,
    /// Expiry is not looked at (verifying).
    Ignore,
}

/// Which assets a view may show.
#[derive(Clone, Copy)]
pub(crate) enum Access<'a> {
    /// Completed assets only (reading, listing and verifying files).
    Completed,
    /// Any asset that is not cancelled, for a player: what is not stored yet is waited for
    /// through the download (`Live`).
    Play(&'a Live),
}

/// What a player may read of one asset, with what it takes to read it.
pub(crate) struct AssetView {
    pub(crate) id: String,
    pub(crate) mode: Mode,
    pub(crate) key: Option<Arc<ContentKey>>,
    /// HLS or a progressive file.
    pub(crate) kind: AssetKind,
    /// Logical names of every readable file.
    pub(crate) files: HashSet<String>,
    /// What a player opens first.
    pub(crate) entry: String,
    pub(crate) offline_until: Option<i64>,
    pub(crate) layout: Layout,
    /// Whether every piece is stored (the asset is completed).
    pub(crate) complete: bool,
    /// An incomplete asset's playlists, made when the view was: the same all session.
    pub(crate) generated: HashMap<String, Bytes>,
    /// An incomplete asset's state shared with its download, and this view counted as watching.
    pub(crate) live: Option<(Arc<LiveAsset>, WatchGuard)>,
}

impl fmt::Debug for AssetView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssetView").field("id", &self.id).field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl AssetView {
    /// Builds the view of an asset (refused once its offline period is over, unless `expiry` is
    /// [`Expiry::Ignore`]: verifying is not playing). With [`Access::Play`], an HLS asset that
    /// is queued, downloading, paused or failed is viewed too: its playlists are made from the
    /// catalog (every piece, as the completed asset will have them).
    pub(crate) async fn load(
        catalog: &Catalog,
        layout: &Layout,
        kek: &Kek,
        id: &str,
        expiry: Expiry,
        access: Access<'_>,
    ) -> Result<Self> {
        let row = catalog.asset(id).await?.ok_or_else(|| Error::NotFound(id.to_owned()))?;
        let complete = row.state == AssetState::Completed;
        let live = match access {
            _ if complete => None,
            Access::Play(live) if row.state != AssetState::Cancelled => Some(live),
            _ => return Err(Error::NotPlayable { id: id.to_owned(), state: row.state }),
        };
        if let Some(until) = row.offline_until
            && now_ms() >= until
            && expiry == Expiry::Enforce
        {
            return Err(Error::Expired { id: id.to_owned(), until });
        }
        let key = match row.mode {
            Mode::Normal => None,
            Mode::Encrypted => {
                // A missing or damaged content key is damage to the asset, like a damaged file.
                let damaged = || Error::Integrity { id: id.to_owned(), file: "(content key)".to_owned() };
                let wrapped = row.wrapped_key.as_deref().ok_or_else(damaged)?;
                let wrapped = WrappedKey::from_bytes(wrapped).map_err(|_| damaged())?;
                Some(Arc::new(wrapped.unwrap(kek, id.as_bytes()).map_err(|e| match e {
                    KeyError::Integrity => damaged(),
                    other => Error::Key(other),
                })?))
            }
        };
        let mut files = HashSet::new();
        let segments = catalog.segments(id).await?;
        // A progressive file plays from its one file, before it is complete too.
        let first_file = segments.first().map(|s| s.file.clone());
        for s in segments {
            // A gap (EXT-X-GAP) has no file.
            if !(s.kind == SegmentKind::Media && s.size == Some(0)) {
                files.insert(s.file);
            }
        }
        for i in catalog.images(id).await? {
            if i.done {
                files.insert(i.file);
            }
        }
        let mut generated = HashMap::new();
        if matches!(row.kind, AssetKind::Hls | AssetKind::Dash) {
            let renditions = catalog.renditions(id).await?;
            files.insert("index.m3u8".to_owned());
            if row.kind == AssetKind::Dash {
                files.insert(LOCAL_MPD.to_owned());
            }
            for r in &renditions {
                files.insert(format!("{}/index.m3u8", r.dir));
            }
            if live.is_some() {
                generated = incomplete_playlists(id, &renditions, row.bytes_expected.unwrap_or(0))?;
            }
        }
        let entry = match (row.entry, row.kind) {
            (Some(e), _) => e,
            (None, AssetKind::Progressive) => first_file.unwrap_or_default(),
            (None, AssetKind::Hls) => "index.m3u8".to_owned(),
            (None, AssetKind::Dash) => LOCAL_MPD.to_owned(),
        };
        let live = live.map(|l| {
            let asset = l.asset(id);
            let guard = asset.watch();
            (asset, guard)
        });
        Ok(Self {
            id: id.to_owned(),
            mode: row.mode,
            kind: row.kind,
            key,
            files,
            entry,
            offline_until: row.offline_until,
            layout: layout.clone(),
            complete,
            generated,
            live,
        })
    }

    /// What is shared with the asset's download, if it is incomplete.
    pub(crate) fn live(&self) -> Option<&Arc<LiveAsset>> {
        self.live.as_ref().map(|(l, _)| l)
    }

    pub(crate) fn expired(&self) -> bool {
        self.offline_until.is_some_and(|until| now_ms() >= until)
    }

    /// Opens stored file `name` (blocking: it reads the header and verifies the last chunk).
    pub(crate) fn open(&self, name: &str) -> Result<AssetReader> {
        if !self.files.contains(name) {
            return Err(Error::NotFound(format!("{}/{name}", self.id)));
        }
        let path = self.layout.file(&self.id, name, self.mode);
        let integrity = |_| Error::Integrity { id: self.id.clone(), file: name.to_owned() };
        let source = match (&self.key, self.mode) {
            (Some(key), Mode::Encrypted) => {
                let file = File::open(&path)?;
                let context = store::seal_context(&self.id, name);
                Source::Sealed(Box::new(SealedReader::open(file, key, &context).map_err(|e| match e {
                    SealError::Io(io) => Error::Io(io),
                    other => integrity(other),
                })?))
            }
            _ => {
                let file = File::open(&path)?;
                let len = file.metadata()?.len();
                Source::Plain { file, len, path }
            }
        };
        Ok(AssetReader { asset: self.id.clone(), name: name.to_owned(), source })
    }
}

/// The local playlists of an HLS asset that is not complete, made from its source playlists as
/// the catalog keeps them: the same text the completed asset will have (the bandwidth of a
/// media-playlist source is from the expected size, not the stored one).
fn incomplete_playlists(id: &str, renditions: &[RenditionRow], expected: u64) -> Result<HashMap<String, Bytes>> {
    let damaged = || Error::Integrity { id: id.to_owned(), file: "(source playlist)".to_owned() };
    let parsed: Vec<MediaPlaylist> =
        renditions.iter().map(|r| stored_playlist(r).map_err(|_| damaged())).collect::<Result<_>>()?;
    let local: Vec<LocalRendition<'_>> = renditions
        .iter()
        .zip(&parsed)
        .map(|(r, p)| LocalRendition { role: r.kind, dir: &r.dir, attrs: &r.attrs, playlist: p })
        .collect();
    Ok(local_playlists(&local, expected).into_iter().map(|(name, text)| (name, Bytes::from(text))).collect())
}

enum Source {
    Plain { file: File, len: u64, path: PathBuf },
    Sealed(Box<SealedReader<File>>),
}

/// Random access to one stored file of a completed asset: for apps that plug their own data
/// source into ExoPlayer (`DataSource`) or AVFoundation (`AVAssetResourceLoaderDelegate`).
/// Encrypted files are decrypted and verified chunk by chunk, only where a read touches them.
pub struct AssetReader {
    asset: String,
    name: String,
    source: Source,
}

impl fmt::Debug for AssetReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssetReader").field("asset", &self.asset).field("name", &self.name).finish_non_exhaustive()
    }
}

impl AssetReader {
    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        match &self.source {
            Source::Plain { len, .. } => *len,
            Source::Sealed(r) => r.len(),
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's logical name in its asset (e.g. `video/seg-00003.ts`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its MIME type.
    pub fn content_type(&self) -> &'static str {
        content_type(&self.name)
    }

    /// The plain file on disk (Normal mode only).
    pub fn plain_path(&self) -> Option<&Path> {
        match &self.source {
            Source::Plain { path, .. } => Some(path),
            Source::Sealed(_) => None,
        }
    }

    /// Reads from `offset` into `buf`; fewer bytes only at the end of the file, 0 past it.
    ///
    /// # Errors
    /// [`VaultError::Integrity`] if a chunk the read touches fails verification (then no byte
    /// of `buf` is meaningful), [`VaultError::Storage`].
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, VaultError> {
        Ok(self.read_into(offset, buf)?)
    }

    /// The most [`AssetReader::read_vec`] returns at once (16 MiB): players read far less.
    pub const MAX_READ: u64 = 16 << 20;

    /// Up to `max` bytes from `offset`, and at most [`AssetReader::MAX_READ`] per call: fewer
    /// at the end of the file, none past it. Allocates only what it returns, whatever `max` is.
    ///
    /// # Errors
    /// As [`AssetReader::read_at`].
    pub fn read_vec(&self, offset: u64, max: u64) -> Result<Vec<u8>, VaultError> {
        let n = max.min(Self::MAX_READ).min(self.len().saturating_sub(offset));
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; n];
        let got = self.read_at(offset, &mut buf)?;
        buf.truncate(got);
        Ok(buf)
    }

    pub(crate) fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match &self.source {
            Source::Plain { file, len, .. } => {
                if offset >= *len {
                    return Ok(0);
                }
                let n = ((*len - offset) as usize).min(buf.len());
                file.read_exact_at(&mut buf[..n], offset)?;
                Ok(n)
            }
            Source::Sealed(r) => r.read_at(offset, buf).map_err(|e| match e {
                SealError::Io(io) => Error::Io(io),
                _ => Error::Integrity { id: self.asset.clone(), file: self.name.clone() },
            }),
        }
    }

    /// A read size of about `about` bytes that is a whole number of verified chunks (reads
    /// aligned to it never decrypt a chunk twice): `about` for plain files.
    pub(crate) fn block(&self, about: usize) -> usize {
        match &self.source {
            Source::Plain { .. } => about,
            Source::Sealed(r) => {
                let chunk = r.chunk_size() as usize;
                chunk * about.div_ceil(chunk)
            }
        }
    }
}

/// MIME type by extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4s" | "mp4" | "m4v") => "video/mp4",
        Some("m4a") => "audio/mp4",
        Some("aac") => "audio/aac",
        Some("mp3") => "audio/mpeg",
        Some("vtt") => "text/vtt",
        Some("mpd") => "application/dash+xml",
        Some("ttml" | "dfxp") => "application/ttml+xml",
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("mov") => "video/quicktime",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

/// Checks every stored file of an asset: every chunk of every sealed file (Encrypted), or every
/// piece against the SHA-256 recorded when it was stored (Normal). Returns the files that fail.
pub(crate) fn verify_files(view: &AssetView, digests: &HashMap<String, String>) -> Vec<String> {
    let mut names: Vec<&String> = view.files.iter().collect();
    names.sort();
    let mut bad = Vec::new();
    for name in names {
        let ok = match view.mode {
            Mode::Encrypted => view.open(name).is_ok_and(|r| {
                let mut buf = vec![0u8; r.block(1 << 20)];
                let mut pos = 0;
                loop {
                    match r.read_into(pos, &mut buf) {
                        Ok(0) => break true,
                        Ok(n) => pos += n as u64,
                        Err(_) => break false,
                    }
                }
            }),
            Mode::Normal => match digests.get(name) {
                Some(want) => store::hash_file(&view.layout.file(&view.id, name, Mode::Normal), |_| {})
                    .is_ok_and(|(_, got)| got == *want),
                // Playlists have no recorded digest: they must exist and be playlists.
                None => File::open(view.layout.file(&view.id, name, Mode::Normal)).is_ok_and(|f| {
                    let mut head = [0u8; 7];
                    f.read_exact_at(&mut head, 0).is_ok() && &head == b"#EXTM3U"
                }),
            },
        };
        if !ok {
            bad.push(name.clone());
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type("index.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("video/seg-00001.ts"), "video/mp2t");
        assert_eq!(content_type("video/init-0.mp4"), "video/mp4");
        assert_eq!(content_type("subtitles-2/seg-00000.vtt"), "text/vtt");
        assert_eq!(content_type("media.bin"), "application/octet-stream");
        assert_eq!(content_type("images/cover.jpg"), "image/jpeg");
        assert_eq!(content_type("images/thumbnails-1.vtt"), "text/vtt");
    }
}
