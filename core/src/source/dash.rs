//! DASH sources: a static MPD listed like a master playlist, and a choice of its representations
//! turned into what the engine downloads for any source — one HLS media playlist per chosen
//! track, its pieces (segments, byte ranges of a single file, initialization sections) across
//! every period.

use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use url::Url;

use super::{Choice, ChosenRendition, Fetched, PLAYLIST_LIMIT, Source};
use crate::dash::segments::{self, Pieces};
use crate::dash::write::{Span, TrackInfo, hls_media_playlist};
use crate::dash::{AdaptationSet, ContentKind, Mpd, MpdError, Period, Representation, sidx};
use crate::error::{Error, Result};
use crate::hls::master::{Rendition, RenditionKind, Variant};
use crate::hls::media::{ByteRange, MediaPlaylist};
use crate::hls::vars::VarSource;
use crate::model::{
    AudioChoice, DashRepresentationInfo, DashSetInfo, DownloadRequest, Prepared, RenditionRole, SubtitleChoice,
    TrackRules,
};

/// An MPD's error as the vault's: live, DRM and addressing it does not handle are unsupported
/// sources; the rest is a bad one.
pub(crate) fn mpd_error(e: MpdError) -> Error {
    match e {
        MpdError::Invalid(m) => Error::BadSource(format!("the MPD is invalid: {m}")),
        other @ (MpdError::Dynamic | MpdError::Drm(_)) => Error::Unsupported(other.to_string()),
        MpdError::Unsupported(m) => Error::Unsupported(format!("the MPD uses {m}")),
    }
}

/// Where a chosen track is in each period: `(period, adaptation set, representation)`.
pub(crate) type Picks = Vec<(u32, usize, usize)>;

/// A chosen DASH track.
pub(crate) struct DashTrack {
    /// Where it is in each period.
    pub picks: Picks,
    /// Its representation's id in the main period (what a refreshed MPD must still offer).
    pub rep_id: String,
    /// Its representations, period by period (`0:v720,2:v720`): part of the asset's identity.
    pub key: String,
}

/// The period a choice is made in: the longest (an ad before the film is not the film).
fn main_period(mpd: &Mpd) -> usize {
    let mut best = 0;
    for (i, p) in mpd.periods.iter().enumerate() {
        let has_media = |p: &Period| p.sets.iter().any(|s| matches!(s.kind, ContentKind::Video | ContentKind::Audio));
        let longer = p.duration.unwrap_or(0.0) > mpd.periods[best].duration.unwrap_or(0.0);
        if has_media(p) && (longer || !has_media(&mpd.periods[best])) {
            best = i;
        }
    }
    best
}

fn lang_eq(a: Option<&str>, b: Option<&str>) -> bool {
    a.map(str::to_ascii_lowercase) == b.map(str::to_ascii_lowercase)
}

/// The adaptation set and representation of `period` that continue `(set, rep)` of another:
/// the same ids, else the same kind and language with the nearest bandwidth.
fn continue_in(period: &Period, set: &AdaptationSet, rep: &Representation) -> Option<(usize, usize)> {
    let same_kind = |s: &&AdaptationSet| s.kind == set.kind;
    let candidates: Vec<usize> = (0..period.sets.len()).filter(|i| same_kind(&&period.sets[*i])).collect();
    let si = candidates
        .iter()
        .copied()
        .find(|i| {
            set.id.is_some()
                && period.sets[*i].id == set.id
                && lang_eq(period.sets[*i].lang.as_deref(), set.lang.as_deref())
        })
        .or_else(|| {
            candidates.iter().copied().find(|i| {
                lang_eq(period.sets[*i].lang.as_deref(), set.lang.as_deref()) && period.sets[*i].roles == set.roles
            })
        })
        .or_else(|| candidates.iter().copied().find(|i| lang_eq(period.sets[*i].lang.as_deref(), set.lang.as_deref())))
        .or_else(|| (set.kind == ContentKind::Video).then(|| candidates.first().copied()).flatten())?;
    let reps = &period.sets[si].reps;
    let ri = reps.iter().position(|r| r.id == rep.id).or_else(|| {
        (0..reps.len()).min_by_key(|i| {
            let h = |r: &Representation| r.height.unwrap_or(0).abs_diff(rep.height.unwrap_or(0));
            (h(&reps[*i]), reps[*i].bandwidth.abs_diff(rep.bandwidth))
        })
    })?;
    Some((si, ri))
}

