//! The vault's vocabulary: plain data that every other module speaks and that depends on none of
//! them but the HLS playlist types (a prepared source lists variants and renditions). Requests,
//! states, what is reported about sources and assets, events and failure reasons.

mod conditions;
mod event;
mod failure;
mod info;
mod request;
mod rules;
mod states;

pub use conditions::{Conditions, KeepFree, Network, Requirements, Space, SpaceCheck, WaitReason, wait_reason};
pub use event::{Event, Progress, RefreshRequest, UrlRefresher};
pub use failure::FailureReason;
pub use info::{
    AssetInfo, DashRepresentationInfo, DashSetInfo, ImageInfo, Prepared, VodIdentity, VodMezzanineInfo, VodStreamInfo,
};
pub use request::{
    AudioChoice, DownloadRequest, OutputType, Quality, SubtitleChoice, TimeRange, VodRequest, parse_vod_source,
    valid_video_id,
};
pub(crate) use rules::offered;
pub use rules::{DynamicRange, PickedTrack, Preview, TrackRules, codec_family};
pub use states::{AssetKind, AssetState, ImageKind, Mode, RenditionRole, SegmentKind, UnknownText};
