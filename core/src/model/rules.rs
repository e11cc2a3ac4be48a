//! Tracks by rules: what the device decodes and shows (codecs, dynamic range, audio channels)
//! and the user's languages, applied to the variants and renditions of HLS, the
//! representations and adaptation sets of DASH and the streams of ApsaraVideo VOD.

use serde::{Deserialize, Serialize};

use crate::hls::master::{Rendition, Variant};

/// The dynamic range a video is mastered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DynamicRange {
    /// Standard dynamic range (`VIDEO-RANGE=SDR`, or none said).
    Sdr,
    /// HDR10 / PQ (`VIDEO-RANGE=PQ`).
    Hdr10,
    /// Hybrid log-gamma (`VIDEO-RANGE=HLG`).
    Hlg,
    /// Dolby Vision (`dvh1`/`dvhe`/`dva1`/`dvav` codecs, or in `SUPPLEMENTAL-CODECS`).
    DolbyVision,
}

/// Rules a download's tracks are chosen by (after them, `quality` picks by height or bandwidth).
/// Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackRules {
    /// Audio languages in order of preference (`fr`, `en-US`, `fra`): one audio rendition, of
    /// the first language offered; none offered: the default rendition.
    pub audio_languages: Vec<String>,
    /// The most audio channels the device plays (2: no 5.1 rendition when a stereo one exists).
    pub max_audio_channels: Option<u32>,
    /// Subtitle languages: every subtitle rendition in one of them (empty: the request's
    /// `subtitles` choice decides).
    pub subtitle_languages: Vec<String>,
    /// Codecs the device decodes, by family: `avc1`, `hvc1` (= `hev1`), `av01`, `vp09`, `dvh1`
    /// (Dolby Vision), `mp4a`, `ac-3`, `ec-3`, `opus`, `flac`, … Every codec of a variant must be
    /// one of them; a variant that names no codecs is taken as decodable.
    pub codecs: Vec<String>,
    /// Dynamic ranges the device shows (`[Sdr]`: no HDR).
    pub ranges: Vec<DynamicRange>,
}

/// A codec string's family: `avc1.64001f` → `avc1`, `hev1.2.4.L120` → `hvc1`, `vp9` → `vp09`.
pub fn codec_family(codec: &str) -> String {
    let c = codec.trim().to_ascii_lowercase();
    // Names (VOD's `CodecName`) first: their dots are not RFC 6381's.
    let head = match c.as_str() {
        "h.264" | "h264" | "avc" => "avc1",
        "h.265" | "h265" | "hevc" => "hvc1",
        _ => c.split('.').next().unwrap_or(""),
    };
    match head {
        "avc1" | "avc3" => "avc1",
        "hvc1" | "hev1" => "hvc1",
        "dvh1" | "dvhe" => "dvh1",
        "dva1" | "dvav" => "dva1",
        "vp9" | "vp09" => "vp09",
        "av1" | "av01" => "av01",
        "ac3" | "ac-3" => "ac-3",
        "ec3" | "ec-3" | "eac3" => "ec-3",
        "aac" => "mp4a",
        other => other,
    }
    .to_owned()
}

/// Text codecs carried with a variant: always "decodable" (subtitles are drawn by the player).
fn is_text(family: &str) -> bool {
    matches!(family, "wvtt" | "stpp" | "tx3g" | "c608" | "c708")
}

impl TrackRules {
    /// Whether the rules constrain anything.
    pub fn is_empty(&self) -> bool {
        self == &TrackRules::default()
    }

    fn codec_ok(&self, family: &str) -> bool {
        self.codecs.is_empty() || is_text(family) || self.codecs.iter().any(|c| codec_family(c) == family)
    }

    fn range_ok(&self, range: DynamicRange) -> bool {
        self.ranges.is_empty() || self.ranges.contains(&range)
    }

    /// Whether the device decodes and shows `v`: its codecs, its dynamic range — or, failing
    /// that, the Dolby Vision layer its `SUPPLEMENTAL-CODECS` name.
    pub fn accepts(&self, v: &Variant) -> bool {
        let families: Vec<String> =
            v.codecs.as_deref().map(|c| c.split(',').map(codec_family).collect()).unwrap_or_default();
        let dv = families.iter().any(|f| f == "dvh1" || f == "dva1");
        let range = if dv { DynamicRange::DolbyVision } else { video_range(v.video_range.as_deref()) };
        if families.iter().all(|f| self.codec_ok(f)) && self.range_ok(range) {
            return true;
        }
        // Dolby Vision over a base layer: the device may play the enhancement instead.
        let supplemental: Vec<String> = v
            .supplemental_codecs
            .as_deref()
            .map(|c| c.split(',').map(|s| codec_family(s.split('/').next().unwrap_or(s))).collect())
            .unwrap_or_default();
        !supplemental.is_empty()
            && self.range_ok(DynamicRange::DolbyVision)
            && supplemental.iter().all(|f| self.codec_ok(f))
            && families.iter().filter(|f| !is_video(f)).all(|f| self.codec_ok(f))
    }

