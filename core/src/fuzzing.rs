//! Entry points for the `fuzz/` crate (cargo-fuzz), built only with the `fuzzing` feature. Each
//! takes arbitrary bytes, runs a parser the way the vault runs it on what a server (or the
//! catalog) hands it, and checks the properties that must hold for any input: no panic, and
//! what is accepted round-trips or stays within bounds. A violated property panics, which
//! libFuzzer reports with the input.

use url::Url;

use crate::hls::master::{MasterPlaylist, RenditionKind, write_local_master};
use crate::hls::media::{MediaPlaylist, write_local_playlist};
use crate::hls::vars::{VarSource, Variables};
use crate::keys::ContentKey;
use crate::model::Quality;
use crate::model::RenditionRole;
use crate::plan::{RenditionNames, image_rows, segment_rows};
use crate::seal::{SealOptions, SealWriter, SealedReader};
use crate::sniff::{self, Sniffer};

#[allow(clippy::expect_used)] // a fixed, valid URL
fn url() -> Url {
    Url::parse("https://cdn.example.com/v/index.m3u8?token=abc&auth=x%20y").expect("URL")
}

/// A media playlist, and planning from it: parsed with variables from a master and the URL;
/// what parses plans one row per piece, reads again identically from its stored variables, and
/// its local playlist parses back to the same timeline.
pub fn hls_media(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let url = url();
    let mut master = Variables::default();
    master.insert("host", "https://edge.example.com");
    master.insert("token", "t0k3n");
    let Ok(pl) = MediaPlaylist::parse(text, VarSource::Fetched { url: &url, imports: Some(&master) }) else {
        return;
    };
    assert!(!pl.segments.is_empty(), "an accepted playlist has segments");
    assert!(pl.duration().is_finite());
    let rows = segment_rows(0, RenditionRole::Video, "video", &pl);
    let used_maps = pl.used_maps().iter().filter(|u| **u).count();
    assert_eq!(rows.len(), used_maps + pl.segments.len(), "one row per piece the local playlist uses");
    let again = MediaPlaylist::parse(text, VarSource::Stored(&pl.variables));
    assert_eq!(again.as_ref(), Ok(&pl), "read again from the catalog, it is the same playlist");
    let local = write_local_playlist(&pl, &RenditionNames { playlist: &pl, role: RenditionRole::Video });
    let back = match MediaPlaylist::parse(&local, VarSource::Nothing) {
        Ok(b) => b,
        Err(e) => panic!("the local playlist does not parse: {e}\n{local}"),
    };
    assert_eq!(back.segments.len(), pl.segments.len());
    assert_eq!(back.maps.len(), used_maps);
    for (a, b) in back.segments.iter().zip(&pl.segments) {
        assert!((a.duration - b.duration).abs() < 1e-5, "{} vs {}", a.duration, b.duration);
        assert_eq!((a.msn, a.discontinuity, a.gap), (b.msn, b.discontinuity, b.gap));
        assert_eq!(a.map.is_some(), b.map.is_some());
    }
    // Time ranges: a cut either holds no segment or is exactly the overlapping segments as the
    // source had them (the cut checks itself; a mismatch is a bug).
    let total = pl.duration();
    for (from, to) in [(0.0, f64::INFINITY), (total / 3.0, total * 2.0 / 3.0), (total / 2.0, total / 2.0 + 0.001)] {
        match crate::hls::cut::cut(text, &pl, from, to) {
            Ok(_) | Err(crate::hls::cut::CutError::Empty { .. }) => {}
            Err(e) => panic!("cutting {from}-{to}: {e}\n{text}"),
        }
    }
}

/// A master playlist, choosing from it, and the local master written for the choice, which
/// must parse back with the one variant and the renditions chosen.
pub fn hls_master(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let url = url();
    let Ok(m) = MasterPlaylist::parse(text, VarSource::Fetched { url: &url, imports: None }) else {
        return;
    };
    assert!(!m.variants.is_empty());
    for q in [Quality::Best, Quality::Worst, Quality::Height(720), Quality::MaxBandwidth(1_000_000)] {
        let i = q.pick(&m.variants);
        assert!(i < m.variants.len());
        let v = &m.variants[i];
        let mut chosen = m.group(RenditionKind::Audio, v.audio_group.as_deref());
        chosen.extend(m.group(RenditionKind::Subtitles, v.subtitles_group.as_deref()));
        chosen.retain(|r| r.uri.is_some());
        let with_uris: Vec<_> =
            chosen.iter().enumerate().map(|(k, r)| (*r, Some(format!("r-{k}/index.m3u8")))).collect();
        let local = write_local_master(m.version, m.independent_segments, v, "video/index.m3u8", &with_uris);
        let back = match MasterPlaylist::parse(&local, VarSource::Nothing) {
            Ok(b) => b,
            Err(e) => panic!("the local master does not parse: {e}\n{local}"),
        };
        assert_eq!(back.variants.len(), 1, "{local}");
        assert_eq!(back.variants[0].uri, "video/index.m3u8");
        assert_eq!(back.renditions.len(), with_uris.len(), "{local}");
    }
}

