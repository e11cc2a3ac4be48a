//! Plans: what an asset is made of, decided from a resolved source before anything is fetched —
//! its renditions, its pieces (one row each) and their file names, its images, its identity and
//! how many bytes to expect. Pure: no I/O, unit-tested on its own.

use url::Url;

use crate::catalog::{ImageRow, RenditionRow, SegmentRow};
use crate::dash::write::{LocalTrack, TrackInfo, local_mpd as write_local_mpd};
use crate::hls::master::{Rendition, Variant, write_local_master};
use crate::hls::media::{LocalNames, MediaPlaylist, write_local_playlist};
use crate::hls::vars::{VarSource, Variables};
use crate::identity::{self, sanitize_ext};
use crate::model::{AssetKind, ImageKind, RenditionRole, SegmentKind};
use crate::source::{Choice, Fetched};

/// The identity of an HLS choice: the source and every chosen playlist, without signatures;
/// for a DASH track, which representation it is in each period (all come from one MPD).
fn hls_identity(source: &Url, choice: &Choice) -> String {
    let mut id = identity::strip_signature(source);
    for r in &choice.renditions {
        id.push('|');
        id.push_str(&identity::strip_signature(&r.url));
        if let Some(track) = &r.dash {
            id.push('#');
            id.push_str(&track.key);
        }
    }
    id
}

/// Names of a rendition's files, relative to its directory.
pub(crate) struct RenditionNames<'a> {
    pub playlist: &'a MediaPlaylist,
    pub role: RenditionRole,
}

impl RenditionNames<'_> {
    fn fallback(&self) -> &'static str {
        match self.role {
            RenditionRole::Subtitles => "vtt",
            RenditionRole::Audio if self.playlist.maps.is_empty() => "aac",
            _ if !self.playlist.maps.is_empty() => "m4s",
            _ => "ts",
        }
    }
}

impl LocalNames for RenditionNames<'_> {
    fn segment(&self, index: usize) -> String {
        let uri = self.playlist.segments.get(index).map_or("", |s| s.uri.as_str());
        format!("seg-{index:05}.{}", sanitize_ext(uri, self.fallback()))
    }
    fn map(&self, index: usize) -> String {
        let uri = self.playlist.maps.get(index).map_or("", |m| m.uri.as_str());
        format!("init-{index}.{}", sanitize_ext(uri, "mp4"))
    }
}

pub(crate) fn rendition_dir(role: RenditionRole, idx: u32) -> String {
    match role {
        RenditionRole::Video => "video".into(),
        RenditionRole::Audio => format!("audio-{idx}"),
        RenditionRole::Subtitles => format!("subtitles-{idx}"),
        RenditionRole::File => String::new(),
    }
}

/// A rendition's source playlist as the catalog keeps it, read with the variables it was first
/// read with.
pub(crate) fn stored_playlist(row: &RenditionRow) -> Result<MediaPlaylist, String> {
    let text = row.playlist.as_deref().ok_or("missing playlist")?;
    let vars = row.variables.as_deref().and_then(Variables::from_json).unwrap_or_default();
    MediaPlaylist::parse(text, VarSource::Stored(&vars)).map_err(|e| e.to_string())
}

/// One rendition, as the local playlists need it.
pub(crate) struct LocalRendition<'a> {
    pub role: RenditionRole,
    pub dir: &'a str,
    /// The master playlist's attributes for it (JSON), if it came from one.
    pub attrs: &'a str,
    pub playlist: &'a MediaPlaylist,
}

