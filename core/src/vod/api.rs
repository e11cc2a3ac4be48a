//! The VOD API calls a download needs, and their answers.
//!
//! Field names follow the API (PascalCase JSON). Numbers are accepted as JSON numbers or as
//! strings: real responses send `Size`, `Width`, `Height` and `Encrypt` as numbers and
//! `Bitrate`, `Duration` and `Fps` as strings, while the documentation's examples quote
//! everything.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A number given as a JSON number or a string; absent, empty or malformed is `None`.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        serde_json::Value::String(s) => matches!(s.trim(), "1" | "true" | "True"),
        serde_json::Value::Bool(b) => b,
        _ => false,
    })
}

/// A signed URL, shown without its query by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(transparent)]
pub struct SignedUrl(pub String);

impl fmt::Debug for SignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::identity::redact_str(&self.0))
    }
}

/// `VideoBase` of `GetPlayInfo`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct VideoBase {
    /// The video id.
    pub video_id: String,
    /// Title.
    pub title: Option<String>,
    /// Cover image URL.
    #[serde(rename = "CoverURL")]
    pub cover_url: Option<SignedUrl>,
    /// Seconds.
    #[serde(deserialize_with = "lenient_f64")]
    pub duration: Option<f64>,
    /// `Normal` when playable.
    pub status: Option<String>,
    /// `video` or `audio`.
    pub media_type: Option<String>,
}

/// One stream of `GetPlayInfo`'s `PlayInfoList`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PlayInfo {
    /// The URL (signed when URL signing is on).
    #[serde(rename = "PlayURL")]
    pub play_url: SignedUrl,
    /// `FD`, `LD`, `SD`, `HD`, `OD`, `2K`, `4K`, `SQ`, `HQ`, `AUTO`, …
    pub definition: String,
    /// `m3u8`, `mp4`, `mp3`, `flv`, `mpd`, …
    pub format: String,
    /// `video` or `audio`.
    pub stream_type: String,
    /// Kbit/s.
    #[serde(deserialize_with = "lenient_f64")]
    pub bitrate: Option<f64>,
    /// Bytes.
    #[serde(deserialize_with = "lenient_u64")]
    pub size: Option<u64>,
    /// Pixels.
    #[serde(deserialize_with = "lenient_u64")]
    pub width: Option<u64>,
    /// Pixels.
    #[serde(deserialize_with = "lenient_u64")]
    pub height: Option<u64>,
    /// Seconds.
    #[serde(deserialize_with = "lenient_f64")]
    pub duration: Option<f64>,
    /// Frames per second.
    #[serde(deserialize_with = "lenient_f64")]
    pub fps: Option<f64>,
    /// Whether the stream is encrypted.
    #[serde(deserialize_with = "lenient_bool")]
    pub encrypt: bool,
    /// `HLSEncryption` (standard AES-128) or `AliyunVoDEncryption` (proprietary).
    pub encrypt_type: Option<String>,
    /// The transcode job: identifies the stream.
    pub job_id: Option<String>,
    /// `Normal`, or `Invisible` for an older stream of the same definition and format.
    pub status: Option<String>,
    /// The video codec (`H.264`, `H.265`, `AV1`, …).
    pub codec_name: Option<String>,
    /// The dynamic range: `SDR`, `HDR`, `HDR10`, `HLG`, `DolbyVision` (none: SDR).
    #[serde(rename = "HDRType")]
    pub hdr_type: Option<String>,
}