/// Telling sources apart and checking pieces: any split of the same bytes gives the same verdict.
pub fn sniff(data: &[u8]) {
    let _ = sniff::identify(data, true);
    let _ = sniff::identify(&data[..data.len() / 2], false);
    let whole = {
        let mut s = Sniffer::new();
        s.update(data);
        s.finish()
    };
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut split = Sniffer::new();
    for c in data.chunks(step) {
        split.update(c);
    }
    assert_eq!(split.finish(), whole, "the verdict depends on how the bytes arrived");
    assert_eq!(split.len(), data.len() as u64);
}

/// Key files: whatever is accepted serialises back to the same bytes.
pub fn key_file(data: &[u8]) {
    let check = |bytes: &[u8]| {
        if let Ok(k) = crate::KeyFile::from_bytes(bytes, "com.example.fuzz") {
            assert_eq!(&k.to_bytes()[..], bytes, "an accepted key file is exactly what it serialises to");
            let _ = k.check_signer(Some(&"11".repeat(32)));
        }
        let _ = crate::keyfile::KeyFile::inspect(bytes);
    };
    check(data);
    // With the checksum made right, so that mutations reach the fields behind it (a version 2
    // file's signer list).
    if data.len() > 32 {
        let mut fixed = data.to_vec();
        let n = fixed.len() - 32;
        let sum = crate::crypto::sha256(&[&fixed[..n]]);
        fixed[n..].copy_from_slice(&sum);
        check(&fixed);
    }
}

/// The key of the `sealed` target (it seals its own valid files with it, then mutates them).
pub fn sealed_key() -> ContentKey {
    ContentKey::from_bytes([7u8; ContentKey::LEN])
}

/// The context of the sealed fuzz inputs.
pub const SEALED_CONTEXT: &[u8] = b"fuzz-asset/video/seg-00000.ts";

/// Sealed files, random and mutated. The input is 8 control bytes, then a body. The body is
/// opened as a sealed file (random files: an integrity error, or it reads back whole); then it
/// is sealed as plaintext (chunk size from the control bytes), the sealed bytes are mutated as
/// the control bytes say (flip a bit, truncate, extend, swap two chunks), and the result must
/// either be byte-identical to what was sealed and read back the same, or fail verification:
/// never another plaintext.
pub fn sealed(data: &[u8]) {
    let key = sealed_key();
    let (ctl, body) = data.split_at(data.len().min(8));
    let mut c = [0u8; 8];
    c[..ctl.len()].copy_from_slice(ctl);
    match SealedReader::open(body, &key, SEALED_CONTEXT) {
        Ok(r) => match r.read_all() {
            Ok(plain) => assert_eq!(plain.len() as u64, r.len()),
            Err(e) => assert!(matches!(e, crate::SealError::Integrity), "{e}"),
        },
        Err(e) => assert!(matches!(e, crate::SealError::Integrity), "{e}"),
    }
    if let Ok(p) = crate::seal::PartialReader::new(body, &key, SEALED_CONTEXT) {
        let mut buf = vec![0u8; p.chunk_size() as usize + crate::seal::TAG_LEN];
        for i in 0..4 {
            let _ = p.decrypt_chunk(i, &mut buf);
        }
    }
    // Seal the body, with a small chunk size so that there are many chunks.
    let chunk_size = 16 * (1 + u32::from(c[0] % 8));
    let Ok(mut w) = SealWriter::new(Vec::new(), &key, SEALED_CONTEXT, SealOptions { chunk_size }) else { return };
    if w.append(body).is_err() {
        return;
    }
    let Ok((sealed, summary)) = w.finish() else { return };
    assert_eq!(summary.plaintext_len, body.len() as u64);
    let mut bad = sealed.clone();
    let at = usize::from(u16::from_be_bytes([c[2], c[3]])) % bad.len().max(1);
    match c[1] % 4 {
        0 => bad[at] ^= 1 << (c[4] % 8),
        1 => bad.truncate(at),
        2 => bad.extend_from_slice(&c[4..8][..usize::from(c[5] % 4) + 1]),
        _ => {
            let stride = chunk_size as usize + crate::seal::TAG_LEN;
            let chunks = (bad.len() - crate::seal::HEADER_LEN) / stride;
            let (i, j) = (usize::from(c[4]) % chunks.max(1), usize::from(c[5]) % chunks.max(1));
            if i != j {
                let (lo, hi) = (i.min(j), i.max(j));
                let (a, b) = bad[crate::seal::HEADER_LEN..].split_at_mut(hi * stride);
                a[lo * stride..(lo + 1) * stride].swap_with_slice(&mut b[..stride]);
            }
        }
    }
    let back = SealedReader::open(bad.as_slice(), &key, SEALED_CONTEXT).and_then(|r| r.read_all());
    if bad == sealed {
        assert_eq!(back.ok().as_deref(), Some(body), "an untouched sealed file reads back");
    } else {
        assert!(matches!(back, Err(crate::SealError::Integrity)), "a changed sealed file was not detected");
    }
}

