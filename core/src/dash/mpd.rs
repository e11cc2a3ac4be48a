//! Reading an MPD into what a downloader needs: periods, adaptation sets, representations with
//! their attributes and segment information merged down the hierarchy (MPD → Period →
//! AdaptationSet → Representation), and every `BaseURL` resolved to an absolute URL.

use roxmltree::{Document, Node, ParsingOptions};
use url::Url;

use super::time::parse_duration;
use super::{MAX_SEGMENTS, MpdError};

/// A static MPD.
#[derive(Debug, Clone, PartialEq)]
pub struct Mpd {
    /// `@mediaPresentationDuration`, seconds.
    pub duration: Option<f64>,
    /// Periods in order.
    pub periods: Vec<Period>,
}

/// A period, with its start and duration worked out from its neighbours where it does not say.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// `@id`.
    pub id: Option<String>,
    /// Start, seconds from the start of the presentation.
    pub start: f64,
    /// Seconds, when known (`@duration`, the next period's start, or the presentation's end).
    pub duration: Option<f64>,
    /// Adaptation sets in order.
    pub sets: Vec<AdaptationSet>,
}

/// What an adaptation set carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// Video (possibly with audio muxed in).
    Video,
    /// Audio.
    Audio,
    /// Subtitles or captions as files or segments.
    Text,
    /// Thumbnail tiles.
    Image,
    /// Anything else.
    Other,
}

impl ContentKind {
    /// Its name: `video`, `audio`, `text`, `image`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Video => "video",
            ContentKind::Audio => "audio",
            ContentKind::Text => "text",
            ContentKind::Image => "image",
            ContentKind::Other => "other",
        }
    }
}

/// An adaptation set.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptationSet {
    /// `@id`.
    pub id: Option<String>,
    /// From `@contentType`, else `@mimeType`, else the representations' MIME types and codecs.
    pub kind: ContentKind,
    /// `@lang`.
    pub lang: Option<String>,
    /// `Role@value`s (`main`, `alternate`, `subtitle`, `caption`, `commentary`, …).
    pub roles: Vec<String>,
    /// `Label` or `@label`.
    pub label: Option<String>,
    /// Representations in order.
    pub reps: Vec<Representation>,
}

/// `AudioChannelConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    /// `@schemeIdUri`.
    pub scheme: String,
    /// `@value`.
    pub value: String,
}

impl Channels {
    /// The channel count, for the schemes that say it plainly.
    pub fn count(&self) -> Option<u32> {
        if self.scheme.ends_with(":23003:3:audio_channel_configuration:2011")
            || self.scheme.ends_with("outputChannelPositionList")
        {
            return self.value.parse().ok().or_else(|| Some(self.value.split_whitespace().count() as u32));
        }
        if self.scheme == "urn:mpeg:mpegB:cicp:ChannelConfiguration" {
            return match self.value.as_str() {
                "1" => Some(1),
                "2" => Some(2),
                "3" => Some(3),
                "4" => Some(4),
                "5" => Some(5),
                "6" => Some(6),
                "7" | "12" => Some(8),
                _ => None,
            };
        }
        None
    }
}

/// A representation with what it inherits merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Representation {
    /// `@id`.
    pub id: String,
    /// `@bandwidth`, bits per second.
    pub bandwidth: u64,
    /// `@mimeType`.
    pub mime: Option<String>,
    /// `@codecs`.
    pub codecs: Option<String>,
    /// `@width`.
    pub width: Option<u64>,
    /// `@height`.
    pub height: Option<u64>,
    /// `@frameRate` as written (`25`, `30000/1001`).
    pub frame_rate: Option<String>,
    /// `@sar`.
    pub sar: Option<String>,
    /// `@audioSamplingRate`.
    pub sampling_rate: Option<String>,
    /// `AudioChannelConfiguration`.
    pub channels: Option<Channels>,
    /// The transfer characteristics an `EssentialProperty` or `SupplementalProperty` of scheme
    /// `urn:mpeg:mpegB:cicp:TransferCharacteristics` gives (ITU-T H.273: 16 is PQ, 18 is HLG).
    pub transfer: Option<u32>,
    /// The resolved base URL of its media.
    pub base: Url,
    /// How its pieces are addressed.
    pub addressing: Addressing,
}

