//! A representation's pieces within a period, from its segment addressing.

use url::Url;

use super::mpd::{Addressing, Representation, S, SegInfo, UrlRange};
use super::{MAX_SEGMENTS, MpdError};

/// Something to fetch: a URL and, when it is part of a file, `(offset, length)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Absolute URL.
    pub url: Url,
    /// `(offset, length)`.
    pub range: Option<(u64, u64)>,
}

/// A media segment: its piece and its place in time (in `timescale` units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where it is.
    pub piece: Piece,
    /// Start (media time, before `@presentationTimeOffset` is taken off).
    pub t: u64,
    /// Duration.
    pub d: u64,
}

/// A representation's pieces within one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces {
    /// Units per second of `t` and `d`.
    pub timescale: u64,
    /// `@presentationTimeOffset`: the media time at the period's start.
    pub pto: u64,
    /// The initialization segment, if any.
    pub init: Option<Piece>,
    /// Media segments in order.
    pub segments: Vec<Segment>,
    /// A `sidx` still to be read ([`super::sidx::apply`]) before `segments` is known.
    pub index: Option<Piece>,
}

impl Pieces {
    /// Seconds of media.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.d as f64).sum::<f64>() / self.timescale as f64
    }

    /// Bytes in all, when every piece is a byte range.
    pub fn exact_size(&self) -> Option<u64> {
        let mut total = self.init.as_ref().map_or(Some(0), |i| i.range.map(|r| r.1))?;
        for s in &self.segments {
            total += s.piece.range?.1;
        }
        (self.index.is_none()).then_some(total)
    }
}