    /// The audio rendition the rules pick from `group` (those with a URI): the first preferred
    /// language offered, within the channel limit when one such rendition is; else the group's
    /// default. `None` when the rules say nothing about audio.
    pub fn pick_audio<'a>(&self, group: &[&'a Rendition]) -> Option<Vec<&'a Rendition>> {
        if self.audio_languages.is_empty() && self.max_audio_channels.is_none() {
            return None;
        }
        let with_uri: Vec<&Rendition> = group.iter().copied().filter(|r| r.uri.is_some()).collect();
        let fits = |r: &&Rendition| {
            self.max_audio_channels.is_none_or(|max| channels(r.channels.as_deref()).is_none_or(|c| c <= max))
        };
        let best = |among: Vec<&'a Rendition>| -> Option<&'a Rendition> {
            let fitting: Vec<&Rendition> = among.iter().copied().filter(fits).collect();
            let pool = if fitting.is_empty() { among } else { fitting };
            pool.iter()
                .copied()
                .find(|r| r.default)
                .or_else(|| pool.iter().copied().max_by_key(|r| channels(r.channels.as_deref()).unwrap_or(0)))
        };
        // Each preference in turn: its exact tag (`en-GB`), else its language (`en-US` for a
        // user in Britain), before the next preference (RFC 4647 lookup).
        for lang in &self.audio_languages {
            for strict in [true, false] {
                let matching: Vec<&Rendition> = with_uri
                    .iter()
                    .copied()
                    .filter(|r| r.language.as_deref().is_some_and(|l| language_matches(lang, l, strict)))
                    .collect();
                if let Some(r) = best(matching) {
                    return Some(vec![r]);
                }
            }
        }
        Some(best(with_uri).into_iter().collect())
    }

    /// Whether a track in `language` is in one of `languages` (by language: `en-US` wants
    /// `en-GB` too).
    pub fn wants_language(languages: &[String], language: Option<&str>) -> bool {
        language.is_some_and(|l| languages.iter().any(|w| language_matches(w, l, false)))
    }
}

/// One track a download would store, as [`crate::Vault::preview`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PickedTrack {
    /// Video (or the file), audio or subtitles.
    pub role: crate::model::RenditionRole,
    /// The rendition's or adaptation set's name or label.
    pub name: Option<String>,
    /// Its language.
    pub language: Option<String>,
    /// Its codecs (for video, the variant's: video and audio).
    pub codecs: Option<String>,
    /// Peak bits per second.
    pub bandwidth: Option<u64>,
    /// Height in pixels.
    pub height: Option<u64>,
    /// `VIDEO-RANGE` (`SDR`, `PQ`, `HLG`).
    pub video_range: Option<String>,
    /// `CHANNELS`.
    pub channels: Option<String>,
    /// Segments (pieces) of it that would be fetched.
    pub segments: u64,
    /// Seconds of it.
    pub duration_secs: Option<f64>,
}

/// What downloading a request would store, without storing anything: the tracks its choices
/// and rules pick, and the space it takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// The tracks, video (or the file) first.
    pub tracks: Vec<PickedTrack>,
    /// Its size against the space downloads may use and the quota.
    pub space: crate::model::SpaceCheck,
}

/// What a refusal lists of what was offered: each variant's codecs and dynamic range.
pub(crate) fn offered<'a>(variants: impl Iterator<Item = &'a Variant>) -> String {
    let each: Vec<String> = variants
        .map(|v| {
            format!(
                "{} {}",
                v.codecs.as_deref().unwrap_or("(codecs not given)"),
                v.video_range.as_deref().unwrap_or("SDR")
            )
        })
        .collect();
    each.join("; ")
}

fn is_video(family: &str) -> bool {
    matches!(family, "avc1" | "hvc1" | "dvh1" | "dva1" | "vp09" | "av01" | "vp08")
}