/// Where `(set, rep)` of the main period plays in every period.
fn picks(mpd: &Mpd, main: usize, si: usize, ri: usize) -> Picks {
    let set = &mpd.periods[main].sets[si];
    let rep = &set.reps[ri];
    mpd.periods
        .iter()
        .enumerate()
        .filter_map(|(pi, p)| {
            if pi == main {
                return Some((pi as u32, si, ri));
            }
            continue_in(p, set, rep).map(|(s, r)| (pi as u32, s, r))
        })
        .collect()
}

/// Why a representation (of an adaptation set of `kind`) cannot be stored, if it cannot.
fn unsupported(rep: &Representation, kind: ContentKind) -> Option<String> {
    let mime = rep.mime.as_deref().unwrap_or("");
    if mime.ends_with("/webm") {
        return Some(format!("WebM DASH ({mime}); vodvault stores fMP4/CMAF, MPEG-TS and text tracks"));
    }
    let one_file = match &rep.addressing {
        crate::dash::Addressing::Whole => true,
        crate::dash::Addressing::Base(b) => b.index_range.is_none(),
        _ => false,
    };
    if one_file && matches!(kind, ContentKind::Video | ContentKind::Audio) {
        // One piece without an initialization: nothing an HLS player can play, and no resume.
        return Some("a single media file without a segment index (SegmentBase@indexRange)".into());
    }
    None
}

/// The pieces of one track in each of its periods, the segment indexes read.
async fn pieces(src: &Source, mpd: &Mpd, picks: &Picks, headers: &HeaderMap) -> Result<Vec<Pieces>> {
    let mut out = Vec::with_capacity(picks.len());
    for &(pi, si, ri) in picks {
        let period = &mpd.periods[pi as usize];
        let rep = &period.sets[si].reps[ri];
        let mut p = segments::resolve(rep, period.duration).map_err(mpd_error)?;
        if let Some(index) = p.index.clone() {
            let (offset, length) = index.range.unwrap_or((0, 0));
            let (bytes, _) = src
                .http
                .get_small_range(&index.url, headers, Some(ByteRange { offset, length }), PLAYLIST_LIMIT, &src.retry)
                .await?;
            sidx::apply(&mut p, &bytes, offset).map_err(mpd_error)?;
        }
        out.push(p);
    }
    Ok(out)
}

/// A representation of the main period, `(set, rep)`, with its size `(bytes, exact)`, its
/// segments and why it cannot be stored.
type RepSize = ((usize, usize), Option<(u64, bool)>, Option<u64>, Option<String>);

fn frame_rate(rep: &Representation) -> Option<f64> {
    rep.frame_rate_value().map(|f| (f * 1000.0).round() / 1000.0)
}