fn join(base: &Url, u: &str) -> Result<Url, MpdError> {
    // The URL is not quoted: it may carry a signature.
    let url = base.join(u).map_err(|e| MpdError::Invalid(format!("a segment URL that does not resolve ({e})")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        s => Err(MpdError::Unsupported(format!("a segment URL with scheme {s:?}"))),
    }
}

fn piece(base: &Url, u: &UrlRange) -> Result<Piece, MpdError> {
    let url = match &u.url {
        Some(s) => join(base, s)?,
        None => base.clone(),
    };
    Ok(Piece { url, range: u.range })
}

/// Expands a `SegmentTemplate` `@media`/`@initialization` string.
pub fn expand(template: &str, rep_id: &str, bandwidth: u64, number: u64, time: u64) -> Result<String, MpdError> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find('$').ok_or_else(|| MpdError::Invalid("a SegmentTemplate with an unmatched '$'".into()))?;
        let token = &after[..end];
        rest = &after[end + 1..];
        if token.is_empty() {
            out.push('$');
            continue;
        }
        let (name, format) = match token.find('%') {
            Some(p) => (&token[..p], Some(&token[p..])),
            None => (token, None),
        };
        let value = match name {
            "RepresentationID" => {
                if format.is_some() {
                    return Err(MpdError::Invalid("a SegmentTemplate with a format on $RepresentationID$".into()));
                }
                out.push_str(rep_id);
                continue;
            }
            "Number" => number,
            "Bandwidth" => bandwidth,
            "Time" => time,
            other => {
                return Err(MpdError::Unsupported(format!("SegmentTemplate identifier ${other}$")));
            }
        };
        match format {
            None => out.push_str(&value.to_string()),
            Some(f) => {
                // `%0[width]d` (ISO/IEC 23009-1 5.3.9.4.4); `%d` too.
                let width = f
                    .strip_prefix('%')
                    .and_then(|f| f.strip_suffix('d'))
                    .and_then(|w| {
                        if w.is_empty() { Some(0) } else { w.strip_prefix('0').unwrap_or(w).parse::<usize>().ok() }
                    })
                    .filter(|w| *w <= 32)
                    .ok_or_else(|| MpdError::Invalid(format!("a SegmentTemplate identifier format {f:?}")))?;
                out.push_str(&format!("{value:0width$}"));
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `(t, d)` of each segment of a timeline; `end` (media time) bounds an `@r` of -1 at the end.
fn timeline(ss: &[S], start: u64, end: Option<u64>) -> Result<Vec<(u64, u64)>, MpdError> {
    let mut out = Vec::new();
    let mut t = start;
    for (i, s) in ss.iter().enumerate() {
        if let Some(st) = s.t {
            t = st;
        }
        let count = if s.r >= 0 {
            s.r as u64 + 1
        } else {
            let until = match ss.get(i + 1).and_then(|n| n.t) {
                Some(nt) => nt,
                None if i + 1 < ss.len() => {
                    return Err(MpdError::Invalid("S@r=-1 followed by an S without @t".into()));
                }
                None => {
                    end.ok_or_else(|| MpdError::Unsupported("S@r=-1 at the end of a period of unknown length".into()))?
                }
            };
            until.saturating_sub(t).div_ceil(s.d)
        };
        if out.len() as u64 + count > MAX_SEGMENTS as u64 {
            return Err(MpdError::Unsupported(format!("more than {MAX_SEGMENTS} segments in a period")));
        }
        for _ in 0..count {
            out.push((t, s.d));
            t = t.checked_add(s.d).ok_or_else(|| MpdError::Invalid("SegmentTimeline overflows".into()))?;
        }
    }
    Ok(out)
}

/// `(t, d)` of `count` segments of `d` from `pto` (the last cut at `end`, when known).
fn regular(pto: u64, d: u64, count: u64, end: Option<u64>) -> Vec<(u64, u64)> {
    (0..count)
        .map(|i| {
            let t = pto.saturating_add(i.saturating_mul(d));
            let d = end.map_or(d, |e| e.saturating_sub(t).clamp(1, d));
            (t, d)
        })
        .collect()
}

/// Whether a segment at media time `t` lasting `d` plays in the period `[pto, end)`: a timeline
/// may list segments before the period's start or past its end.
fn in_period(t: u64, d: u64, pto: u64, end: Option<u64>) -> bool {
    t.saturating_add(d) > pto && end.is_none_or(|e| t < e)
}

/// How many segments of `d` fill a period of `secs` seconds.
fn count_for(secs: Option<f64>, timescale: u64, d: u64, info: &SegInfo) -> Result<u64, MpdError> {
    let by_end = info.end_number.map(|e| e.saturating_add(1).saturating_sub(info.start_number.unwrap_or(1)));
    let by_time = secs.map(|s| {
        let units = s * timescale as f64;
        // Less than a millisecond over a whole segment is rounding, not another segment.
        ((units - timescale as f64 / 1000.0).max(0.0) / d as f64).ceil() as u64
    });
    let count = match (by_end, by_time) {
        (Some(e), Some(t)) => e.min(t.max(1)),
        (Some(e), None) => e,
        (None, Some(t)) => t.max(1),
        (None, None) => {
            return Err(MpdError::Unsupported("segments of @duration in a period of unknown length".into()));
        }
    };
    if count > MAX_SEGMENTS as u64 {
        return Err(MpdError::Unsupported(format!("{count} segments in a period")));
    }
    Ok(count)
}

/// The pieces of `rep` in a period of `period_secs` seconds. Every URL can be written into a
/// playlist (a quote in a host, which URL parsing lets through, cannot).
pub fn resolve(rep: &Representation, period_secs: Option<f64>) -> Result<Pieces, MpdError> {
    let pieces = resolve_unchecked(rep, period_secs)?;
    let all = pieces.init.iter().chain(pieces.index.iter()).chain(pieces.segments.iter().map(|s| &s.piece));
    for p in all {
        if p.url.as_str().contains(|c: char| c == '"' || c.is_whitespace()) {
            return Err(MpdError::Invalid(format!("representation {}: a URL with a quote or a space", rep.id)));
        }
    }
    Ok(pieces)
}

fn resolve_unchecked(rep: &Representation, period_secs: Option<f64>) -> Result<Pieces, MpdError> {
    let base = &rep.base;
    match &rep.addressing {
        Addressing::Template(info) => {
            let timescale = info.timescale.unwrap_or(1);
            let pto = info.pto.unwrap_or(0);
            let start_number = info.start_number.unwrap_or(1);
            let end = period_secs.map(|s| pto.saturating_add((s * timescale as f64).round() as u64));
            let media = info.media.as_deref().ok_or_else(|| {
                MpdError::Invalid(format!("representation {}: SegmentTemplate without @media", rep.id))
            })?;
            // `(number, $Time$, media time, duration)`: a timeline's times are media times (its
            // first `S` without `@t` starts at 0); with `@duration`, `$Time$` is
            // `(number - startNumber) × @duration` and the media time adds the offset.
            let times: Vec<(u64, u64, u64, u64)> = match (&info.timeline, info.duration) {
                (Some(ss), _) => timeline(ss, 0, end)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, (t, d))| (start_number.saturating_add(i as u64), t, t, d))
                    .collect(),
                (None, Some(d)) => regular(pto, d, count_for(period_secs, timescale, d, info)?, end)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (t, dd))| (start_number.saturating_add(i as u64), (i as u64).saturating_mul(d), t, dd))
                    .collect(),
                (None, None) => {
                    return Err(MpdError::Unsupported(format!(
                        "representation {}: SegmentTemplate with neither SegmentTimeline nor @duration",
                        rep.id
                    )));
                }
            };
            let init = match info.initialization.as_deref() {
                Some(t) => {
                    Some(Piece { url: join(base, &expand(t, &rep.id, rep.bandwidth, start_number, 0)?)?, range: None })
                }
                None => info.init.as_ref().map(|i| piece(base, i)).transpose()?,
            };
            let mut segments = Vec::with_capacity(times.len());
            for (number, time, t, d) in times.into_iter().filter(|(_, _, t, d)| in_period(*t, *d, pto, end)) {
                let u = expand(media, &rep.id, rep.bandwidth, number, time)?;
                segments.push(Segment { piece: Piece { url: join(base, &u)?, range: None }, t, d });
            }
            Ok(Pieces { timescale, pto, init, segments, index: None })
        }
        Addressing::List(info) => {
            let timescale = info.timescale.unwrap_or(1);
            let pto = info.pto.unwrap_or(0);
            let end = period_secs.map(|s| pto.saturating_add((s * timescale as f64).round() as u64));
            let urls = info.urls.as_deref().unwrap_or_default();
            if urls.is_empty() {
                return Err(MpdError::Invalid(format!("representation {}: SegmentList without SegmentURL", rep.id)));
            }
            if urls.len() > MAX_SEGMENTS {
                return Err(MpdError::Unsupported(format!("more than {MAX_SEGMENTS} segments in a period")));
            }
            let times = match (&info.timeline, info.duration) {
                (Some(ss), _) => timeline(ss, 0, end)?,
                (None, Some(d)) => regular(pto, d, urls.len() as u64, end),
                (None, None) if urls.len() == 1 => {
                    let d = period_secs.map_or(1, |s| ((s * timescale as f64).round() as u64).max(1));
                    vec![(pto, d)]
                }
                (None, None) => {
                    return Err(MpdError::Invalid(format!(
                        "representation {}: SegmentList of several segments with neither @duration nor SegmentTimeline",
                        rep.id
                    )));
                }
            };
            let mut segments = Vec::with_capacity(urls.len());
            // The list says which segments there are: all of them are kept (a packager may list
            // one that starts where the period ends, holding its last milliseconds).
            for (u, (t, d)) in urls.iter().zip(times) {
                segments.push(Segment { piece: piece(base, u)?, t, d });
            }
            let init = info.init.as_ref().map(|i| piece(base, i)).transpose()?;
            Ok(Pieces { timescale, pto, init, segments, index: None })
        }
        Addressing::Base(info) if info.index_range.is_some() => {
            let index = info.index_range.map(|r| Piece { url: base.clone(), range: Some(r) });
            let init = match &info.init {
                Some(i) => Some(piece(base, i)?),
                // What comes before the index is the initialization (ftyp, moov).
                None => {
                    info.index_range.filter(|r| r.0 > 0).map(|r| Piece { url: base.clone(), range: Some((0, r.0)) })
                }
            };
            Ok(Pieces {
                timescale: info.timescale.unwrap_or(1),
                pto: info.pto.unwrap_or(0),
                init,
                segments: Vec::new(),
                index,
            })
        }
        Addressing::Base(_) | Addressing::Whole => {
            // One file, one piece.
            let timescale = 1000;
            let d = period_secs.map_or(1, |s| ((s * 1000.0).round() as u64).max(1));
            Ok(Pieces {
                timescale,
                pto: 0,
                init: None,
                segments: vec![Segment { piece: Piece { url: base.clone(), range: None }, t: 0, d }],
                index: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let e = |t: &str| expand(t, "v1", 500_000, 7, 90_000);
        assert_eq!(e("$RepresentationID$/$Number%05d$.m4s").unwrap(), "v1/00007.m4s");
        assert_eq!(e("seg-$Time$-$Bandwidth$.mp4").unwrap(), "seg-90000-500000.mp4");
        assert_eq!(e("a$$b$Number$").unwrap(), "a$b7");
        assert_eq!(e("$Number%3d$").unwrap(), "007");
        assert!(matches!(e("$Number"), Err(MpdError::Invalid(_))));
        assert!(matches!(e("$SubNumber$"), Err(MpdError::Unsupported(_))));
        assert!(matches!(e("$Number%x$"), Err(MpdError::Invalid(_))));
    }

    #[test]
    fn timelines() {
        let s = |t: Option<u64>, d: u64, r: i64| S { t, d, r };
        assert_eq!(
            timeline(&[s(Some(10), 5, 2), s(None, 3, 0)], 0, None).unwrap(),
            vec![(10, 5), (15, 5), (20, 5), (25, 3)]
        );
        // -1 until the next S's @t, then until the period's end.
        assert_eq!(
            timeline(&[s(Some(0), 4, -1), s(Some(10), 5, -1)], 0, Some(21)).unwrap(),
            vec![(0, 4), (4, 4), (8, 4), (10, 5), (15, 5), (20, 5)]
        );
        assert!(timeline(&[s(Some(0), 4, -1)], 0, None).is_err());
        assert_eq!(regular(100, 10, 3, Some(125)), vec![(100, 10), (110, 10), (120, 5)]);
    }

    fn rep(addressing: Addressing) -> Representation {
        Representation {
            id: "v".into(),
            bandwidth: 1000,
            mime: None,
            codecs: None,
            width: None,
            height: None,
            frame_rate: None,
            sar: None,
            sampling_rate: None,
            channels: None,
            transfer: None,
            base: Url::parse("https://h/d/").unwrap(),
            addressing,
        }
    }

    #[test]
    fn a_period_cut_from_a_longer_timeline_keeps_its_segments_and_their_numbers() {
        // The timeline starts at media time 0; the period plays [90, 90 + 4 s × 10) of it.
        let info = SegInfo {
            timescale: Some(10),
            pto: Some(90),
            media: Some("$Number$-$Time$.m4s".into()),
            timeline: Some(vec![S { t: None, d: 20, r: 9 }]),
            ..SegInfo::default()
        };
        let p = resolve(&rep(Addressing::Template(info)), Some(4.0)).unwrap();
        let got: Vec<(&str, u64)> = p.segments.iter().map(|s| (s.piece.url.path(), s.t)).collect();
        assert_eq!(got, [("/d/5-80.m4s", 80), ("/d/6-100.m4s", 100), ("/d/7-120.m4s", 120)]);
        assert_eq!(p.pto, 90);
    }

    #[test]
    fn duration_templates_count_from_the_period_and_end_number() {
        let info = SegInfo {
            timescale: Some(1000),
            pto: Some(5000),
            duration: Some(2000),
            start_number: Some(10),
            media: Some("$Number%03d$_$Time$.m4s".into()),
            ..SegInfo::default()
        };
        let p = resolve(&rep(Addressing::Template(info.clone())), Some(5.0)).unwrap();
        let got: Vec<(&str, u64, u64)> = p.segments.iter().map(|s| (s.piece.url.path(), s.t, s.d)).collect();
        // `$Time$` is (number − startNumber) × @duration; the media time adds the offset; the
        // last segment ends with the period.
        assert_eq!(
            got,
            [("/d/010_0.m4s", 5000, 2000), ("/d/011_2000.m4s", 7000, 2000), ("/d/012_4000.m4s", 9000, 1000)]
        );
        let capped = SegInfo { end_number: Some(11), ..info.clone() };
        assert_eq!(resolve(&rep(Addressing::Template(capped)), Some(5.0)).unwrap().segments.len(), 2);
        let huge = SegInfo { end_number: Some(u64::MAX), pto: Some(u64::MAX - 1), ..info };
        assert!(resolve(&rep(Addressing::Template(huge)), None).is_err(), "no overflow, and no 2^64 segments");
    }
}