impl Representation {
    /// `@frameRate` as a number.
    pub fn frame_rate_value(&self) -> Option<f64> {
        let f = self.frame_rate.as_deref()?;
        let v = match f.split_once('/') {
            Some((n, d)) => n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?,
            None => f.trim().parse().ok()?,
        };
        (v.is_finite() && v > 0.0).then_some(v)
    }
}

/// A URL (relative to the base) with a byte range, as `Initialization`, `RepresentationIndex`
/// and `SegmentURL` give them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlRange {
    /// `@sourceURL` / `@media`; `None` is the base URL itself.
    pub url: Option<String>,
    /// `(offset, length)` from `@range` / `@mediaRange` (`first-last`).
    pub range: Option<(u64, u64)>,
}

/// One `S` of a `SegmentTimeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S {
    /// `@t`.
    pub t: Option<u64>,
    /// `@d`.
    pub d: u64,
    /// `@r` (`-1`: until the next `S` or the period's end).
    pub r: i64,
}

/// Segment information (`SegmentBase`, `SegmentList` or `SegmentTemplate`), with what is not
/// said at one level taken from the level above.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegInfo {
    /// `@timescale`.
    pub timescale: Option<u64>,
    /// `@presentationTimeOffset`.
    pub pto: Option<u64>,
    /// `@startNumber`.
    pub start_number: Option<u64>,
    /// `@endNumber`.
    pub end_number: Option<u64>,
    /// `@duration`.
    pub duration: Option<u64>,
    /// `@media` (template).
    pub media: Option<String>,
    /// `@initialization` (template).
    pub initialization: Option<String>,
    /// `@indexRange`.
    pub index_range: Option<(u64, u64)>,
    /// `Initialization`.
    pub init: Option<UrlRange>,
    /// `SegmentTimeline`.
    pub timeline: Option<Vec<S>>,
    /// `SegmentURL`s (list).
    pub urls: Option<Vec<UrlRange>>,
}

impl SegInfo {
    fn over(self, parent: &SegInfo) -> SegInfo {
        SegInfo {
            timescale: self.timescale.or(parent.timescale),
            pto: self.pto.or(parent.pto),
            start_number: self.start_number.or(parent.start_number),
            end_number: self.end_number.or(parent.end_number),
            duration: self.duration.or(parent.duration),
            media: self.media.or_else(|| parent.media.clone()),
            initialization: self.initialization.or_else(|| parent.initialization.clone()),
            index_range: self.index_range.or(parent.index_range),
            init: self.init.or_else(|| parent.init.clone()),
            timeline: self.timeline.or_else(|| parent.timeline.clone()),
            urls: self.urls.or_else(|| parent.urls.clone()),
        }
    }
}

/// How a representation's pieces are addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// `SegmentTemplate`.
    Template(SegInfo),
    /// `SegmentList`.
    List(SegInfo),
    /// `SegmentBase` (one file; its `sidx` at `@indexRange` splits it).
    Base(SegInfo),
    /// Nothing: the base URL is the whole representation, one piece (a WebVTT file, say).
    Whole,
}

fn invalid(m: impl Into<String>) -> MpdError {
    MpdError::Invalid(m.into())
}

fn children<'a, 'i>(n: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    children(n, name).next()
}