impl PlayInfo {
    /// Why vodvault cannot store this stream, if it cannot.
    pub fn unsupported_reason(&self) -> Option<String> {
        if self.encrypt {
            match self.encrypt_type.as_deref() {
                Some("HLSEncryption") if self.format.eq_ignore_ascii_case("m3u8") => {}
                Some(t) => {
                    return Some(format!(
                        "unsupported encryption {t} (only HLSEncryption, standard AES-128 HLS, is downloadable)"
                    ));
                }
                None => return Some("unsupported encryption (unnamed)".into()),
            }
        }
        if !super::STORABLE_FORMATS.iter().any(|f| self.format.eq_ignore_ascii_case(f)) {
            return Some(format!("unsupported format {} (vodvault stores m3u8, mp4, mpd, mp3 and m4a)", self.format));
        }
        None
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct PlayInfoList {
    play_info: Vec<PlayInfo>,
}

/// The answer of `GetPlayInfo`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlayInfoResponse {
    /// The video.
    pub video: VideoBase,
    /// Its streams.
    pub streams: Vec<PlayInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PlayInfoBody {
    #[serde(default)]
    video_base: VideoBase,
    #[serde(default)]
    play_info_list: PlayInfoList,
}

impl PlayInfoResponse {
    /// Parses the JSON answer.
    ///
    /// # Errors
    /// The JSON error, when it is not a `GetPlayInfo` answer.
    pub fn from_json(v: serde_json::Value) -> Result<Self, serde_json::Error> {
        let b: PlayInfoBody = serde_json::from_value(v)?;
        Ok(Self { video: b.video_base, streams: b.play_info_list.play_info })
    }
}

/// `Mezzanine` of `GetMezzanineInfo`: the source file.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mezzanine {
    /// The file's URL (signed).
    #[serde(rename = "FileURL")]
    pub file_url: SignedUrl,
    /// The uploaded file's name.
    pub file_name: Option<String>,
    /// Bytes.
    #[serde(deserialize_with = "lenient_u64")]
    pub size: Option<u64>,
    /// CRC-64/ECMA of the file, as VOD reports it (a decimal string, like OSS's
    /// `x-oss-hash-crc64ecma`).
    #[serde(rename = "CRC64", deserialize_with = "lenient_u64")]
    pub crc64: Option<u64>,
    /// Pixels.
    #[serde(deserialize_with = "lenient_u64")]
    pub width: Option<u64>,
    /// Pixels.
    #[serde(deserialize_with = "lenient_u64")]
    pub height: Option<u64>,
    /// Seconds.
    #[serde(deserialize_with = "lenient_f64")]
    pub duration: Option<f64>,
    /// Kbit/s.
    #[serde(deserialize_with = "lenient_f64")]
    pub bitrate: Option<f64>,
    /// `Normal` when complete.
    pub status: Option<String>,
}

impl Mezzanine {
    /// Parses the JSON answer.
    ///
    /// # Errors
    /// The JSON error, when it is not a `GetMezzanineInfo` answer.
    pub fn from_json(mut v: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(v.get_mut("Mezzanine").map(serde_json::Value::take).unwrap_or_default())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SnapshotUrls {
    snapshot: Vec<SignedUrl>,
}

/// `Video` of `GetVideoInfo`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct VideoInfo {
    /// The video id.
    pub video_id: String,
    /// Title.
    pub title: Option<String>,
    /// Cover image URL.
    #[serde(rename = "CoverURL")]
    pub cover_url: Option<SignedUrl>,
    /// Seconds.
    #[serde(deserialize_with = "lenient_f64")]
    pub duration: Option<f64>,
    /// `Normal` when playable.
    pub status: Option<String>,
    #[serde(rename = "Snapshots")]
    snapshots_raw: SnapshotUrls,
}

impl VideoInfo {
    /// Parses the JSON answer.
    ///
    /// # Errors
    /// The JSON error, when it is not a `GetVideoInfo` answer.
    pub fn from_json(mut v: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(v.get_mut("Video").map(serde_json::Value::take).unwrap_or_default())
    }
}

/// The kinds of image `ListSnapshots` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotType {
    /// Cover snapshots.
    Cover,
    /// Snapshots at intervals.
    Normal,
    /// Sprites (several thumbnails tiled in one image).
    Sprite,
    /// The frames the sprites were made of.
    SpriteOrigin,
    /// A WebVTT track mapping times to sprite regions (seek thumbnails).
    WebVtt,
}

impl SnapshotType {
    /// The API's `SnapshotType` value.
    pub fn api_name(self) -> &'static str {
        match self {
            SnapshotType::Cover => "CoverSnapshot",
            SnapshotType::Normal => "NormalSnapshot",
            SnapshotType::Sprite => "SpriteSnapshot",
            SnapshotType::SpriteOrigin => "SpriteOriginSnapshot",
            SnapshotType::WebVtt => "WebVttSnapshot",
        }
    }
}

/// One image of `ListSnapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Snapshot {
    /// Position (1-based).
    #[serde(default)]
    pub index: u64,
    /// URL (signed).
    pub url: SignedUrl,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Snapshots {
    snapshot: Vec<Snapshot>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct MediaSnapshot {
    #[serde(deserialize_with = "lenient_u64")]
    total: Option<u64>,
    snapshots: Snapshots,
}

/// One page of `ListSnapshots`: the images and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotPage {
    /// Images on this page.
    pub snapshots: Vec<Snapshot>,
    /// Images of this type in all.
    pub total: u64,
}

