//! Progressive files: one file, fetched in order, resumable from durable checkpoints.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use url::Url;

use crate::catalog::{DoneSegment, RenditionRow, SegmentRow};
use crate::error::fetch_failure;
use crate::fetch::{ErrorClass, Request, retry_delay};
use crate::keys::ContentKey;
use crate::model::{Event, FailureReason, Mode, SegmentKind};
use crate::seal::{self, HEADER_LEN, SealWriter, TAG_LEN};
use crate::sniff::{self, Content, Sniffer};
use crate::store::{self, StoreError};

use super::*;

#[allow(clippy::large_enum_variant)] // one per progressive download
enum FileWriter {
    Plain { file: std::io::BufWriter<std::fs::File>, digest: ring::digest::Context, len: u64 },
    Sealed(Box<SealWriter<std::fs::File>>),
}
impl FileWriter {
    fn len(&self) -> u64 {
        match self {
            FileWriter::Plain { len, .. } => *len,
            FileWriter::Sealed(w) => w.plaintext_len(),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        match self {
            FileWriter::Plain { file, digest, len } => {
                file.write_all(data)?;
                digest.update(data);
                *len += data.len() as u64;
                Ok(())
            }
            FileWriter::Sealed(w) => Ok(w.append(data)?),
        }
    }

    /// Flushes and syncs what is on disk; returns the plaintext bytes that are durable.
    fn checkpoint(&mut self) -> Result<u64, StoreError> {
        match self {
            FileWriter::Plain { file, len, .. } => {
                file.flush()?;
                file.get_ref().sync_data()?;
                Ok(*len)
            }
            FileWriter::Sealed(w) => {
                w.get_ref().sync_data()?;
                Ok(w.chunks_written() * u64::from(w.chunk_size()))
            }
        }
    }
}
/// What every plaintext byte of a progressive file passes through, in order (a kept prefix is
/// fed again on resume): the content check, and the CRC-64 of a VOD source file.
struct FileChecks {
    sniff: Sniffer,
    crc: Option<crate::vod::crc64::Crc64>,
}
impl FileChecks {
    fn new(crc: bool) -> Self {
        Self { sniff: Sniffer::new(), crc: crc.then(Default::default) }
    }

    fn update(&mut self, data: &[u8]) {
        self.sniff.update(data);
        if let Some(c) = &mut self.crc {
            c.update(data);
        }
    }