/// `VIDEO-RANGE` as a dynamic range.
pub(crate) fn video_range(v: Option<&str>) -> DynamicRange {
    match v.map(str::trim) {
        Some(r) if r.eq_ignore_ascii_case("PQ") => DynamicRange::Hdr10,
        Some(r) if r.eq_ignore_ascii_case("HLG") => DynamicRange::Hlg,
        _ => DynamicRange::Sdr,
    }
}

/// `CHANNELS="6"` or `"16/JOC"` → the leading count.
fn channels(c: Option<&str>) -> Option<u32> {
    c?.split('/').next()?.trim().parse().ok()
}

/// ISO 639-2 codes of common languages and their ISO 639-1 codes.
const THREE_LETTERS: &[(&str, &str)] = &[
    ("eng", "en"),
    ("fra", "fr"),
    ("fre", "fr"),
    ("deu", "de"),
    ("ger", "de"),
    ("spa", "es"),
    ("ita", "it"),
    ("por", "pt"),
    ("zho", "zh"),
    ("chi", "zh"),
    ("jpn", "ja"),
    ("kor", "ko"),
    ("rus", "ru"),
    ("ara", "ar"),
    ("hin", "hi"),
    ("nld", "nl"),
    ("dut", "nl"),
    ("swe", "sv"),
    ("pol", "pl"),
    ("tur", "tr"),
    ("dan", "da"),
    ("fin", "fi"),
    ("nor", "no"),
    ("nob", "no"),
    ("ces", "cs"),
    ("cze", "cs"),
    ("ell", "el"),
    ("gre", "el"),
    ("heb", "he"),
    ("tha", "th"),
    ("vie", "vi"),
    ("ind", "id"),
    ("ukr", "uk"),
    ("hun", "hu"),
    ("ron", "ro"),
    ("rum", "ro"),
    ("msa", "ms"),
    ("may", "ms"),
    ("cat", "ca"),
];

/// The primary language of a tag, as ISO 639-1 where known: `fr-CA` → `fr`, `fra` → `fr`.
fn primary(tag: &str) -> String {
    let p = tag.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
    THREE_LETTERS.iter().find(|(three, _)| *three == p).map_or(p, |(_, two)| (*two).to_owned())
}

/// The region of a tag, if it names one: `fr-CA` → `ca`, `zh-Hans-CN` → `cn` (the script,
/// `Hans`, is not a region).
fn region(tag: &str) -> Option<String> {
    let is_region = |s: &&str| {
        (s.len() == 2 && s.chars().all(|c| c.is_ascii_alphabetic()))
            || (s.len() == 3 && s.chars().all(|c| c.is_ascii_digit()))
    };
    tag.trim().split(['-', '_']).skip(1).find(is_region).map(str::to_ascii_lowercase)
}

