//! What the command prints about sources and assets, for people (the `--json` forms are the
//! records themselves).

use vodvault_core::{AssetInfo, Prepared, Preview};

pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

pub(crate) fn sizes(a: &AssetInfo) -> String {
    match a.bytes_expected {
        Some(e) => format!("{} / {}{}", human(a.bytes_done), if a.expected_exact { "" } else { "~" }, human(e)),
        None => human(a.bytes_done),
    }
}

pub(crate) fn print_asset(a: &AssetInfo) {
    println!("id:        {}", a.id);
    if let Some(t) = &a.title {
        println!("title:     {t}");
    }
    println!("state:     {}", a.state);
    println!("mode:      {}", a.mode);
    println!("kind:      {}", a.kind);
    println!("source:    {}", a.source);
    println!("stored:    {}{}", sizes(a), if a.expected_exact { "" } else { " (estimate)" });
    println!("segments:  {} / {}", a.segments_done, a.segments_total);
    if let Some(d) = a.duration_secs {
        println!("duration:  {d:.1} s");
    }
    if let Some(r) = &a.range {
        println!("range:     {r} (the segments that overlap it)");
    }
    if let Some(k) = &a.key_id {
        println!("key id:    {k}");
    }
    if let Some(v) = &a.vod {
        let what = if v.mezzanine {
            "source file".to_owned()
        } else {
            format!("{} {} {}", v.definition, v.format, v.stream_type)
        };
        println!(
            "vod:       video {} · {what}{}",
            v.video_id,
            v.job_id.as_deref().map(|j| format!(" · job {j}")).unwrap_or_default()
        );
    }
    println!("dir:       {}", a.dir.display());
    if let Some(p) = &a.path {
        println!("path:      {}", p.display());
    }
    if let Some(f) = &a.failure {
        println!("failure:   {f}");
    }
}

pub(crate) fn print_preview(p: &Preview) {
    println!("a download with these choices stores:");
    for t in &p.tracks {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(t.name.clone());
        parts.extend(t.language.clone());
        parts.extend(t.height.map(|h| format!("{h}p")));
        parts.extend(t.codecs.clone());
        parts.extend(t.video_range.clone());
        parts.extend(t.channels.as_ref().map(|c| format!("{c} ch")));
        parts.extend(t.bandwidth.map(|b| format!("{} kbit/s", b / 1000)));
        let secs = t.duration_secs.map(|d| format!(", {d:.1} s")).unwrap_or_default();
        println!("  {:<10} {} ({} segments{secs})", t.role.as_str(), parts.join(" "), t.segments);
    }
    let s = &p.space;
    let size =
        s.needed.map_or("size unknown".to_owned(), |n| format!("{}{}", if s.exact { "" } else { "~" }, human(n)));
    let fits = match (s.fits_space, s.fits_quota) {
        (true, true) => "fits".to_owned(),
        (false, _) => format!("does not fit: {} available", human(s.available)),
        (true, false) => {
            format!("over the quota ({} of {} used)", human(s.used), s.quota.map(human).unwrap_or_default())
        }
    };
    println!("  {size}: {fits}");
}