/// The local playlists of an HLS asset, `(name, text)`: each rendition's, then the master
/// (`index.m3u8`). The first rendition is the video. `media_bytes` (what the media weighs in
/// all, stored or expected) gives the bandwidth of a source that was a media playlist itself.
pub(crate) fn local_playlists(renditions: &[LocalRendition<'_>], media_bytes: u64) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(renditions.len() + 1);
    for r in renditions {
        let names = RenditionNames { playlist: r.playlist, role: r.role };
        out.push((format!("{}/index.m3u8", r.dir), write_local_playlist(r.playlist, &names)));
    }
    let Some(video) = renditions.first() else {
        return out;
    };
    let variant: Variant = serde_json::from_str(video.attrs).unwrap_or_else(|_| {
        // A media playlist given directly: its bandwidth is what is stored per second.
        let secs = video.playlist.duration().max(0.001);
        Variant::with_bandwidth(String::new(), ((media_bytes as f64 * 8.0 / secs) as u64).max(1))
    });
    let others: Vec<(Rendition, Option<String>)> = renditions[1..]
        .iter()
        .filter_map(|r| {
            serde_json::from_str::<Rendition>(r.attrs).ok().map(|x| (x, Some(format!("{}/index.m3u8", r.dir))))
        })
        .collect();
    let refs: Vec<(&Rendition, Option<String>)> = others.iter().map(|(r, u)| (r, u.clone())).collect();
    let version = renditions.iter().map(|r| r.playlist.version).max().unwrap_or(3);
    let independent = renditions.iter().all(|r| r.playlist.independent_segments);
    let master = write_local_master(version, independent, &variant, &format!("{}/index.m3u8", video.dir), &refs);
    out.push(("index.m3u8".to_owned(), master));
    if let Some(mpd) = local_mpd(renditions) {
        out.push((LOCAL_MPD.to_owned(), mpd));
    }
    out
}

/// The local MPD of a DASH asset, next to its `index.m3u8`.
pub(crate) const LOCAL_MPD: &str = "manifest.mpd";

/// For a DASH asset (its renditions carry the source's [`TrackInfo`]): an MPD over the stored
/// files, relative URLs, periods and timelines as the source had them.
fn local_mpd(renditions: &[LocalRendition<'_>]) -> Option<String> {
    let infos: Vec<TrackInfo> = renditions
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r.attrs).ok()?;
            serde_json::from_value(v.get("dash")?.clone()).ok()
        })
        .collect::<Option<_>>()?;
    let tracks: Vec<LocalTrack<'_>> = renditions
        .iter()
        .zip(&infos)
        .map(|(r, info)| {
            let names = RenditionNames { playlist: r.playlist, role: r.role };
            // The track's segments, less the gaps of periods it does not play in (the MPD leaves
            // it out of those periods).
            let media: Vec<usize> = (0..r.playlist.segments.len()).filter(|i| !r.playlist.segments[*i].gap).collect();
            let mut first = 0usize;
            let inits = info
                .periods
                .iter()
                .map(|p| {
                    let map = media.get(first).and_then(|i| r.playlist.segments[*i].map);
                    first += p.count() as usize;
                    map.filter(|_| p.init).map(|m| format!("{}/{}", r.dir, names.map(m)))
                })
                .collect();
            let segments = media.iter().map(|i| format!("{}/{}", r.dir, names.segment(*i))).collect();
            LocalTrack { info, inits, segments }
        })
        .collect();
    Some(write_local_mpd(&tracks))
}

/// Rows for one rendition's segments.
pub(crate) fn segment_rows(idx: u32, role: RenditionRole, dir: &str, pl: &MediaPlaylist) -> Vec<SegmentRow> {
    let names = RenditionNames { playlist: pl, role };
    let mut rows = Vec::with_capacity(pl.maps.len() + pl.segments.len());
    let used = pl.used_maps();
    for (mi, m) in pl.maps.iter().enumerate().filter(|(mi, _)| used[*mi]) {
        rows.push(SegmentRow {
            rendition: idx,
            kind: SegmentKind::Init,
            idx: mi as u32,
            msn: None,
            uri: identity::strip_uri_signature(&m.uri),
            range: m.byte_range.map(|r| (r.offset, r.length)),
            file: format!("{dir}/{}", names.map(mi)),
            size: None,
            sha256: None,
            resume_offset: 0,
            pieces: None,
            done: false,
        });
    }
    for (si, s) in pl.segments.iter().enumerate() {
        rows.push(SegmentRow {
            rendition: idx,
            kind: SegmentKind::Media,
            idx: si as u32,
            msn: Some(s.msn),
            uri: identity::strip_uri_signature(&s.uri),
            range: s.byte_range.map(|r| (r.offset, r.length)),
            file: format!("{dir}/{}", names.segment(si)),
            size: if s.gap { Some(0) } else { None },
            sha256: None,
            resume_offset: 0,
            pieces: None,
            // A segment the source marks unavailable (EXT-X-GAP) is kept as a gap, not fetched.
            done: s.gap,
        });
    }
    rows
}

fn progressive_ext(content_type: Option<&str>, url: &Url) -> String {
    let by_type = match content_type.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase()) {
        Some(t) if t == "video/mp4" => Some("mp4"),
        Some(t) if t == "audio/mp4" || t == "audio/x-m4a" => Some("m4a"),
        Some(t) if t == "audio/mpeg" => Some("mp3"),
        Some(t) if t == "video/webm" => Some("webm"),
        Some(t) if t == "video/x-matroska" => Some("mkv"),
        Some(t) if t == "video/quicktime" => Some("mov"),
        Some(t) if t == "audio/aac" => Some("aac"),
        _ => None,
    };
    by_type.map_or_else(|| sanitize_ext(url.path(), "bin"), str::to_owned)
}

/// Estimated stored bytes of an HLS choice: exact for clear byte-range playlists, otherwise
/// bandwidth × duration.
fn hls_expected(choice: &Choice, playlists: &[MediaPlaylist]) -> (Option<u64>, bool) {
    if let Some(total) = playlists.iter().map(crate::source::ranged_size).sum::<Option<u64>>() {
        return (Some(total), true);
    }
    let bw = choice.variant.average_bandwidth.unwrap_or(choice.variant.bandwidth);
    if bw == 0 {
        return (None, false);
    }
    let duration = playlists.first().map_or(0.0, MediaPlaylist::duration);
    (Some((bw as f64 * duration / 8.0) as u64), false)
}