/// Lists the main period's adaptation sets and representations, with sizes: exact where every
/// piece is a byte range (segment indexes are read for it), bandwidth × duration otherwise.
pub(crate) async fn prepare(src: &Source, mpd: &Mpd, headers: &HeaderMap) -> Prepared {
    let main = main_period(mpd);
    let duration = mpd.total_duration();
    let period = &mpd.periods[main];
    let jobs: Vec<(usize, usize)> =
        period.sets.iter().enumerate().flat_map(|(si, s)| (0..s.reps.len()).map(move |ri| (si, ri))).collect();
    let sized: Vec<RepSize> = futures_util::stream::iter(jobs)
        .map(|(si, ri)| async move {
            let rep = &period.sets[si].reps[ri];
            let picks = picks(mpd, main, si, ri);
            match pieces(src, mpd, &picks, headers).await {
                Ok(ps) => {
                    let count = ps.iter().map(|p| p.segments.len() as u64).sum();
                    let exact: Option<u64> = ps.iter().map(Pieces::exact_size).sum();
                    let size = exact.map(|s| (s, true)).or_else(|| {
                        let secs: f64 = ps.iter().map(Pieces::duration).sum();
                        (rep.bandwidth > 0).then(|| ((rep.bandwidth as f64 * secs / 8.0) as u64, false))
                    });
                    ((si, ri), size, Some(count), unsupported(rep, period.sets[si].kind))
                }
                Err(e) => {
                    let why = match e {
                        Error::Unsupported(m) => Some(m),
                        Error::BadSource(m) => Some(m),
                        _ => None,
                    };
                    let est = duration
                        .filter(|_| rep.bandwidth > 0)
                        .map(|d| ((rep.bandwidth as f64 * d / 8.0) as u64, false));
                    ((si, ri), est, None, why.or_else(|| unsupported(rep, period.sets[si].kind)))
                }
            }
        })
        .buffered(8)
        .collect()
        .await;
    let mut sets: Vec<DashSetInfo> = period
        .sets
        .iter()
        .map(|s| DashSetInfo {
            id: s.id.clone(),
            content_type: s.kind.as_str().to_owned(),
            language: s.lang.clone(),
            roles: s.roles.clone(),
            label: s.label.clone(),
            mime_type: s.reps.first().and_then(|r| r.mime.clone()),
            representations: Vec::new(),
        })
        .collect();
    for ((si, ri), size, segments, why) in sized {
        let rep = &period.sets[si].reps[ri];
        sets[si].representations.push(DashRepresentationInfo {
            id: rep.id.clone(),
            bandwidth: rep.bandwidth,
            codecs: rep.codecs.clone(),
            width: rep.width,
            height: rep.height,
            frame_rate: frame_rate(rep),
            channels: rep.channels.as_ref().and_then(|c| c.count()),
            sampling_rate: rep.sampling_rate.as_deref().and_then(|s| s.split_whitespace().next()?.parse().ok()),
            segments,
            size: size.map(|s| s.0),
            size_exact: size.is_some_and(|s| s.1),
            unsupported: why,
        });
    }
    Prepared::Dash { duration_secs: duration, periods: mpd.periods.len() as u32, adaptation_sets: sets }
}

fn as_variant(rep: &Representation) -> Variant {
    Variant {
        codecs: rep.codecs.clone(),
        width: rep.width,
        height: rep.height,
        frame_rate: frame_rate(rep),
        video_range: match rep.transfer {
            Some(16) => Some("PQ".into()),
            Some(18) => Some("HLG".into()),
            _ => None,
        },
        ..Variant::with_bandwidth(rep.id.clone(), rep.bandwidth)
    }
}

/// Picks a representation of `set` by `quality` (the audio and text ones too: the best audio
/// for the best video, the leanest for the leanest).
fn pick_rep(set: &AdaptationSet, request: &DownloadRequest) -> usize {
    let storable: Vec<usize> = (0..set.reps.len()).filter(|i| unsupported(&set.reps[*i], set.kind).is_none()).collect();
    let pool = if storable.is_empty() { (0..set.reps.len()).collect() } else { storable };
    // Those the device decodes (and, for audio, within its channels), if any is.
    let pool = match &request.rules {
        Some(rules) => {
            let fit: Vec<usize> = pool
                .iter()
                .copied()
                .filter(|i| {
                    let rep = &set.reps[*i];
                    rules.accepts(&as_variant(rep))
                        && rules
                            .max_audio_channels
                            .is_none_or(|max| rep.channels.as_ref().and_then(|c| c.count()).is_none_or(|c| c <= max))
                })
                .collect();
            if fit.is_empty() { pool } else { fit }
        }
        None => pool,
    };
    let variants: Vec<Variant> = pool.iter().map(|i| as_variant(&set.reps[*i])).collect();
    pool[request.quality.pick(&variants)]
}

fn lang_wanted(set: &AdaptationSet, langs: &[String]) -> bool {
    let Some(l) = set.lang.as_deref() else { return false };
    langs
        .iter()
        .any(|w| w.eq_ignore_ascii_case(l) || l.split(['-', '_']).next().is_some_and(|p| p.eq_ignore_ascii_case(w)))
}