fn attr(n: Node<'_, '_>, name: &str) -> Option<String> {
    n.attribute(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn num(n: Node<'_, '_>, name: &str) -> Result<Option<u64>, MpdError> {
    match n.attribute(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| invalid(format!("{}@{name}={v:?} is not a non-negative integer", n.tag_name().name()))),
    }
}

fn duration_attr(n: Node<'_, '_>, name: &str) -> Result<Option<f64>, MpdError> {
    match n.attribute(name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse_duration(v)
            .map(Some)
            .ok_or_else(|| invalid(format!("{}@{name}={v:?} is not a duration", n.tag_name().name()))),
    }
}

/// `first-last` → `(offset, length)`.
fn byte_range(n: Node<'_, '_>, name: &str) -> Result<Option<(u64, u64)>, MpdError> {
    let Some(v) = attr(n, name) else { return Ok(None) };
    let bad = || invalid(format!("{}@{name}={v:?} is not a byte range", n.tag_name().name()));
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(Some((first, last - first + 1)))
}

fn url_range(n: Node<'_, '_>, url_attr: &str, range_attr: &str) -> Result<UrlRange, MpdError> {
    Ok(UrlRange { url: attr(n, url_attr), range: byte_range(n, range_attr)? })
}

fn seg_info(n: Node<'_, '_>) -> Result<SegInfo, MpdError> {
    let init = match child(n, "Initialization").or_else(|| child(n, "Initialisation")) {
        Some(i) => Some(url_range(i, "sourceURL", "range")?),
        None => None,
    };
    let timeline = match child(n, "SegmentTimeline") {
        Some(tl) => {
            let mut ss = Vec::new();
            for s in children(tl, "S") {
                let d = num(s, "d")?.ok_or_else(|| invalid("SegmentTimeline S without @d"))?;
                if d == 0 {
                    return Err(invalid("SegmentTimeline S@d=0"));
                }
                let r = match s.attribute("r").map(str::trim) {
                    None | Some("") => 0,
                    Some(v) => v.parse::<i64>().map_err(|_| invalid(format!("S@r={v:?} is not an integer")))?,
                };
                if r < -1 || r > MAX_SEGMENTS as i64 {
                    return Err(MpdError::Unsupported(format!("SegmentTimeline S@r={r}")));
                }
                ss.push(S { t: num(s, "t")?, d, r });
            }
            Some(ss)
        }
        None => None,
    };
    let urls = if n.tag_name().name() == "SegmentList" {
        let mut urls = Vec::new();
        for u in children(n, "SegmentURL") {
            urls.push(url_range(u, "media", "mediaRange")?);
        }
        Some(urls)
    } else {
        None
    };
    let timescale = num(n, "timescale")?;
    if timescale == Some(0) {
        return Err(invalid("@timescale=0"));
    }
    Ok(SegInfo {
        timescale,
        pto: num(n, "presentationTimeOffset")?,
        start_number: num(n, "startNumber")?,
        end_number: num(n, "endNumber")?,
        duration: num(n, "duration")?.filter(|d| *d > 0),
        media: attr(n, "media"),
        initialization: attr(n, "initialization"),
        index_range: byte_range(n, "indexRange")?,
        init,
        timeline,
        urls,
    })
}

/// What a level passes down to the next.
#[derive(Clone, Default)]
struct Inherited {
    template: Option<SegInfo>,
    list: Option<SegInfo>,
    base: Option<SegInfo>,
    mime: Option<String>,
    codecs: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
    frame_rate: Option<String>,
    sar: Option<String>,
    sampling_rate: Option<String>,
    channels: Option<Channels>,
    transfer: Option<u32>,
}

/// The transfer characteristics `n` declares (see [`Representation::transfer`]).
fn transfer_characteristics(n: Node<'_, '_>) -> Option<u32> {
    n.children()
        .filter(|c| c.is_element() && matches!(c.tag_name().name(), "EssentialProperty" | "SupplementalProperty"))
        .find(|c| attr(*c, "schemeIdUri").is_some_and(|s| s == "urn:mpeg:mpegB:cicp:TransferCharacteristics"))
        .and_then(|c| attr(c, "value")?.trim().parse().ok())
}

impl Inherited {
    fn at(&self, n: Node<'_, '_>) -> Result<Inherited, MpdError> {
        let merge = |own: Option<Node<'_, '_>>, parent: &Option<SegInfo>| -> Result<Option<SegInfo>, MpdError> {
            Ok(match (own, parent) {
                (Some(o), Some(p)) => Some(seg_info(o)?.over(p)),
                (Some(o), None) => Some(seg_info(o)?),
                (None, p) => p.clone(),
            })
        };
        Ok(Inherited {
            template: merge(child(n, "SegmentTemplate"), &self.template)?,
            list: merge(child(n, "SegmentList"), &self.list)?,
            base: merge(child(n, "SegmentBase"), &self.base)?,
            mime: attr(n, "mimeType").or_else(|| self.mime.clone()),
            codecs: attr(n, "codecs").or_else(|| self.codecs.clone()),
            width: num(n, "width")?.or(self.width),
            height: num(n, "height")?.or(self.height),
            frame_rate: attr(n, "frameRate").or_else(|| self.frame_rate.clone()),
            sar: attr(n, "sar").or_else(|| self.sar.clone()),
            sampling_rate: attr(n, "audioSamplingRate").or_else(|| self.sampling_rate.clone()),
            channels: child(n, "AudioChannelConfiguration")
                .map(|c| Channels {
                    scheme: attr(c, "schemeIdUri").unwrap_or_default(),
                    value: attr(c, "value").unwrap_or_default(),
                })
                .or_else(|| self.channels.clone()),
            transfer: transfer_characteristics(n).or(self.transfer),
        })
    }
}

/// The first `BaseURL` of `n` resolved against `base` (a `BaseURL` may be repeated as
/// alternatives; the first is used).
fn base_at(n: Node<'_, '_>, base: &Url) -> Result<Url, MpdError> {
    match child(n, "BaseURL").and_then(|b| b.text()).map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(base.clone()),
        Some(t) => {
            // The URL is not quoted: it may carry a signature.
            let u = base.join(t).map_err(|e| invalid(format!("a BaseURL that does not resolve ({e})")))?;
            match u.scheme() {
                "http" | "https" => Ok(u),
                s => Err(MpdError::Unsupported(format!("a BaseURL with scheme {s:?}"))),
            }
        }
    }
}