/// The playback server's `Range` header: a range it serves lies within the file.
pub fn range(data: &[u8]) {
    let len = data.iter().take(8).fold(0u64, |a, b| a << 8 | u64::from(*b)) % (1 << 40);
    let Ok(value) = std::str::from_utf8(data.get(8..).unwrap_or_default()) else { return };
    if let Some(Ok((start, end))) = crate::playback::parse_range(value, len) {
        assert!(start < end && end <= len, "{value:?} on {len} bytes gave {start}..{end}");
    }
}

/// ApsaraVideo VOD API answers, and what the engine does with them: choosing a stream, listing
/// images, rewriting a thumbnail track.
pub fn vod_answer(data: &[u8]) {
    for row in image_rows(crate::source::vod::fuzz_answer(data)) {
        assert!(row.file.starts_with("images/") && !row.file.contains(".."), "{}", row.file);
    }
}

/// What the catalog stores as JSON, read back: the download request, a failure reason, a VOD
/// asset's state, a rendition's variables. Whatever parses serialises back to an equal value.
pub fn stored_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = serde_json::from_str::<crate::DownloadRequest>(text) {
        let _ = r.vod_request();
        let json = serde_json::to_string(&r).unwrap_or_default();
        let back: Option<crate::DownloadRequest> = serde_json::from_str(&json).ok();
        assert!(back.as_ref().is_some_and(|b| b.url == r.url && b.mode == r.mode), "request round trip");
    }
    if let Ok(f) = serde_json::from_str::<crate::FailureReason>(text) {
        let json = f.to_json().unwrap_or_default();
        assert_eq!(crate::FailureReason::from_json(&json), f);
    }
    if let Some(v) = Variables::from_json(text) {
        assert_eq!(Variables::from_json(&v.to_json()), Some(v));
    }
    crate::source::vod::fuzz_state(text);
}

/// An MPD, as `prepare` and `download` read one: parsed; every representation's pieces resolved
/// in every period; what resolves becomes an HLS media playlist that our HLS parser reads back
/// with the same pieces, and a local MPD that parses back with the same periods. A segment index
/// is read from the input's own bytes.
pub fn mpd(data: &[u8]) {
    use crate::dash::segments::resolve;
    use crate::dash::write::{LocalTrack, Span, TrackInfo, hls_media_playlist, local_mpd};
    use crate::dash::{Mpd, sidx};
    let Ok(text) = std::str::from_utf8(data) else { return };
    #[allow(clippy::expect_used)] // a fixed, valid URL
    let url = Url::parse("https://cdn.example.com/d/manifest.mpd?token=abc").expect("URL");
    let Ok(mpd) = Mpd::parse(text, &url) else { return };
    assert!(!mpd.periods.is_empty(), "an accepted MPD has periods");
    for (pi, period) in mpd.periods.iter().enumerate() {
        for set in &period.sets {
            for rep in &set.reps {
                let Ok(mut pieces) = resolve(rep, period.duration) else { continue };
                if pieces.index.is_some() && sidx::apply(&mut pieces, data, 0).is_err() {
                    continue;
                }
                if pieces.segments.is_empty() {
                    continue;
                }
                let gap = Span::Gap { secs: 2.5, chunk: 2.0, uri: &url };
                let text = hls_media_playlist(&[Span::Pieces(&pieces), gap]);
                let pl = MediaPlaylist::parse(&text, VarSource::Fetched { url: &url, imports: None })
                    .unwrap_or_else(|e| panic!("the HLS playlist made from an MPD does not parse: {e}\n{text}"));
                assert_eq!(pl.segments.len(), pieces.segments.len() + 1, "one HLS segment per piece, and the gap");
                assert!(pl.segments.last().is_some_and(|s| s.gap), "the gap is a gap");
                let info = TrackInfo::new(set, rep, &[(pi as u32, period, rep, &pieces)]);
                let files: Vec<String> = (0..pieces.segments.len()).map(|i| format!("video/seg-{i:05}.m4s")).collect();
                let inits = vec![pieces.init.as_ref().map(|_| "video/init-0.mp4".to_owned())];
                let local = local_mpd(&[LocalTrack { info: &info, inits, segments: files }]);
                let back =
                    Mpd::parse(&local, &url).unwrap_or_else(|e| panic!("the local MPD does not parse: {e}\n{local}"));
                assert_eq!(back.periods.len(), 1, "{local}");
            }
        }
    }
}

/// A segment index (`sidx`) read from arbitrary bytes: no panic, and what it accepts is pieces
/// in order, none empty.
pub fn sidx(data: &[u8]) {
    use crate::dash::segments::{Piece, Pieces};
    #[allow(clippy::expect_used)] // a fixed, valid URL
    let url = Url::parse("https://cdn.example.com/d/video.mp4").expect("URL");
    let mut p =
        Pieces { timescale: 1, pto: 0, init: None, segments: Vec::new(), index: Some(Piece { url, range: None }) };
    if crate::dash::sidx::apply(&mut p, data, 1000).is_ok() {
        let mut end = 0;
        for s in &p.segments {
            let (offset, len) = s.piece.range.unwrap_or_default();
            assert!(len > 0 && offset >= end, "pieces in order, none empty");
            end = offset + len;
        }
    }
}