    fn reset(&mut self) {
        *self = Self::new(self.crc.is_some());
    }
}
fn open_part(
    ctx: &Ctx,
    part: &std::path::Path,
    resume_at: u64,
    sniff: &mut FileChecks,
) -> Result<FileWriter, StoreError> {
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let context = store::seal_context(&ctx.id, &progressive_name(part, ctx.mode));
    match (ctx.mode, ctx.key.as_deref()) {
        (Mode::Normal, _) => {
            let mut file = std::fs::File::options().create(true).truncate(false).read(true).write(true).open(part)?;
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            let keep = resume_at.min(file.metadata()?.len());
            file.set_len(keep)?;
            // Re-read what is kept: for the digest and the content check.
            file.seek(SeekFrom::Start(0))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut left = keep;
            while left > 0 {
                let n = file.read(&mut buf[..(left.min(1 << 20)) as usize])?;
                if n == 0 {
                    break;
                }
                digest.update(&buf[..n]);
                sniff.update(&buf[..n]);
                left -= n as u64;
            }
            file.seek(SeekFrom::End(0))?;
            Ok(FileWriter::Plain { file: std::io::BufWriter::with_capacity(256 * 1024, file), digest, len: keep })
        }
        (Mode::Encrypted, Some(key)) => {
            let chunk = u64::from(ctx.deps.settings.chunk_size);
            let chunks = resume_at / chunk;
            if chunks > 0
                && let Ok(mut file) = std::fs::File::options().read(true).write(true).open(part)
            {
                let mut header = [0u8; HEADER_LEN];
                let sealed_keep = HEADER_LEN as u64 + chunks * (chunk + TAG_LEN as u64);
                if file.metadata()?.len() >= sealed_keep && file.read_exact(&mut header).is_ok() {
                    // Verify what is kept (it was written before a crash) and feed the checker.
                    if verify_sealed_prefix(part, key, &context, chunks, sniff).is_ok() {
                        file.set_len(sealed_keep)?;
                        file.seek(SeekFrom::End(0))?;
                        if let Ok(w) = SealWriter::resume(file, key, &context, &header, chunks) {
                            return Ok(FileWriter::Sealed(Box::new(w)));
                        }
                    }
                }
            }
            sniff.reset();
            let file = std::fs::File::create(part)?;
            Ok(FileWriter::Sealed(Box::new(SealWriter::new(file, key, &context, ctx.seal_options())?)))
        }
        (Mode::Encrypted, None) => Err(StoreError::Io(std::io::Error::other("encrypted asset without content key"))),
    }
}
/// Decrypts and verifies the first `chunks` chunks of a partial sealed file, feeding their
/// plaintext to the content checker.
fn verify_sealed_prefix(
    part: &std::path::Path,
    key: &ContentKey,
    context: &[u8],
    chunks: u64,
    sniff: &mut FileChecks,
) -> Result<(), StoreError> {
    let file = std::fs::File::open(part)?;
    let reader = seal::PartialReader::new(&file, key, context)?;
    let mut buf = vec![0u8; reader.chunk_size() as usize + TAG_LEN];
    for i in 0..chunks {
        sniff.update(reader.decrypt_chunk(i, &mut buf)?);
    }
    Ok(())
}
fn progressive_name(part: &std::path::Path, mode: Mode) -> String {
    let name = part.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_suffix(".part").unwrap_or(&name).to_owned();
    match mode {
        Mode::Encrypted => name.strip_suffix(store::SEALED_SUFFIX).unwrap_or(&name).to_owned(),
        Mode::Normal => name,
    }
}
pub(super) async fn progressive(ctx: &Arc<Ctx>) -> JobResult {
    let deps = &ctx.deps;
    let (asset, rends, segs) = load(ctx).await?;
    let (Some(seg), Some(rend)) = (segs.first(), rends.first()) else {
        return Err(Stop::Failed(FailureReason::Storage { message: "progressive asset without a file row".into() }));
    };
    let tracker = Tracker::new(
        deps.events.clone(),
        ctx.id.clone(),
        1,
        (seg.resume_offset, 0),
        (asset.bytes_expected, asset.expected_exact),
    );
    if !seg.done {
        if ctx.vod.is_some() && (seg.resume_offset > 0 || ctx.urls_expired()) {
            // Resuming a VOD download: a fresh URL, and a check that it is still the same file.
            refresh(ctx, None, ctx.generation.load(Ordering::SeqCst), 0).await?;
        }
        let rends = ctx.deps.catalog.renditions(&ctx.id).await.map_err(catalog_stop)?;
        let rend = rends.first().unwrap_or(rend);
        download_file(ctx, seg, rend, &tracker, asset.bytes_expected).await?;
    }
    deps.catalog.set_entry(&ctx.id, &seg.file).await.map_err(catalog_stop)?;
    verify_stored(ctx).await?;
    let (bytes, _) = tracker.committed_totals();
    deps.catalog.set_expected(&ctx.id, Some(bytes), true).await.map_err(catalog_stop)?;
    tracker.set_expected(Some(bytes), true);
    tracker.emit(true);
    Ok(())
}
async fn download_file(
    ctx: &Arc<Ctx>,
    seg: &SegmentRow,
    rend: &RenditionRow,
    tracker: &Tracker,
    expected: Option<u64>,
) -> JobResult {
    let deps = &ctx.deps;
    let dest = deps.layout.file(&ctx.id, &seg.file, ctx.mode);
    let part =
        dest.with_file_name(format!("{}.part", dest.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    let mut validator = rend.validator.clone();
    let mut url = Url::parse(&rend.url).map_err(|e| storage("catalog URL", e))?;
    if let Some(needed) = expected {
        let needed = needed.saturating_sub(seg.resume_offset);
        let available = store::available_space(deps.layout.root()).map_err(|e| storage("free space", e))?;
        if needed + needed / 20 > available {
            return Err(Stop::Failed(FailureReason::StorageFull { needed, available }));
        }
    }
    // Resume only with a validator: without one, a changed file could not be detected.
    let resume_at = if validator.is_some() { seg.resume_offset } else { 0 };
    // A VOD source file is checked against the size and CRC-64 VOD reports.
    let mezzanine = match &ctx.vod {
        Some(v) => Some(v.lock().await.clone()).filter(|s| s.mezzanine),
        None => None,
    };
    let mut sniff = FileChecks::new(mezzanine.as_ref().is_some_and(|m| m.crc64.is_some()));
    let mut writer =
        open_part(ctx, &part, resume_at, &mut sniff).map_err(|e| store_stop(ctx, "opening the file", e))?;
    tracker.set_committed(writer.len(), 0);
    let policy = &deps.source.retry;
    let mut transient = 0u32;
    let mut last_checkpoint = writer.len();
    let mut stored_at_last_failure = writer.len();
    loop {
        let generation = ctx.generation.load(Ordering::SeqCst);
        if ctx.urls_expired() {
            refresh(ctx, None, generation, 0).await?;
            let fresh = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
            url = Url::parse(&fresh).map_err(|e| storage("refreshed URL", e))?;
            continue;
        }
        let start = writer.len();
        let if_range = validator.clone().filter(|_| start > 0);
        let request = Request {
            from: (start > 0).then_some(start),
            if_range: if_range.as_deref(),
            ..Request::get(&url, &ctx.headers)
        };
        let result: Result<(), AttemptError> = async {
            let mut body = deps.source.http.open(request).await?;
            if start > 0 && !body.partial {
                // The file changed (If-Range failed) or the server ignores ranges: start over
                // cleanly with what this response carries.
                tracing::info!(asset = %ctx.id, "source file changed or cannot resume; starting over");
                sniff.reset();
                writer = open_part(ctx, &part, 0, &mut sniff)?;
                last_checkpoint = 0;
                tracker.set_committed(0, 0);
                deps.catalog
                    .set_resume_point(&ctx.id, 0, None)
                    .await
                    .map_err(|e| AttemptError::Store(StoreError::Io(std::io::Error::other(e.to_string()))))?;
                deps.events.emit(Event::Restarted {
                    id: ctx.id.clone(),
                    reason: FailureReason::SourceChanged { message: "the file changed on the server".into() },
                });
            }
            if body.validator.is_some() {
                validator = body.validator.clone();
            }
            if let Some(total) = body.total_size {
                tracker.set_expected(Some(total), true);
            }
            // From the first byte, the file's start is held back until it is known to be media:
            // an error page served with 200 is never written as the film.
            let mut head = (writer.len() == 0).then(Vec::new);
            let mut ended = false;
            while !ended {
                let chunk = match (body.chunk().await?, &mut head) {
                    (Some(c), Some(h)) => {
                        h.extend_from_slice(&c);
                        if h.len() < sniff::HEAD_LEN {
                            continue;
                        }
                        check_file_head(h, false)?;
                        bytes::Bytes::from(std::mem::take(h))
                    }
                    (Some(c), None) => c,
                    (None, Some(h)) => {
                        check_file_head(h, true)?;
                        ended = true;
                        bytes::Bytes::from(std::mem::take(h))
                    }
                    (None, None) => break,
                };
                if head.as_ref().is_some_and(Vec::is_empty) {
                    head = None;
                }
                writer.write(&chunk)?;
                sniff.update(&chunk);
                tracker.written(chunk.len() as u64);
                if writer.len().saturating_sub(last_checkpoint) >= deps.settings.checkpoint_bytes {
                    let durable = writer.checkpoint()?;
                    deps.catalog
                        .set_resume_point(&ctx.id, durable, validator.as_deref())
                        .await
                        .map_err(|e| AttemptError::Store(StoreError::Io(std::io::Error::other(e.to_string()))))?;
                    tracker.set_committed(durable, writer.len() - durable);
                    last_checkpoint = writer.len();
                    // Progress: fresh URLs are fruitless only when nothing is stored between them.
                    ctx.fruitless.store(0, Ordering::Relaxed);
                    check_still_running(ctx).await.map_err(|_| AttemptError::Stopped)?;
                }
            }
            Ok(())
        }
        .await;
        // A long file may lose its connection many times: the retry budget is per stretch
        // without progress, not per file.
        if writer.len() > stored_at_last_failure {
            transient = 0;
            stored_at_last_failure = writer.len();
        }
        match result {
            Ok(()) => break,
            Err(AttemptError::Fetch(e)) => match e.class() {
                ErrorClass::Transient { retry_after } if transient + 1 < policy.attempts => {
                    tokio::time::sleep(retry_delay(policy, transient, retry_after)).await;
                    transient += 1;
                }
                ErrorClass::Expired => {
                    refresh(ctx, None, generation, status_of(&e)).await?;
                    let fresh = ctx.source_url.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    url = Url::parse(&fresh).map_err(|e| storage("refreshed URL", e))?;
                }
                _ => return Err(Stop::Failed(fetch_failure("the file", &e))),
            },
            Err(AttemptError::Stopped) => return Err(Stop::External),
            Err(AttemptError::Content(m)) => {
                if writer.len() == 0 {
                    // Refused at its first bytes: leave nothing behind.
                    drop(writer);
                    let _ = std::fs::remove_file(&part);
                }
                return Err(Stop::Failed(FailureReason::BadSource { message: format!("the file: {m}") }));
            }
            Err(AttemptError::Store(e)) => return Err(store_stop(ctx, "the file", e)),
        }
    }
    // A media format we recognise, and well formed where we can tell (TS packets, MP4 boxes);
    // a file that is not is discarded, never kept or resumed from.
    if let Err(e) = sniff.sniff.finish() {
        drop(writer);
        let _ = std::fs::remove_file(&part);
        deps.catalog.set_resume_point(&ctx.id, 0, None).await.map_err(catalog_stop)?;
        return Err(Stop::Failed(FailureReason::BadSource { message: format!("the file: {e}") }));
    }
    if let Some(m) = &mezzanine {
        let got_size = writer.len();
        let got_crc = sniff.crc.take().map(crate::vod::crc64::Crc64::finish);
        let size_bad = m.size.is_some_and(|s| s != got_size);
        let crc_bad = matches!((m.crc64, got_crc), (Some(want), Some(got)) if want != got);
        if size_bad || crc_bad {
            // Never keep (or resume) a file that is not the source file.
            drop(writer);
            let _ = std::fs::remove_file(&part);
            deps.catalog.set_resume_point(&ctx.id, 0, None).await.map_err(catalog_stop)?;
            let message = if size_bad {
                format!("the source file has {got_size} bytes, VOD says {}; it was discarded", m.size.unwrap_or(0))
            } else {
                format!(
                    "the source file's CRC-64 is {}, VOD says {}; it was discarded",
                    got_crc.unwrap_or(0),
                    m.crc64.unwrap_or(0)
                )
            };
            return Err(Stop::Failed(FailureReason::BadSource { message }));
        }
    }
    // Complete: seal the last chunk, make it durable, move it into place, commit.
    let (size, sha256) = match writer {
        FileWriter::Plain { file, digest, len } => {
            let file = file.into_inner().map_err(|e| storage("the file", e.into_error()))?;
            file.sync_data().map_err(|e| store_stop(ctx, "the file", e.into()))?;
            (len, Some(hex::encode(digest.finish())))
        }
        FileWriter::Sealed(w) => {
            let (file, summary) = w.finish().map_err(|e| store_stop(ctx, "the file", e.into()))?;
            file.sync_data().map_err(|e| store_stop(ctx, "the file", e.into()))?;
            (summary.plaintext_len, None)
        }
    };
    std::fs::rename(&part, &dest).map_err(|e| storage("the file", e))?;
    seal::sync_parent_dir(&dest).map_err(|e| storage("the file", e))?;
    let done = DoneSegment { rendition: 0, kind: SegmentKind::File, idx: 0, size, sha256 };
    deps.catalog.commit_segments(&ctx.id, &[done]).await.map_err(catalog_stop)?;
    tracker.set_committed(size, 0);
    tracker.committed(0, 1, 0);
    Ok(())
}
/// The first bytes of a progressive file (all of them, if it is that short) must be media.
fn check_file_head(head: &[u8], complete: bool) -> Result<(), AttemptError> {
    match sniff::identify(head, complete) {
        Content::Media(_) => Ok(()),
        Content::Hls => Err(AttemptError::Content("got an HLS playlist, not the file".into())),
        Content::Dash => Err(AttemptError::Content("got a DASH manifest, not the file".into())),
        Content::NotMedia(what) => Err(AttemptError::Content(format!("got {what}, not media"))),
    }
}