/// The names of known DRM systems, by `ContentProtection@schemeIdUri`.
fn drm_name(scheme: &str, value: Option<&str>) -> String {
    let s = scheme.to_ascii_lowercase();
    let by_uuid = [
        ("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed", "Widevine"),
        ("9a04f079-9840-4286-ab92-e65be0885f95", "PlayReady"),
        ("94ce86fb-07ff-4f43-adb8-93d2fa968ca2", "FairPlay"),
        ("e2719d58-a985-b3c9-781a-b030af78d30e", "ClearKey"),
        ("1077efec-c0b2-4d02-ace3-3c1e52e2fb4b", "ClearKey (W3C common)"),
        ("3d5e6d35-9b9a-41e8-b843-dd3c6e72c42c", "ChinaDRM"),
        ("f239e769-efa3-4850-9c16-a903c6932efb", "Adobe Primetime"),
        ("5e629af5-38da-4063-8977-97ffbd9902d4", "Marlin"),
    ];
    if s == "urn:mpeg:dash:mp4protection:2011" {
        return value.unwrap_or("cenc").to_owned();
    }
    by_uuid.iter().find(|(u, _)| s.ends_with(u)).map_or_else(|| scheme.to_owned(), |(_, n)| (*n).to_owned())
}

fn content_kind(set: Node<'_, '_>, inh: &Inherited, reps: &[Representation]) -> ContentKind {
    let from = |t: &str| match t.split('/').next().unwrap_or("") {
        "video" => Some(ContentKind::Video),
        "audio" => Some(ContentKind::Audio),
        "text" => Some(ContentKind::Text),
        "image" => Some(ContentKind::Image),
        _ => None,
    };
    if let Some(k) = attr(set, "contentType").as_deref().and_then(from) {
        return k;
    }
    let codecs_kind = |c: &str| {
        let c = c.to_ascii_lowercase();
        if ["avc", "hvc", "hev", "av01", "vp09", "vp8", "vp9", "dvh", "dva"].iter().any(|p| c.starts_with(p)) {
            Some(ContentKind::Video)
        } else if ["mp4a", "ac-3", "ec-3", "ac-4", "opus", "flac", "vorbis", "dtsc", "mha"]
            .iter()
            .any(|p| c.starts_with(p))
        {
            Some(ContentKind::Audio)
        } else if ["wvtt", "stpp", "tx3g"].iter().any(|p| c.starts_with(p)) {
            Some(ContentKind::Text)
        } else {
            None
        }
    };
    let mime_kind = |m: &str| match m {
        "application/ttml+xml" | "application/x-subrip" => Some(ContentKind::Text),
        m => from(m),
    };
    for r in reps {
        // `application/mp4` carries text (stpp, wvtt) or anything; the codecs say which.
        if let Some(k) = r.codecs.as_deref().and_then(|c| c.split(',').next()).and_then(codecs_kind) {
            return k;
        }
        if let Some(k) = r.mime.as_deref().and_then(mime_kind) {
            return k;
        }
    }
    inh.mime.as_deref().and_then(mime_kind).unwrap_or(ContentKind::Other)
}

