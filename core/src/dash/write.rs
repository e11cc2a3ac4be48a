//! Writing a chosen representation out: as an HLS media playlist of its pieces (what the engine
//! downloads, and what HLS players are given), as the timing a local MPD needs ([`TrackInfo`],
//! kept with the asset), and as a local MPD over the stored files ([`local_mpd`]).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::mpd::{AdaptationSet, ContentKind, Period, Representation};
use super::segments::{Piece, Pieces};
use super::time::format_duration;

fn byterange(r: (u64, u64)) -> String {
    format!("{}@{}", r.1, r.0)
}

/// What a track has in one period: its pieces, or nothing for `secs` seconds (a period the
/// track does not play in while others do), written as `EXT-X-GAP` segments at `uri` (never
/// fetched) of at most `chunk` seconds, so that every rendition has the same discontinuities.
pub enum Span<'a> {
    /// The track's pieces in the period.
    Pieces(&'a Pieces),
    /// A period without the track.
    Gap {
        /// Its length.
        secs: f64,
        /// The longest gap segment (the track's segment length: a long gap does not make a long
        /// target duration).
        chunk: f64,
        /// A URI for the gap segments.
        uri: &'a url::Url,
    },
}

/// An HLS media playlist (RFC 8216) of a representation's pieces over the periods: an
/// `EXT-X-MAP` for each period's initialization, `EXT-X-BYTERANGE` where pieces are ranges,
/// `EXT-X-DISCONTINUITY` between periods, `EXT-X-GAP` for a period without the track. URIs are
/// absolute.
pub fn hls_media_playlist(spans: &[Span<'_>]) -> String {
    let max = spans
        .iter()
        .flat_map(|span| match span {
            Span::Pieces(p) => p.segments.iter().map(|s| s.d as f64 / p.timescale as f64).collect::<Vec<_>>(),
            Span::Gap { secs, chunk, .. } => vec![secs.min(chunk.max(1.0))],
        })
        .fold(1.0f64, f64::max);
    let mut out = String::new();
    let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n", max.round().max(1.0) as u64);
    out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n");
    let mut first = true;
    for span in spans {
        let p = match span {
            Span::Pieces(p) if !p.segments.is_empty() => p,
            Span::Pieces(_) => continue,
            Span::Gap { secs, chunk, uri } => {
                if !first {
                    out.push_str("#EXT-X-DISCONTINUITY\n");
                }
                first = false;
                let chunk = chunk.max(1.0);
                let mut left = *secs;
                while left > 0.0005 {
                    let d = if left > chunk * 1.5 { chunk } else { left };
                    let _ = write!(out, "#EXTINF:{d:.6},\n#EXT-X-GAP\n{uri}\n");
                    left -= d;
                }
                continue;
            }
        };
        if !first {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        first = false;
        if let Some(Piece { url, range }) = &p.init {
            let _ = write!(out, "#EXT-X-MAP:URI=\"{url}\"");
            if let Some(r) = range {
                let _ = write!(out, ",BYTERANGE=\"{}\"", byterange(*r));
            }
            out.push('\n');
        }
        for s in &p.segments {
            let _ = writeln!(out, "#EXTINF:{:.6},", s.d as f64 / p.timescale as f64);
            if let Some(r) = s.piece.range {
                let _ = writeln!(out, "#EXT-X-BYTERANGE:{}", byterange(r));
            }
            let _ = writeln!(out, "{}", s.piece.url);
        }
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// One period of a stored track: where it sits and its segments' times, run-length coded as
/// `(t, d, r)` like a `SegmentTimeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodTiming {
    /// Index of the period in the source MPD.
    pub period: u32,
    /// `Period@id`.
    pub id: Option<String>,
    /// Start, milliseconds.
    pub start_ms: u64,
    /// Duration, milliseconds.
    pub duration_ms: Option<u64>,
    /// Units per second.
    pub timescale: u64,
    /// `@presentationTimeOffset`.
    pub pto: u64,
    /// Whether the period has an initialization segment.
    pub init: bool,
    /// `(t, d, r)`.
    pub timeline: Vec<(u64, u64, u64)>,
    /// The representation in this period, when it is not the track's own (an ad break in
    /// another resolution or codec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rep: Option<RepAttrs>,
}

/// A representation's attributes, as the local MPD writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepAttrs {
    /// `@id`.
    #[serde(rename = "rep_id")]
    pub id: String,
    /// `@bandwidth`.
    pub bandwidth: u64,
    /// `@codecs`.
    pub codecs: Option<String>,
    /// `@width`.
    pub width: Option<u64>,
    /// `@height`.
    pub height: Option<u64>,
    /// `@frameRate`.
    pub frame_rate: Option<String>,
    /// `@sar`.
    pub sar: Option<String>,
    /// `@audioSamplingRate`.
    pub sampling_rate: Option<String>,
}

impl RepAttrs {
    fn of(rep: &Representation) -> RepAttrs {
        RepAttrs {
            id: rep.id.clone(),
            bandwidth: rep.bandwidth,
            codecs: rep.codecs.clone(),
            width: rep.width,
            height: rep.height,
            frame_rate: rep.frame_rate.clone(),
            sar: rep.sar.clone(),
            sampling_rate: rep.sampling_rate.clone(),
        }
    }
}

impl PeriodTiming {
    /// Segments in the period.
    pub fn count(&self) -> u64 {
        self.timeline.iter().map(|(_, _, r)| r + 1).sum()
    }
}

/// What a stored DASH track is, for the local MPD: the source's attributes and its timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// `video`, `audio`, `text`, …
    pub content: String,
    /// The representation (of the main period).
    #[serde(flatten)]
    pub rep: RepAttrs,
    /// `@mimeType`.
    pub mime: Option<String>,
    /// `@lang`.
    pub lang: Option<String>,
    /// `Role@value`s.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `AudioChannelConfiguration` `(scheme, value)`.
    pub channels: Option<(String, String)>,
    /// The periods it plays in.
    pub periods: Vec<PeriodTiming>,
}

impl TrackInfo {
    /// The track of `rep` (of `set`), playing a representation's `pieces` in each of `periods`.
    pub fn new(
        set: &AdaptationSet,
        rep: &Representation,
        periods: &[(u32, &Period, &Representation, &Pieces)],
    ) -> TrackInfo {
        let own = RepAttrs::of(rep);
        TrackInfo {
            content: set.kind.as_str().to_owned(),
            mime: rep.mime.clone(),
            lang: set.lang.clone(),
            roles: set.roles.clone(),
            channels: rep.channels.as_ref().map(|c| (c.scheme.clone(), c.value.clone())),
            periods: periods
                .iter()
                .filter(|(_, _, _, p)| !p.segments.is_empty())
                .map(|(i, period, r, p)| {
                    let mut timeline: Vec<(u64, u64, u64)> = Vec::new();
                    for s in &p.segments {
                        match timeline.last_mut() {
                            Some((t, d, r)) if *d == s.d && *t + *d * (*r + 1) == s.t => *r += 1,
                            _ => timeline.push((s.t, s.d, 0)),
                        }
                    }
                    PeriodTiming {
                        period: *i,
                        id: period.id.clone(),
                        start_ms: (period.start * 1000.0).round() as u64,
                        duration_ms: period.duration.map(|d| (d * 1000.0).round() as u64),
                        timescale: p.timescale,
                        pto: p.pto,
                        init: p.init.is_some(),
                        timeline,
                        rep: Some(RepAttrs::of(r)).filter(|a| *a != own),
                    }
                })
                .collect(),
            rep: own,
        }
    }

    fn kind(&self) -> ContentKind {
        match self.content.as_str() {
            "video" => ContentKind::Video,
            "audio" => ContentKind::Audio,
            "text" => ContentKind::Text,
            "image" => ContentKind::Image,
            _ => ContentKind::Other,
        }
    }

    /// Whether it is WebVTT text (which HLS can list); TTML and text in fMP4 are not.
    pub fn is_webvtt(&self) -> bool {
        self.kind() == ContentKind::Text
            && (self.mime.as_deref() == Some("text/vtt") || self.rep.codecs.as_deref().is_some_and(|c| c == "wvtt"))
            && !self.periods.iter().any(|p| p.init)
    }
}

/// A stored track as the local MPD lists it: its info and its files (relative to the MPD), the
/// initialization of each of its periods and every segment in order.
pub struct LocalTrack<'a> {
    /// What it is.
    pub info: &'a TrackInfo,
    /// The initialization file of each period in `info.periods`.
    pub inits: Vec<Option<String>>,
    /// Every segment's file.
    pub segments: Vec<String>,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn opt_attr(out: &mut String, name: &str, v: Option<&str>) {
    if let Some(v) = v {
        let _ = write!(out, " {name}=\"{}\"", esc(v));
    }
}

/// A static MPD over stored files: one `Period` per source period, one `AdaptationSet` per track,
/// each with a `SegmentList` (its `SegmentTimeline` as the source timed it) or, for a text track
/// stored as one file, a `BaseURL`.
pub fn local_mpd(tracks: &[LocalTrack<'_>]) -> String {
    let mut periods: Vec<&PeriodTiming> = Vec::new();
    for t in tracks {
        for p in &t.info.periods {
            if !periods.iter().any(|q| q.period == p.period) {
                periods.push(p);
            }
        }
    }
    periods.sort_by_key(|p| p.period);
    let end_ms = periods
        .iter()
        .map(|p| {
            p.start_ms.saturating_add(p.duration_ms.unwrap_or_else(|| {
                let units: u64 = p
                    .timeline
                    .iter()
                    .map(|(_, d, r)| d.saturating_mul(r.saturating_add(1)))
                    .fold(0, u64::saturating_add);
                units.saturating_mul(1000) / p.timescale.max(1)
            }))
        })
        .max()
        .unwrap_or(0);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:full:2011\" type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"PT2S\">",
        format_duration(end_ms as f64 / 1000.0)
    );
    for period in periods {
        let _ = write!(
            out,
            "  <Period id=\"{}\" start=\"{}\"",
            esc(&period.id.clone().unwrap_or_else(|| format!("p{}", period.period))),
            format_duration(period.start_ms as f64 / 1000.0)
        );
        if let Some(d) = period.duration_ms {
            let _ = write!(out, " duration=\"{}\"", format_duration(d as f64 / 1000.0));
        }
        out.push_str(">\n");
        for (ti, t) in tracks.iter().enumerate() {
            let Some(pi) = t.info.periods.iter().position(|p| p.period == period.period) else { continue };
            let timing = &t.info.periods[pi];
            let first: u64 = t.info.periods[..pi].iter().map(PeriodTiming::count).sum();
            let files = t.segments.iter().skip(first as usize).take(timing.count() as usize);
            let info = t.info;
            let _ = write!(out, "    <AdaptationSet id=\"{ti}\" contentType=\"{}\"", esc(&info.content));
            opt_attr(&mut out, "mimeType", info.mime.as_deref());
            opt_attr(&mut out, "lang", info.lang.as_deref());
            out.push_str(" segmentAlignment=\"true\">\n");
            for r in &info.roles {
                let _ = writeln!(out, "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{}\"/>", esc(r));
            }
            let r = timing.rep.as_ref().unwrap_or(&info.rep);
            let _ = write!(out, "      <Representation id=\"{}\" bandwidth=\"{}\"", esc(&r.id), r.bandwidth.max(1));
            opt_attr(&mut out, "codecs", r.codecs.as_deref());
            opt_attr(&mut out, "width", r.width.map(|w| w.to_string()).as_deref());
            opt_attr(&mut out, "height", r.height.map(|h| h.to_string()).as_deref());
            opt_attr(&mut out, "frameRate", r.frame_rate.as_deref());
            opt_attr(&mut out, "sar", r.sar.as_deref());
            opt_attr(&mut out, "audioSamplingRate", r.sampling_rate.as_deref());
            out.push_str(">\n");
            if let Some((scheme, value)) = &info.channels {
                let _ = writeln!(
                    out,
                    "        <AudioChannelConfiguration schemeIdUri=\"{}\" value=\"{}\"/>",
                    esc(scheme),
                    esc(value)
                );
            }
            let files: Vec<&String> = files.collect();
            let init = t.inits.get(pi).cloned().flatten();
            if info.kind() == ContentKind::Text && init.is_none() && files.len() == 1 {
                let _ = writeln!(out, "        <BaseURL>{}</BaseURL>", esc(files[0]));
            } else {
                let _ = writeln!(
                    out,
                    "        <SegmentList timescale=\"{}\" presentationTimeOffset=\"{}\">",
                    timing.timescale, timing.pto
                );
                if let Some(i) = init {
                    let _ = writeln!(out, "          <Initialization sourceURL=\"{}\"/>", esc(&i));
                }
                out.push_str("          <SegmentTimeline>\n");
                for (t, d, r) in &timing.timeline {
                    if *r > 0 {
                        let _ = writeln!(out, "            <S t=\"{t}\" d=\"{d}\" r=\"{r}\"/>");
                    } else {
                        let _ = writeln!(out, "            <S t=\"{t}\" d=\"{d}\"/>");
                    }
                }
                out.push_str("          </SegmentTimeline>\n");
                for f in files {
                    let _ = writeln!(out, "          <SegmentURL media=\"{}\"/>", esc(f));
                }
                out.push_str("        </SegmentList>\n");
            }
            out.push_str("      </Representation>\n    </AdaptationSet>\n");
        }
        out.push_str("  </Period>\n");
    }
    out.push_str("</MPD>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dash::Mpd;

    fn mpd(xml: &str) -> Mpd {
        Mpd::parse(xml, &url::Url::parse("https://h/d/m.mpd").unwrap()).unwrap()
    }

    #[test]
    fn the_local_mpd_keeps_periods_timelines_offsets_and_each_period_s_representation() {
        let source = mpd(r#"<MPD type="static" mediaPresentationDuration="PT10S">
          <Period id="ad" duration="PT4S"><AdaptationSet contentType="video" mimeType="video/mp4">
            <Representation id="ad-480" bandwidth="500" codecs="avc1.4d401e" width="854" height="480">
              <SegmentTemplate timescale="1000" duration="2000" media="ad/$Number$.m4s" initialization="ad/i.mp4"/>
            </Representation></AdaptationSet></Period>
          <Period id="film"><AdaptationSet contentType="video" mimeType="video/mp4">
            <Representation id="f-720" bandwidth="900" codecs="avc1.64001f" width="1280" height="720">
              <SegmentTemplate timescale="90000" presentationTimeOffset="900000" media="f/$Time$.m4s" initialization="f/i.mp4">
                <SegmentTimeline><S t="900000" d="180000" r="2"/></SegmentTimeline></SegmentTemplate>
            </Representation></AdaptationSet></Period></MPD>"#);
        let pieces: Vec<Pieces> = source
            .periods
            .iter()
            .map(|p| crate::dash::segments::resolve(&p.sets[0].reps[0], p.duration).unwrap())
            .collect();
        let per: Vec<_> = source
            .periods
            .iter()
            .zip(&pieces)
            .enumerate()
            .map(|(i, (p, ps))| (i as u32, p, &p.sets[0].reps[0], ps))
            .collect();
        let film = &source.periods[1];
        let info = TrackInfo::new(&film.sets[0], &film.sets[0].reps[0], &per);
        let files: Vec<String> = (0..5).map(|i| format!("video/seg-{i:05}.m4s")).collect();
        let inits = vec![Some("video/init-0.mp4".to_owned()), Some("video/init-1.mp4".to_owned())];
        let text = local_mpd(&[LocalTrack { info: &info, inits, segments: files }]);
        let back = mpd(&text);
        assert_eq!(back.periods.len(), 2, "{text}");
        assert_eq!((back.periods[1].start, back.periods[1].duration), (4.0, Some(6.0)));
        let ad = &back.periods[0].sets[0].reps[0];
        assert_eq!((ad.id.as_str(), ad.height), ("ad-480", Some(480)), "each period names its own representation");
        let f = crate::dash::segments::resolve(&back.periods[1].sets[0].reps[0], back.periods[1].duration).unwrap();
        assert_eq!((f.timescale, f.pto), (90000, 900000));
        let got: Vec<(&str, u64)> = f.segments.iter().map(|s| (s.piece.url.path(), s.t)).collect();
        assert_eq!(
            got,
            [
                ("/d/video/seg-00002.m4s", 900000),
                ("/d/video/seg-00003.m4s", 1080000),
                ("/d/video/seg-00004.m4s", 1260000)
            ]
        );
        assert_eq!(f.init.unwrap().url.path(), "/d/video/init-1.mp4");
    }

    #[test]
    fn the_hls_playlist_has_a_map_per_period_ranges_and_gaps() {
        let url = url::Url::parse("https://h/d/v.mp4").unwrap();
        let p = Pieces {
            timescale: 1000,
            pto: 0,
            init: Some(Piece { url: url.clone(), range: Some((0, 800)) }),
            segments: vec![crate::dash::segments::Segment {
                piece: Piece { url: url.clone(), range: Some((900, 100)) },
                t: 0,
                d: 2500,
            }],
            index: None,
        };
        let text = hls_media_playlist(&[
            Span::Pieces(&p),
            Span::Gap { secs: 3.0, chunk: 4.0, uri: &url },
            Span::Pieces(&p),
            Span::Gap { secs: 10.0, chunk: 4.0, uri: &url },
        ]);
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 3, "{text}");
        // A long gap is cut in segments of the track's length (the last one takes the rest).
        assert!(
            text.contains("#EXTINF:4.000000,\n#EXT-X-GAP\nhttps://h/d/v.mp4\n#EXTINF:6.000000,\n#EXT-X-GAP\n"),
            "{text}"
        );
        assert_eq!(text.matches("#EXT-X-MAP:URI=\"https://h/d/v.mp4\",BYTERANGE=\"800@0\"").count(), 2, "{text}");
        assert!(text.contains("#EXT-X-BYTERANGE:100@900\nhttps://h/d/v.mp4\n"), "{text}");
        assert!(text.contains("#EXTINF:3.000000,\n#EXT-X-GAP\n"), "{text}");
        assert!(text.contains("#EXT-X-TARGETDURATION:4\n") && text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    }
}