pub(crate) fn print_prepared(p: &Prepared, json: bool) {
    if json {
        println!("{}", serde_json::to_string(p).unwrap_or_default());
        return;
    }
    match p {
        Prepared::Hls { master, variants, renditions, duration_secs, segments, variant_bytes, bytes_exact } => {
            println!("HLS {} playlist", if *master { "master" } else { "media" });
            for (i, v) in variants.iter().enumerate() {
                let res = match (v.width, v.height) {
                    (Some(w), Some(h)) => format!("{w}x{h}"),
                    _ => "-".into(),
                };
                let size = variant_bytes
                    .get(i)
                    .copied()
                    .flatten()
                    .map(|b| format!("  {}{}", if *bytes_exact { "" } else { "~" }, human(b)))
                    .unwrap_or_default();
                println!(
                    "  variant {i}: {:>9} bit/s  {:>9}  {}{}{}{size}",
                    v.bandwidth,
                    res,
                    v.codecs.clone().unwrap_or_default(),
                    v.video_range.as_deref().map(|r| format!(" {r}")).unwrap_or_default(),
                    v.frame_rate.map(|f| format!("  {f} fps")).unwrap_or_default()
                );
            }
            for r in renditions {
                println!(
                    "  {:?} {:?} \"{}\" lang={} default={}",
                    r.kind,
                    r.group_id,
                    r.name,
                    r.language.clone().unwrap_or_else(|| "-".into()),
                    r.default
                );
            }
            if let (Some(d), Some(n)) = (duration_secs, segments) {
                println!("  {n} segments, {d:.1} s");
            }
        }
        Prepared::Dash { duration_secs, periods, adaptation_sets } => {
            println!(
                "DASH MPD: {} period{}{}",
                periods,
                if *periods == 1 { "" } else { "s" },
                duration_secs.map(|d| format!(", {d:.1} s")).unwrap_or_default()
            );
            for s in adaptation_sets {
                println!(
                    "  {} set {}{}{}{}",
                    s.content_type,
                    s.id.as_deref().unwrap_or("-"),
                    s.language.as_deref().map(|l| format!(" lang={l}")).unwrap_or_default(),
                    if s.roles.is_empty() { String::new() } else { format!(" role={}", s.roles.join(",")) },
                    s.mime_type.as_deref().map(|m| format!(" {m}")).unwrap_or_default()
                );
                for r in &s.representations {
                    let res = match (r.width, r.height) {
                        (Some(w), Some(h)) => format!("{w}x{h}"),
                        _ => "-".into(),
                    };
                    let size = match (r.size, r.size_exact) {
                        (Some(b), true) => format!("{b} bytes"),
                        (Some(b), false) => format!("~{b} bytes (estimate)"),
                        (None, _) => "? bytes".into(),
                    };
                    println!(
                        "    {:<12} {:>9} bit/s  {:>9}  {:<24} {}{}{}{}{}",
                        r.id,
                        r.bandwidth,
                        res,
                        r.codecs.as_deref().unwrap_or("-"),
                        size,
                        r.frame_rate.map(|f| format!("  {f} fps")).unwrap_or_default(),
                        r.channels.map(|c| format!("  {c} ch")).unwrap_or_default(),
                        r.sampling_rate.map(|h| format!("  {h} Hz")).unwrap_or_default(),
                        r.unsupported.as_deref().map(|w| format!("  NOT DOWNLOADABLE: {w}")).unwrap_or_default()
                    );
                }
            }
        }
        Prepared::File { size, content_type, accept_ranges } => {
            println!(
                "file: {} bytes, {}, {}",
                size.map_or("unknown".into(), |s| s.to_string()),
                content_type.clone().unwrap_or_else(|| "unknown type".into()),
                if *accept_ranges { "resumable" } else { "not resumable (no range support)" }
            );
        }
        Prepared::Vod { video_id, title, duration_secs, status, streams, mezzanine } => {
            println!(
                "VOD video {video_id}: {}{}{}",
                title.as_deref().unwrap_or("(untitled)"),
                duration_secs.map(|d| format!(", {d:.1} s")).unwrap_or_default(),
                status.as_deref().map(|s| format!(", {s}")).unwrap_or_default()
            );
            for s in streams {
                let res = match (s.width, s.height) {
                    (Some(w), Some(h)) => format!("{w}x{h}"),
                    _ => "-".into(),
                };
                println!(
                    "  {:<4} {:<5} {:<5} {:>9}  {:>12}  {}",
                    s.definition,
                    s.format,
                    s.stream_type,
                    res,
                    s.size.map_or("? bytes".into(), |b| format!("{b} bytes")),
                    s.unsupported.as_deref().map_or_else(
                        || s.encrypt_type.as_deref().map(|t| format!("encrypted ({t})")).unwrap_or_default(),
                        |why| format!("NOT DOWNLOADABLE: {why}")
                    )
                );
            }
            if let Some(m) = mezzanine {
                println!(
                    "  source file: {}{}",
                    m.size.map_or("? bytes".into(), |b| format!("{b} bytes")),
                    m.crc64.map(|c| format!(", CRC-64 {c}")).unwrap_or_default()
                );
            }
        }
    }
}