/// Everything the catalog needs for a new (or restarted) asset.
pub(crate) struct NewPlan {
    pub kind: AssetKind,
    pub identity: String,
    pub renditions: Vec<RenditionRow>,
    pub segments: Vec<SegmentRow>,
    pub expected: (Option<u64>, bool),
    pub duration: Option<f64>,
}

/// The stored name of an image.
pub(crate) fn image_file(kind: ImageKind, idx: u32, url: &str) -> String {
    let fallback = if kind == ImageKind::WebVtt { "vtt" } else { "jpg" };
    let ext = Url::parse(url).map_or_else(|_| fallback.to_owned(), |u| sanitize_ext(u.path(), fallback));
    match kind {
        ImageKind::Cover if idx == 1 => format!("images/cover.{ext}"),
        ImageKind::Cover => format!("images/cover-{idx}.{ext}"),
        ImageKind::Snapshot => format!("images/snapshot-{idx:05}.{ext}"),
        ImageKind::Sprite => format!("images/sprite-{idx:05}.{ext}"),
        ImageKind::SpriteOriginal => format!("images/sprite-original-{idx:05}.{ext}"),
        ImageKind::WebVtt => format!("images/thumbnails-{idx}.{ext}"),
    }
}

pub(crate) fn image_rows(list: Vec<(ImageKind, u32, String)>) -> Vec<ImageRow> {
    list.into_iter()
        .filter_map(|(kind, idx, url)| {
            let Ok(parsed) = Url::parse(&url) else {
                tracing::debug!(?kind, idx, "VOD listed an image whose URL does not parse: left out");
                return None;
            };
            Some(ImageRow {
                kind,
                idx,
                file: image_file(kind, idx, &url),
                uri: identity::strip_signature(&parsed),
                url,
                size: None,
                sha256: None,
                done: false,
                failure: None,
            })
        })
        .collect()
}

/// The plan of a progressive file at `url` (after redirects) of `size` bytes (when known).
pub(crate) fn progressive(
    identity: String,
    url: &Url,
    size: Option<u64>,
    content_type: Option<&str>,
    validator: Option<String>,
) -> NewPlan {
    let file = format!("media.{}", progressive_ext(content_type, url));
    let attrs = serde_json::json!({ "size": size, "content_type": content_type });
    NewPlan {
        kind: AssetKind::Progressive,
        identity,
        renditions: vec![RenditionRow {
            idx: 0,
            kind: RenditionRole::File,
            dir: String::new(),
            url: url.to_string(),
            uri: identity::strip_signature(url),
            attrs: attrs.to_string(),
            playlist: None,
            validator,
            variables: None,
        }],
        segments: vec![SegmentRow {
            rendition: 0,
            kind: SegmentKind::File,
            idx: 0,
            msn: None,
            uri: identity::strip_signature(url),
            range: None,
            file,
            size: None,
            sha256: None,
            resume_offset: 0,
            pieces: None,
            done: false,
        }],
        expected: (size, size.is_some()),
        duration: None,
    }
}

/// The plan of an HLS (or DASH, `kind`) source at `source`: `choice`, with each chosen
/// rendition's playlist (`fetched`, in the same order; for DASH, made from the MPD). `identity` is the app's, when it gave one.
pub(crate) fn hls(
    source: &Url,
    identity: Option<String>,
    kind: AssetKind,
    choice: &Choice,
    fetched: Vec<Fetched>,
) -> NewPlan {
    let mut renditions = Vec::new();
    let mut segments = Vec::new();
    let mut playlists = Vec::new();
    for (i, (r, f)) in choice.renditions.iter().zip(fetched).enumerate() {
        let idx = i as u32;
        let dir = rendition_dir(r.role, idx);
        segments.extend(segment_rows(idx, r.role, &dir, &f.playlist));
        renditions.push(RenditionRow {
            idx,
            kind: r.role,
            dir,
            url: f.base.to_string(),
            uri: identity::strip_signature(&r.url),
            attrs: r.attrs.to_string(),
            playlist: Some(f.text),
            validator: None,
            variables: (!f.playlist.variables.is_empty()).then(|| f.playlist.variables.to_json()),
        });
        playlists.push(f.playlist);
    }
    let identity = identity.unwrap_or_else(|| hls_identity(source, choice));
    let expected = hls_expected(choice, &playlists);
    let duration = playlists.first().map(MediaPlaylist::duration);
    NewPlan { kind, identity, renditions, segments, expected, duration }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(image_file(ImageKind::Cover, 1, "https://c/x/cover.png?auth_key=1"), "images/cover.png");
        assert_eq!(image_file(ImageKind::Snapshot, 3, "https://c/x/s"), "images/snapshot-00003.jpg");
        assert_eq!(image_file(ImageKind::WebVtt, 1, "https://c/x/t.vtt"), "images/thumbnails-1.vtt");
        assert_eq!(image_file(ImageKind::SpriteOriginal, 2, "https://c/x/o.jpg"), "images/sprite-original-00002.jpg");
    }
}