/// Chooses the tracks of an MPD as `request` asks, like a variant and renditions of a master
/// playlist: the video representation by quality, audio adaptation sets by the audio choice,
/// text ones by the subtitle choice. An MPD without video chooses its audio as the main track.
pub(crate) fn choose(mpd: &Mpd, base: &Url, request: &DownloadRequest) -> Result<Choice> {
    let main = main_period(mpd);
    let period = &mpd.periods[main];
    let of = |k: ContentKind| {
        (0..period.sets.len()).filter(move |i| period.sets[*i].kind == k && !period.sets[*i].reps.is_empty())
    };
    let video_sets: Vec<usize> = of(ContentKind::Video).collect();
    let audio_sets: Vec<usize> = of(ContentKind::Audio).collect();
    let text_sets: Vec<usize> = of(ContentKind::Text).collect();
    // Every video representation competes, across adaptation sets (angles aside, an MPD may put
    // its codecs in separate sets).
    let main_pick: (usize, usize) = if video_sets.is_empty() {
        let si =
            *audio_sets.first().ok_or_else(|| Error::BadSource("the MPD has no video or audio to download".into()))?;
        (si, pick_rep(&period.sets[si], request))
    } else {
        let all: Vec<(usize, usize)> =
            video_sets.iter().flat_map(|si| (0..period.sets[*si].reps.len()).map(move |ri| (*si, ri))).collect();
        let storable: Vec<(usize, usize)> = all
            .iter()
            .copied()
            .filter(|(s, r)| unsupported(&period.sets[*s].reps[*r], period.sets[*s].kind).is_none())
            .collect();
        let pool = if storable.is_empty() { all } else { storable };
        let pool: Vec<(usize, usize)> = match &request.rules {
            Some(rules) => {
                let fit: Vec<(usize, usize)> = pool
                    .iter()
                    .copied()
                    .filter(|(s, r)| rules.accepts(&as_variant(&period.sets[*s].reps[*r])))
                    .collect();
                if fit.is_empty() {
                    let offered: Vec<Variant> =
                        pool.iter().map(|(s, r)| as_variant(&period.sets[*s].reps[*r])).collect();
                    return Err(Error::InvalidRequest(format!(
                        "no video representation the track rules accept (offered: {})",
                        crate::model::offered(offered.iter())
                    )));
                }
                fit
            }
            None => pool,
        };
        let variants: Vec<Variant> = pool.iter().map(|(s, r)| as_variant(&period.sets[*s].reps[*r])).collect();
        pool[request.quality.pick(&variants)]
    };
    let main_rep = &period.sets[main_pick.0].reps[main_pick.1];
    if let Some(why) = unsupported(main_rep, period.sets[main_pick.0].kind) {
        return Err(Error::Unsupported(why));
    }
    let rules = request.rules.clone().unwrap_or_default();
    let audio: Vec<usize> = if video_sets.is_empty() {
        Vec::new()
    } else if !rules.audio_languages.is_empty() {
        // The first preferred language offered (its main set first), else the main set; of
        // the sets with a representation the device decodes, if any has one.
        let playable: Vec<usize> = audio_sets
            .iter()
            .copied()
            .filter(|i| period.sets[*i].reps.iter().any(|r| rules.accepts(&as_variant(r))))
            .collect();
        let audio_sets = if playable.is_empty() { audio_sets } else { playable };
        let main_first = |sets: Vec<usize>| {
            sets.iter()
                .copied()
                .find(|i| period.sets[*i].roles.iter().any(|r| r == "main"))
                .or_else(|| sets.first().copied())
        };
        rules
            .audio_languages
            .iter()
            .find_map(|l| {
                main_first(
                    audio_sets
                        .iter()
                        .copied()
                        .filter(|i| {
                            TrackRules::wants_language(std::slice::from_ref(l), period.sets[*i].lang.as_deref())
                        })
                        .collect(),
                )
            })
            .or_else(|| main_first(audio_sets.clone()))
            .into_iter()
            .collect()
    } else {
        match &request.audio {
            AudioChoice::None => Vec::new(),
            AudioChoice::All => audio_sets,
            AudioChoice::Languages(l) => {
                audio_sets.iter().copied().filter(|i| lang_wanted(&period.sets[*i], l)).collect()
            }
            AudioChoice::Default => audio_sets
                .iter()
                .copied()
                .find(|i| period.sets[*i].roles.iter().any(|r| r == "main"))
                .or_else(|| audio_sets.first().copied())
                .into_iter()
                .collect(),
        }
    };
    let text: Vec<usize> = match &request.subtitles {
        _ if !rules.subtitle_languages.is_empty() => text_sets
            .into_iter()
            .filter(|i| TrackRules::wants_language(&rules.subtitle_languages, period.sets[*i].lang.as_deref()))
            .collect(),
        SubtitleChoice::None => Vec::new(),
        SubtitleChoice::All => text_sets,
        SubtitleChoice::Languages(l) => text_sets.into_iter().filter(|i| lang_wanted(&period.sets[*i], l)).collect(),
    };
    let mut tracks: Vec<(RenditionRole, usize, usize)> = vec![(RenditionRole::Video, main_pick.0, main_pick.1)];
    tracks.extend(audio.iter().map(|si| (RenditionRole::Audio, *si, pick_rep(&period.sets[*si], request))));
    tracks.extend(text.iter().map(|si| (RenditionRole::Subtitles, *si, pick_rep(&period.sets[*si], request))));
    // A track that cannot be stored (WebM audio, say) is listed as such by `prepare` and left out.
    tracks.retain(|(_, si, ri)| {
        let why = unsupported(&period.sets[*si].reps[*ri], period.sets[*si].kind);
        if let Some(why) = &why {
            tracing::info!(representation = %period.sets[*si].reps[*ri].id, "left out: {why}");
        }
        why.is_none()
    });

    // The HLS master made from it: one variant of the video with every audio track's codecs and
    // bandwidth, audio and WebVTT subtitles as renditions. `TrackInfo` is added once the pieces
    // are known ([`playlists`]).
    let audio_reps: Vec<&Representation> =
        tracks.iter().filter(|t| t.0 == RenditionRole::Audio).map(|(_, s, r)| &period.sets[*s].reps[*r]).collect();
    let mut variant = as_variant(main_rep);
    variant.bandwidth = main_rep.bandwidth + audio_reps.iter().map(|r| r.bandwidth).max().unwrap_or(0);
    let mut codecs: Vec<String> = main_rep.codecs.iter().cloned().collect();
    for r in &audio_reps {
        if let Some(c) = &r.codecs
            && !codecs.contains(c)
        {
            codecs.push(c.clone());
        }
    }
    variant.codecs = (!codecs.is_empty()).then(|| codecs.join(","));
    variant.audio_group = (!audio_reps.is_empty()).then(|| "audio".to_owned());
    let mut renditions = Vec::with_capacity(tracks.len());
    // The default audio is the one whose role is `main`, else the first; the default subtitles
    // only one whose role is `main`.
    let main_audio = tracks
        .iter()
        .find(|(role, si, _)| *role == RenditionRole::Audio && period.sets[*si].roles.iter().any(|r| r == "main"))
        .or_else(|| tracks.iter().find(|(role, _, _)| *role == RenditionRole::Audio))
        .map(|(_, si, _)| *si);
    let mut first_text = true;
    for (role, si, ri) in &tracks {
        let set = &period.sets[*si];
        let rep = &set.reps[*ri];
        let attrs = match role {
            RenditionRole::Video => serde_json::Value::Null,
            RenditionRole::Audio | RenditionRole::Subtitles => {
                let audio = *role == RenditionRole::Audio;
                let default = if audio {
                    main_audio == Some(*si)
                } else {
                    set.roles.iter().any(|r| r == "main") && std::mem::replace(&mut first_text, false)
                };
                let r = Rendition {
                    kind: if audio { RenditionKind::Audio } else { RenditionKind::Subtitles },
                    group_id: if audio { "audio" } else { "subs" }.to_owned(),
                    name: set.label.clone().or_else(|| set.lang.clone()).unwrap_or_else(|| rep.id.clone()),
                    language: set.lang.clone(),
                    default,
                    autoselect: true,
                    forced: set.roles.iter().any(|r| r == "forced-subtitle"),
                    uri: None,
                    channels: rep.channels.as_ref().and_then(|c| c.count()).map(|c| c.to_string()),
                    characteristics: None,
                };
                serde_json::to_value(&r).unwrap_or_default()
            }
            RenditionRole::File => serde_json::Value::Null,
        };
        let picks = picks(mpd, main, *si, *ri);
        let key = picks
            .iter()
            .map(|(p, s, r)| format!("{p}:{}", mpd.periods[*p as usize].sets[*s].reps[*r].id))
            .collect::<Vec<_>>()
            .join(",");
        renditions.push(ChosenRendition {
            role: *role,
            url: base.clone(),
            attrs,
            dash: Some(DashTrack { picks, rep_id: rep.id.clone(), key }),
        });
    }
    Ok(Choice { variant, renditions })
}