impl Mpd {
    /// Reads a static MPD fetched from `url` (after redirects). A live (`dynamic`) MPD and one
    /// with `ContentProtection` are refused, naming why; so is anything that is not an MPD.
    pub fn parse(text: &str, url: &Url) -> Result<Mpd, MpdError> {
        let opts = ParsingOptions { allow_dtd: false, nodes_limit: 4_000_000, ..ParsingOptions::default() };
        let doc = Document::parse_with_options(text, opts).map_err(|e| invalid(format!("not XML: {e}")))?;
        let root = doc.root_element();
        if root.tag_name().name() != "MPD" {
            return Err(invalid(format!("the root element is <{}>, not <MPD>", root.tag_name().name())));
        }
        if attr(root, "type").as_deref() == Some("dynamic") {
            return Err(MpdError::Dynamic);
        }
        let mut drm: Vec<String> = Vec::new();
        for cp in doc.descendants().filter(|n| n.is_element() && n.tag_name().name() == "ContentProtection") {
            let name = drm_name(&attr(cp, "schemeIdUri").unwrap_or_default(), cp.attribute("value"));
            if !drm.contains(&name) {
                drm.push(name);
            }
        }
        if !drm.is_empty() {
            return Err(MpdError::Drm(drm.join(", ")));
        }
        let duration = duration_attr(root, "mediaPresentationDuration")?;
        let mpd_base = base_at(root, url)?;
        let mut periods = Vec::new();
        let period_nodes: Vec<Node<'_, '_>> = children(root, "Period").collect();
        if period_nodes.is_empty() {
            return Err(invalid("no Period"));
        }
        let mut next_start = 0.0;
        for p in &period_nodes {
            if p.attribute("xlink:href").is_some() || p.attributes().any(|a| a.name() == "href") {
                return Err(MpdError::Unsupported("a remote Period (xlink)".into()));
            }
            let start = duration_attr(*p, "start")?.unwrap_or(next_start);
            let own = duration_attr(*p, "duration")?;
            let base = base_at(*p, &mpd_base)?;
            let inh = Inherited::default().at(*p)?;
            let mut sets = Vec::new();
            for a in children(*p, "AdaptationSet") {
                if a.attributes().any(|x| x.name() == "href") {
                    return Err(MpdError::Unsupported("a remote AdaptationSet (xlink)".into()));
                }
                let a_base = base_at(a, &base)?;
                let a_inh = inh.at(a)?;
                let mut reps = Vec::new();
                for r in children(a, "Representation") {
                    let r_inh = a_inh.at(r)?;
                    let id = attr(r, "id").ok_or_else(|| invalid("a Representation without @id"))?;
                    let addressing = if let Some(t) = r_inh.template.clone() {
                        Addressing::Template(t)
                    } else if let Some(l) = r_inh.list.clone() {
                        Addressing::List(l)
                    } else if let Some(b) = r_inh.base.clone() {
                        Addressing::Base(b)
                    } else {
                        Addressing::Whole
                    };
                    reps.push(Representation {
                        id,
                        bandwidth: num(r, "bandwidth")?.unwrap_or(0),
                        mime: r_inh.mime,
                        codecs: r_inh.codecs,
                        width: r_inh.width,
                        height: r_inh.height,
                        frame_rate: r_inh.frame_rate,
                        sar: r_inh.sar,
                        sampling_rate: r_inh.sampling_rate,
                        channels: r_inh.channels,
                        transfer: r_inh.transfer,
                        base: base_at(r, &a_base)?,
                        addressing,
                    });
                }
                let roles = children(a, "Role").filter_map(|r| attr(r, "value")).collect();
                let label =
                    child(a, "Label").and_then(|l| l.text()).map(|t| t.trim().to_owned()).or_else(|| attr(a, "label"));
                sets.push(AdaptationSet {
                    id: attr(a, "id"),
                    kind: content_kind(a, &a_inh, &reps),
                    lang: attr(a, "lang"),
                    roles,
                    label,
                    reps,
                });
            }
            periods.push(Period { id: attr(*p, "id"), start, duration: own, sets });
            next_start = start + own.unwrap_or(0.0);
        }
        // A period without a duration lasts until the next one starts, the last until the end
        // of the presentation.
        for i in 0..periods.len() {
            if periods[i].duration.is_none() {
                let end = match periods.get(i + 1) {
                    Some(n) => Some(n.start),
                    None => duration,
                };
                periods[i].duration = end.map(|e| e - periods[i].start).filter(|d| *d > 0.0);
            }
        }
        Ok(Mpd { duration, periods })
    }