/// Whether `want` (what the user asks for) names `have` (what a track says): the same language
/// (`fr` is `fra`); `strict`ly, also the same region when both name one (`pt-BR` is not
/// `pt-PT`; `pt` is both).
pub(crate) fn language_matches(want: &str, have: &str, strict: bool) -> bool {
    if primary(want) != primary(have) {
        return false;
    }
    match (strict, region(want), region(have)) {
        (true, Some(w), Some(h)) => w == h,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(codecs: &str, range: Option<&str>, supplemental: Option<&str>) -> Variant {
        let mut v = Variant::with_bandwidth("v.m3u8".into(), 1);
        v.codecs = Some(codecs.into());
        v.video_range = range.map(Into::into);
        v.supplemental_codecs = supplemental.map(Into::into);
        v
    }

    fn rules(codecs: &[&str], ranges: &[DynamicRange]) -> TrackRules {
        TrackRules {
            codecs: codecs.iter().map(|c| (*c).to_owned()).collect(),
            ranges: ranges.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn codecs_by_family_and_ranges() {
        let avc = variant("avc1.64001f,mp4a.40.2", None, None);
        let hevc_pq = variant("hvc1.2.4.L123.B0,mp4a.40.2", Some("PQ"), None);
        let hev1 = variant("hev1.1.6.L93.B0,ec-3", None, None);
        let dv_over_hdr10 = variant("hvc1.2.4.L150.90,ec-3", Some("PQ"), Some("dvh1.08.07/db1p"));
        let dv_only = variant("dvh1.05.06,ec-3", Some("PQ"), None);
        let sdr_avc = rules(&["avc1", "mp4a"], &[DynamicRange::Sdr]);
        assert!(sdr_avc.accepts(&avc));
        assert!(!sdr_avc.accepts(&hevc_pq) && !sdr_avc.accepts(&hev1));
        let hevc = rules(&["hev1", "mp4a", "ec-3"], &[DynamicRange::Sdr, DynamicRange::Hdr10]);
        assert!(hevc.accepts(&hevc_pq) && hevc.accepts(&hev1), "hvc1 and hev1 are one family");
        assert!(hevc.accepts(&dv_over_hdr10), "the HDR10 base layer");
        assert!(!hevc.accepts(&dv_only));
        let sdr_hevc = rules(&["hvc1", "ec-3"], &[DynamicRange::Sdr]);
        assert!(!sdr_hevc.accepts(&hevc_pq) && !sdr_hevc.accepts(&dv_over_hdr10));
        let dv = rules(&["dvh1", "ec-3"], &[DynamicRange::DolbyVision]);
        assert!(dv.accepts(&dv_only) && dv.accepts(&dv_over_hdr10), "the Dolby Vision layer");
        assert!(TrackRules::default().accepts(&dv_only));
        assert_eq!(
            ["H.264", "h265", "HEVC", "AV1", "vp9", "avc3.4d401e"].map(codec_family),
            ["avc1", "hvc1", "hvc1", "av01", "vp09", "avc1"]
        );
        assert!(sdr_avc.accepts(&Variant::with_bandwidth("x".into(), 1)), "no CODECS: taken as decodable");
        assert!(rules(&["avc1"], &[]).accepts(&variant("avc1.4d401e,wvtt", None, None)), "text codecs pass");
    }

    #[test]
    fn languages_match_by_primary_tag_region_and_three_letter_codes() {
        let strict = |w, h| language_matches(w, h, true);
        assert!(strict("fr", "fr-CA") && strict("fr", "fra") && strict("FRE", "fr"));
        assert!(strict("pt", "pt-BR") && !strict("pt-PT", "pt-BR") && strict("pt-BR", "pt"));
        assert!(!strict("en", "de") && strict("zh", "chi"));
        assert!(strict("zh-Hans-CN", "zh-CN") && !strict("zh-Hant-TW", "zh-CN"), "a script is not a region");
        assert!(language_matches("pt-PT", "pt-BR", false) && !language_matches("en-US", "de-DE", false));
    }

    #[test]
    fn a_phone_locale_finds_its_language_in_another_region_before_the_next_preference() {
        let gb = audio("gb", "en-GB", "2", false);
        let fr = audio("fr", "fr", "2", true);
        let group = vec![&fr, &gb];
        let r = TrackRules { audio_languages: vec!["en-US".into(), "fr".into()], ..Default::default() };
        assert_eq!(r.pick_audio(&group).unwrap()[0].name, "gb");
        let us = audio("us", "en-US", "2", false);
        let group = vec![&fr, &gb, &us];
        assert_eq!(r.pick_audio(&group).unwrap()[0].name, "us", "the exact tag first");
        assert!(TrackRules::wants_language(&["en-US".into()], Some("en-GB")));
    }

    fn audio(name: &str, lang: &str, ch: &str, default: bool) -> Rendition {
        Rendition {
            kind: crate::hls::master::RenditionKind::Audio,
            group_id: "a".into(),
            name: name.into(),
            language: Some(lang.into()),
            default,
            autoselect: true,
            forced: false,
            uri: Some(format!("{name}.m3u8")),
            channels: Some(ch.into()),
            characteristics: None,
        }
    }

    #[test]
    fn audio_by_preference_then_channels_then_default() {
        let en = audio("en", "en", "2", true);
        let fr6 = audio("fr6", "fr", "6", false);
        let fr2 = audio("fr2", "fr-FR", "2", false);
        let group = vec![&en, &fr6, &fr2];
        let names = |r: &TrackRules| r.pick_audio(&group).unwrap().iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        let mut r = TrackRules { audio_languages: vec!["de".into(), "fr".into(), "en".into()], ..Default::default() };
        assert_eq!(names(&r), ["fr6"], "the first language offered; most channels");
        r.max_audio_channels = Some(2);
        assert_eq!(names(&r), ["fr2"], "within the channel limit");
        r.audio_languages = vec!["ja".into()];
        assert_eq!(names(&r), ["en"], "no language offered: the default");
        assert!(TrackRules::default().pick_audio(&group).is_none(), "no audio rules: the request's choice");
    }
}