impl SnapshotPage {
    /// Parses the JSON answer.
    ///
    /// # Errors
    /// The JSON error, when it is not a `ListSnapshots` answer.
    pub fn from_json(mut v: serde_json::Value) -> Result<Self, serde_json::Error> {
        let m: MediaSnapshot =
            serde_json::from_value(v.get_mut("MediaSnapshot").map(serde_json::Value::take).unwrap_or_default())?;
        let total = m.total.unwrap_or(m.snapshots.snapshot.len() as u64);
        Ok(Self { snapshots: m.snapshots.snapshot, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real GetPlayInfo answer (as apps have logged it; numbers as numbers, bitrate and
    /// duration as strings), trimmed to one stream.
    #[test]
    fn play_info_as_the_api_sends_it() {
        let json = serde_json::json!({"RequestId":"DA27F163-8243-4AD0-B17F-848A413D5F10",
         "VideoBase":{"TranscodeMode":"FastTranscode","CreationTime":"2019-03-11T08:37:40Z",
           "CoverURL":"https://sp.example.cn/snapshot/b9cf00001.jpg",
           "Status":"Normal","MediaType":"video","VideoId":"b9cf1aaeec27416783968672f861d9b2",
           "Duration":"1.873","OutputType":"cdn","Title":"test"},
         "PlayInfoList":{"PlayInfo":[
           {"Format":"m3u8","StreamType":"video","PreprocessStatus":"UnPreprocess",
            "ModificationTime":"2019-03-11T08:38:51Z","Height":960,
            "PlayURL":"https://sp.example.cn/b9cf/add0-ld.m3u8?auth_key=1-0-0-abc","NarrowBandType":"0",
            "CreationTime":"2019-03-11T08:38:49Z","Status":"Normal","Duration":"1.9264",
            "JobId":"7f032e3b0bcb472ba628e47937e842c2","Encrypt":0,"Width":462,"Fps":"25",
            "Bitrate":"732.308","Size":176344,"Definition":"LD"}]}});
        let r = PlayInfoResponse::from_json(json).unwrap();
        assert_eq!(r.video.video_id, "b9cf1aaeec27416783968672f861d9b2");
        assert_eq!(r.video.duration, Some(1.873));
        let s = &r.streams[0];
        assert_eq!(
            (s.definition.as_str(), s.format.as_str(), s.size, s.height),
            ("LD", "m3u8", Some(176_344), Some(960))
        );
        assert_eq!(s.bitrate, Some(732.308));
        assert!(!s.encrypt && s.unsupported_reason().is_none());
        assert!(!format!("{s:?}").contains("auth_key"), "signed URLs are not shown");
    }

    /// The documentation's example quotes every number: accepted too.
    #[test]
    fn quoted_numbers_and_encryption() {
        let json = serde_json::json!({"PlayInfoList":{"PlayInfo":[
            {"PlayURL":"https://x/a.m3u8","Definition":"HD","Format":"m3u8","StreamType":"video","Size":"418112",
             "Encrypt":"1","EncryptType":"AliyunVoDEncryption","Height":"960"},
            {"PlayURL":"https://x/b.m3u8","Definition":"SD","Format":"m3u8","StreamType":"video","Encrypt":1,
             "EncryptType":"HLSEncryption"},
            {"PlayURL":"https://x/c.flv","Definition":"SD","Format":"flv","StreamType":"video"}]}});
        let r = PlayInfoResponse::from_json(json).unwrap();
        assert_eq!(r.streams[0].size, Some(418_112));
        assert!(r.streams[0].unsupported_reason().unwrap().contains("unsupported encryption AliyunVoDEncryption"));
        assert!(r.streams[1].encrypt && r.streams[1].unsupported_reason().is_none());
        assert!(r.streams[2].unsupported_reason().unwrap().contains("unsupported format flv"));
    }

    #[test]
    fn mezzanine_video_info_and_snapshots() {
        let m = Mezzanine::from_json(serde_json::json!({"Mezzanine":{"FileURL":"http://x/a.mp4?Expires=1",
            "Size":4096477,"CRC64":"11051210869376104954","Width":"960","Status":"Normal"}}))
        .unwrap();
        assert_eq!((m.size, m.crc64, m.width), (Some(4_096_477), Some(0x995D_C9BB_DF19_39FA), Some(960)));
        let v = VideoInfo::from_json(serde_json::json!({"Video":{"VideoId":"v",
            "CoverURL":"http://x/c.jpg?auth_key=1-0-0-secret1", "Duration":5.949,
            "Snapshots":{"Snapshot":["http://x/s1.jpg?auth_key=1-0-0-secret2"]}}}))
        .unwrap();
        assert_eq!((v.duration, v.snapshots_raw.snapshot.len()), (Some(5.949), 1));
        let shown = format!("{v:?}");
        assert!(shown.contains("s1.jpg") && !shown.contains("secret"), "signatures never in Debug: {shown}");
        let p = SnapshotPage::from_json(serde_json::json!({"MediaSnapshot":{"Total":100,
            "Regular":"http://image.com/snapshot/sample{SnapshotCount}.jpg",
            "Snapshots":{"Snapshot":[{"Index":1,"Url":"http://image.com/snapshot/sample00001.jpg"}]}}}))
        .unwrap();
        assert_eq!((p.total, p.snapshots[0].index), (100, 1));
    }
}