    /// The presentation's length in seconds.
    pub fn total_duration(&self) -> Option<f64> {
        self.duration.or_else(|| {
            let last = self.periods.last()?;
            Some(last.start + last.duration?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Mpd, MpdError> {
        Mpd::parse(xml, &Url::parse("https://cdn.example.com/a/b/manifest.mpd?sig=1").unwrap())
    }

    #[test]
    fn attributes_and_segment_information_are_inherited_and_base_urls_nest() {
        let mpd = parse(
            r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT20S">
  <BaseURL>../media/</BaseURL>
  <Period id="p0" duration="PT8S">
    <BaseURL>p0/</BaseURL>
    <SegmentTemplate timescale="1000" media="$RepresentationID$/$Number$.m4s" initialization="$RepresentationID$/init.mp4" startNumber="0"/>
    <AdaptationSet mimeType="video/mp4" codecs="avc1.64001f" frameRate="30000/1001">
      <BaseURL>video/</BaseURL>
      <SegmentTemplate duration="2000"/>
      <Representation id="v1" bandwidth="800000" width="640" height="360"/>
      <Representation id="v2" bandwidth="1600000" width="1280" height="720"><BaseURL>https://other.example.com/x/</BaseURL></Representation>
    </AdaptationSet>
  </Period>
  <Period id="p1">
    <AdaptationSet contentType="audio" lang="fr"><Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
      <Representation id="a" bandwidth="96000" mimeType="audio/mp4"><BaseURL>a.mp4</BaseURL>
        <SegmentBase indexRange="800-899"/></Representation>
    </AdaptationSet>
  </Period>
</MPD>"#,
        )
        .unwrap();
        assert_eq!(mpd.periods.len(), 2);
        assert_eq!((mpd.periods[1].start, mpd.periods[1].duration), (8.0, Some(12.0)));
        let set = &mpd.periods[0].sets[0];
        assert_eq!(set.kind, ContentKind::Video);
        let v1 = &set.reps[0];
        assert_eq!(v1.base.as_str(), "https://cdn.example.com/a/media/p0/video/");
        assert_eq!(
            (v1.codecs.as_deref(), v1.frame_rate_value().map(|f| (f * 1000.0).round())),
            (Some("avc1.64001f"), Some(29970.0))
        );
        let Addressing::Template(t) = &v1.addressing else { panic!("{:?}", v1.addressing) };
        assert_eq!((t.timescale, t.duration, t.start_number), (Some(1000), Some(2000), Some(0)));
        let pieces = crate::dash::segments::resolve(v1, Some(8.0)).unwrap();
        assert_eq!(pieces.segments.len(), 4);
        assert_eq!(pieces.segments[3].piece.url.as_str(), "https://cdn.example.com/a/media/p0/video/v1/3.m4s");
        assert_eq!(pieces.init.unwrap().url.as_str(), "https://cdn.example.com/a/media/p0/video/v1/init.mp4");
        assert_eq!(set.reps[1].base.as_str(), "https://other.example.com/x/");
        let audio = &mpd.periods[1].sets[0];
        assert_eq!(
            (audio.kind, audio.lang.as_deref(), audio.roles.clone()),
            (ContentKind::Audio, Some("fr"), vec!["main".to_owned()])
        );
        let a = crate::dash::segments::resolve(&audio.reps[0], Some(12.0)).unwrap();
        assert_eq!(a.index.unwrap().range, Some((800, 100)));
        assert_eq!(a.init.unwrap().range, Some((0, 800)));
    }

    #[test]
    fn live_drm_and_bad_documents_are_refused_saying_why() {
        let drm = parse(
            r#"<MPD type="static"><Period><AdaptationSet>
            <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cbcs"/>
            <ContentProtection schemeIdUri="urn:uuid:EDEF8BA9-79D6-4ACE-A3C8-27DCD51D21ED"/>
            <Representation id="v" bandwidth="1"/></AdaptationSet></Period></MPD>"#,
        );
        assert_eq!(drm, Err(MpdError::Drm("cbcs, Widevine".into())));
        assert_eq!(parse(r#"<MPD type="dynamic"><Period/></MPD>"#), Err(MpdError::Dynamic));
        assert!(matches!(parse("<MPD><Period>"), Err(MpdError::Invalid(_))));
        assert!(matches!(parse("<tt/>"), Err(MpdError::Invalid(m)) if m.contains("<tt>")));
        assert!(matches!(parse("<MPD/>"), Err(MpdError::Invalid(m)) if m.contains("no Period")));
        let bad_range = parse(
            r#"<MPD><Period><AdaptationSet><Representation id="v"><SegmentBase indexRange="9-2"/></Representation></AdaptationSet></Period></MPD>"#,
        );
        assert!(matches!(bad_range, Err(MpdError::Invalid(m)) if m.contains("indexRange")));
        // A DTD (entity expansion) is not read.
        assert!(parse(r#"<!DOCTYPE MPD [<!ENTITY a "aaaa">]><MPD><Period/></MPD>"#).is_err());
    }
}