/// Each chosen track's pieces as an HLS media playlist, with what the local MPD needs of it
/// (`TrackInfo`) added to its attributes; the HLS master's variant learns whether WebVTT
/// subtitles are among them.
pub(crate) async fn playlists(
    src: &Source,
    mpd: &Mpd,
    base: &Url,
    choice: &mut Choice,
    headers: &HeaderMap,
) -> Result<Vec<Fetched>> {
    let mut out = Vec::with_capacity(choice.renditions.len());
    let mut any_vtt = false;
    let mut infos = Vec::with_capacity(choice.renditions.len());
    let mut all = Vec::with_capacity(choice.renditions.len());
    for r in &choice.renditions {
        let track = r.dash.as_ref().ok_or_else(|| Error::BadSource("not a DASH choice".into()))?;
        all.push(pieces(src, mpd, &track.picks, headers).await?);
    }
    // How long each period plays in the HLS playlists: as long as its longest track's segments
    // (what a player adds up), else as the MPD says.
    let lengths: Vec<Option<f64>> = (0..mpd.periods.len())
        .map(|i| {
            choice
                .renditions
                .iter()
                .zip(&all)
                .filter_map(|(r, ps)| {
                    let k = r.dash.as_ref()?.picks.iter().position(|(pi, _, _)| *pi as usize == i)?;
                    Some(ps[k].duration()).filter(|d| *d > 0.0)
                })
                .reduce(f64::max)
                .or(mpd.periods[i].duration)
                .filter(|d| *d > 0.0)
        })
        .collect();
    for (r, ps) in choice.renditions.iter().zip(&all) {
        // A gap is named like the track's segments, without signature parameters (it is never
        // fetched).
        let like = ps.iter().flat_map(|p| p.segments.first()).next().map_or(base, |s| &s.piece.url);
        let gap_uri = Url::parse(&crate::identity::strip_signature(like)).unwrap_or_else(|_| base.clone());
        let picks = &r.dash.as_ref().ok_or_else(|| Error::BadSource("not a DASH choice".into()))?.picks;
        let per: Vec<(u32, &Period, &Representation, &Pieces)> = picks
            .iter()
            .zip(ps)
            .map(|((pi, si, ri), p)| {
                let period = &mpd.periods[*pi as usize];
                (*pi, period, &period.sets[*si].reps[*ri], p)
            })
            .collect();
        // Every period: the track's pieces, or a gap as long as the period where it does not
        // play, so that every rendition has the same discontinuities.
        let chunk =
            ps.iter().flat_map(|p| p.segments.iter().map(|s| s.d as f64 / p.timescale as f64)).fold(0.0f64, f64::max);
        let spans: Vec<Span<'_>> = (0..mpd.periods.len())
            .filter_map(|i| match picks.iter().position(|(pi, _, _)| *pi as usize == i) {
                Some(k) if !ps[k].segments.is_empty() => Some(Span::Pieces(&ps[k])),
                _ => lengths[i].map(|secs| Span::Gap { secs, chunk, uri: &gap_uri }),
            })
            .collect();
        let (pi, si, ri) =
            picks.iter().copied().find(|(pi, _, _)| *pi as usize == main_period(mpd)).unwrap_or(picks[0]);
        let set = &mpd.periods[pi as usize].sets[si];
        let info = TrackInfo::new(set, &set.reps[ri], &per);
        if info.periods.is_empty() {
            return Err(Error::BadSource(format!("representation {} has no segments", set.reps[ri].id)));
        }
        let text = hls_media_playlist(&spans);
        let playlist = MediaPlaylist::parse(&text, VarSource::Fetched { url: base, imports: None })
            .map_err(|e| Error::BadSource(format!("representation {}: {e}", set.reps[ri].id)))?;
        any_vtt |= r.role == RenditionRole::Subtitles && info.is_webvtt();
        out.push(Fetched { text, base: base.clone(), playlist });
        infos.push(info);
    }
    if any_vtt {
        choice.variant.subtitles_group = Some("subs".to_owned());
    }
    for (r, info) in choice.renditions.iter_mut().zip(infos) {
        let mut attrs = match r.role {
            RenditionRole::Video => serde_json::to_value(&choice.variant).unwrap_or_default(),
            // TTML and text in fMP4 are stored and listed in the MPD; HLS lists WebVTT only.
            RenditionRole::Subtitles if !info.is_webvtt() => serde_json::json!({}),
            _ => r.attrs.clone(),
        };
        if let Some(o) = attrs.as_object_mut() {
            o.insert("dash".into(), serde_json::to_value(&info).unwrap_or_default());
        }
        r.attrs = attrs;
    }
    Ok(out)
}
