//! The vault commands of the CLI.

use std::collections::HashMap;
use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use vodvault_core::{
    AssetInfo, AssetState, DownloadRequest, DynamicRange, Event, KeyFile, Mode, Quality, RefreshRequest,
    SignatureMethod, SubtitleChoice, TimeRange, TrackRules, UrlRefresher, Vault, VaultConfig, VaultError, VodConfig,
    VodRequest,
};

use crate::show::{human, print_asset, print_prepared, print_preview, sizes};
use crate::{Choices, Cli, Command};

/// Exit status for a download that was paused or interrupted and can be resumed.
const EXIT_PAUSED: u8 = 3;

type CmdResult = Result<ExitCode, String>;

/// Runs a vault command.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("vodvault: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn default_home() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("vodvault"));
    }
    match std::env::var_os("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/vodvault")),
        None => Err("no vault directory: pass --home or set VODVAULT_HOME".into()),
    }
}

async fn open_vault(cli: &Cli) -> Result<Vault, String> {
    let home = match &cli.home {
        Some(h) => h.clone(),
        None => default_home()?,
    };
    let home = std::path::absolute(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let key_path = cli
        .key_file
        .as_ref()
        .ok_or("no key file: pass --key-file or set VODVAULT_KEY_FILE (make one with `vodvault-keytool generate`)")?;
    let bytes = std::fs::read(key_path).map_err(|e| format!("{}: cannot read: {e}", key_path.display()))?;
    let app_id = match &cli.app_id {
        Some(a) => a.clone(),
        None => KeyFile::inspect(&bytes).map_err(|e| format!("{}: {e}", key_path.display()))?.app_id,
    };
    let mut config = VaultConfig::new(home, bytes, &app_id);
    config.signing_cert_sha256.clone_from(&cli.signing_cert_sha256);
    config.piece_bytes = cli.piece_size;
    config.max_rate = Some(cli.max_rate).filter(|r| *r > 0);
    // A command line runs on a computer: unmetered, on power (the default conditions).
    config.requirements.keep_free = cli.keep_free;
    config.quota = Some(cli.quota).filter(|q| *q > 0);
    config.vod = VodConfig {
        region: cli.region.clone(),
        endpoint: cli.vod_endpoint.clone(),
        signature: match cli.vod_signature.to_ascii_lowercase().as_str() {
            "v3" => SignatureMethod::V3,
            "rpc" => SignatureMethod::Rpc,
            other => return Err(format!("--vod-signature {other:?}: use v3 or rpc")),
        },
        ..VodConfig::default()
    };
    let vault = Vault::open(config).await.map_err(|e| match e {
        e @ VaultError::InvalidKeyFile { .. } => format!("{}: {e}", key_path.display()),
        other => other.to_string(),
    })?;
    vault.set_credentials_provider(crate::credentials::provider(cli.credentials_cmd.as_deref()));
    Ok(vault)
}

async fn rotate_key(cli: &Cli, new_key_file: &std::path::Path) -> CmdResult {
    let home = std::path::absolute(cli.home.clone().map_or_else(default_home, Ok)?).map_err(|e| e.to_string())?;
    let old_path = cli.key_file.as_ref().ok_or("no key file: pass --key-file (the vault's current one)")?;
    let old = std::fs::read(old_path).map_err(|e| format!("{}: cannot read: {e}", old_path.display()))?;
    let new = std::fs::read(new_key_file).map_err(|e| format!("{}: cannot read: {e}", new_key_file.display()))?;
    let app_id = match &cli.app_id {
        Some(a) => a.clone(),
        None => KeyFile::inspect(&old).map_err(|e| format!("{}: {e}", old_path.display()))?.app_id,
    };
    let key_id = Vault::rotate_key_file(&home, &app_id, &old, &new).await.map_err(|e| e.to_string())?;
    eprintln!("the vault now belongs to key {key_id}: use {} from now on", new_key_file.display());
    Ok(ExitCode::SUCCESS)
}

fn parse_headers(headers: &[String], referer: Option<&String>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for h in headers {
        let (name, value) = h.split_once(':').ok_or_else(|| format!("--header {h:?}: expected \"Name: value\""))?;
        out.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some(r) = referer {
        out.push(("Referer".into(), r.clone()));
    }
    Ok(out)
}

/// An error as one line, with what to do about missing VOD credentials.
fn describe(e: VaultError) -> String {
    match e {
        VaultError::Credentials { .. } => format!(
            "{e}: set VODVAULT_ACCESS_KEY_ID, VODVAULT_ACCESS_KEY_SECRET (and VODVAULT_SECURITY_TOKEN) or \
             pass --credentials-cmd"
        ),
        other => other.to_string(),
    }
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s.to_ascii_lowercase().as_str() {
        "normal" => Ok(Mode::Normal),
        "encrypted" => Ok(Mode::Encrypted),
        _ => Err(format!("--mode {s:?}: use normal or encrypted")),
    }
}

async fn dispatch(cli: Cli) -> CmdResult {
    if let Command::RotateKey { new_key_file } = &cli.command {
        return rotate_key(&cli, new_key_file).await;
    }
    let vault = open_vault(&cli).await?;
    let result = command(&vault, cli.command).await;
    vault.close().await;
    result
}

async fn command(vault: &Vault, command: Command) -> CmdResult {
    match command {
        Command::Prepare { url, headers, referer, json, choices } => {
            let headers = parse_headers(&headers, referer.as_ref())?;
            let p = vault.prepare(&url, &headers).await.map_err(describe)?;
            let mut request = DownloadRequest::new(&url);
            request.headers = headers;
            apply_choices(&mut request, &choices)?;
            let asked = choices.asked();
            if json {
                // The listing, and what a download with these choices would store.
                let mut out = serde_json::to_value(&p).map_err(|e| e.to_string())?;
                let pick = match vault.preview(&request).await {
                    Ok(preview) => serde_json::to_value(preview).map_err(|e| e.to_string())?,
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                };
                if let Some(o) = out.as_object_mut() {
                    o.insert("pick".into(), pick);
                }
                println!("{out}");
            } else {
                print_prepared(&p, false);
                if asked {
                    let preview = vault.preview(&request).await.map_err(describe)?;
                    print_preview(&preview);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Download {
            url,
            mode,
            choices,
            headers,
            referer,
            title,
            parallel,
            refresh_cmd,
            offline_until,
            definition,
            format,
            stream_type,
            output_type,
            mezzanine,
            no_images,
            json,
            play,
            port,
        } => {
            let mut request = DownloadRequest::new(&url);
            match vodvault_core::parse_vod_source(&url) {
                Some(video_id) => {
                    request.vod = Some(VodRequest {
                        video_id: video_id.to_owned(),
                        definition,
                        format,
                        stream_type,
                        output_type: output_type.parse().map_err(|e| format!("--output-type: {e}"))?,
                        mezzanine,
                        images: !no_images,
                    });
                }
                None if definition.is_some()
                    || format.is_some()
                    || stream_type.is_some()
                    || mezzanine
                    || no_images
                    || output_type != "cdn" =>
                {
                    return Err("--definition, --format, --stream-type, --output-type, --mezzanine and --no-images \
                                are for vod:<VideoId> sources"
                        .into());
                }
                None => {}
            }
            request.offline_until = offline_until.as_deref().map(parse_time).transpose()?;
            request.mode = parse_mode(&mode)?;
            apply_choices(&mut request, &choices)?;
            request.headers = parse_headers(&headers, referer.as_ref())?;
            request.title = title;
            request.parallel = parallel;
            if parallel == Some(0) {
                return Err("--parallel must be at least 1".into());
            }
            set_refresher(vault, refresh_cmd);
            let id = vault.download(request).await.map_err(describe)?;
            if !play {
                return follow(vault, vec![id], Print::json(json)).await;
            }
            let session = vault.play_on_port(&id, port).await.map_err(|e| e.to_string())?;
            print_url(session.url());
            let code = follow(vault, vec![id.clone()], Print::json(json)).await?;
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
            eprintln!("downloaded {id}; still serving it; stop with Ctrl-C");
            wait_for_signal().await;
            session.close();
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { id, refresh_cmd, json } => {
            set_refresher(vault, refresh_cmd);
            let ids = match id {
                Some(id) => {
                    vault.resume(&id).await.map_err(|e| e.to_string())?;
                    vec![id]
                }
                None => vault.resume_all().await.map_err(|e| e.to_string())?,
            };
            if ids.is_empty() {
                eprintln!("nothing to resume");
                return Ok(ExitCode::SUCCESS);
            }
            follow(vault, ids, Print::json(json)).await
        }
        Command::Pause { id } => {
            vault.pause(&id).await.map_err(|e| e.to_string())?;
            eprintln!("paused {id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { id } => {
            vault.cancel(&id).await.map_err(|e| e.to_string())?;
            eprintln!("cancelled {id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Remove { id } => {
            vault.remove(&id).await.map_err(|e| e.to_string())?;
            eprintln!("removed {id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::List { json } => {
            if json {
                // The same fields as `show --json`, images included.
                let mut out = Vec::new();
                for a in vault.assets().await.map_err(|e| e.to_string())? {
                    out.push(asset_json(vault, &a).await?);
                }
                println!("{}", serde_json::Value::Array(out));
            } else {
                print_list(vault).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { ids, port, no_download } => {
            // Every asset opened first: a bad id fails before any URL is printed or any
            // download resumed.
            let mut sessions = Vec::with_capacity(ids.len());
            for id in &ids {
                sessions.push(vault.play_on_port(id, port).await.map_err(|e| e.to_string())?);
            }
            for (id, session) in ids.iter().zip(&sessions) {
                let state = vault.asset(id).await.map_err(|e| e.to_string())?.state;
                let downloading = state != AssetState::Completed && !no_download;
                if downloading {
                    // Queued, interrupted, paused or failed: its download goes on while it plays.
                    vault.resume(id).await.map_err(|e| e.to_string())?;
                }
                print_url(session.url());
                match (state, downloading) {
                    (AssetState::Completed, _) => eprintln!("serving {id}"),
                    (_, true) => eprintln!("serving {id} while it downloads (it stays resumable)"),
                    (AssetState::Queued | AssetState::Downloading, false) => {
                        eprintln!("serving {id} ({state}): playing it downloads it")
                    }
                    (_, false) => eprintln!("serving {id} ({state}): only the pieces players ask for are fetched"),
                }
            }
            eprintln!("stop with Ctrl-C");
            wait_for_signal().await;
            for session in sessions {
                session.close();
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { id } => {
            let bad = vault.verify(&id).await.map_err(|e| e.to_string())?;
            match bad.first() {
                None => {
                    eprintln!("ok: every stored file of {id} verified");
                    Ok(ExitCode::SUCCESS)
                }
                Some(first) => {
                    let more = if bad.len() > 1 { format!(" (and {} more)", bad.len() - 1) } else { String::new() };
                    eprintln!("vodvault: {id}: {first} failed verification{more}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Demo { .. } => Err("the demo opens its own vault".into()),
        Command::RotateKey { .. } => Err("rotate-key runs on a closed vault".into()),
        Command::Show { id, json } => {
            let a = vault.asset(&id).await.map_err(|e| e.to_string())?;
            if json {
                println!("{}", asset_json(vault, &a).await?);
                return Ok(ExitCode::SUCCESS);
            }
            let images = vault.images(&id).await.map_err(|e| e.to_string())?;
            {
                print_asset(&a);
                if !images.is_empty() {
                    let stored = images.iter().filter(|i| i.stored).count();
                    println!("images:    {stored} of {} stored", images.len());
                    for i in &images {
                        let status = match (&i.missing, i.stored) {
                            (_, true) => String::new(),
                            (Some(why), false) => format!("  (missing: {why}; `resume` tries again)"),
                            (None, false) => "  (pending)".into(),
                        };
                        println!("  {:<15} {:>3}  {}{status}", i.kind.as_str(), i.index, i.file);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { .. } => Err("bench runs without a vault".into()),
    }
}

/// Prints a playback URL first, alone on its line (scripts read it), at once.
fn print_url(url: &str) {
    use std::io::Write as _;
    println!("{url}");
    let _ = std::io::stdout().flush();
}

/// Runs `sh -c CMD` for a fresh URL when the current one expires.
struct CmdRefresher {
    cmd: String,
}

impl UrlRefresher for CmdRefresher {
    fn refresh(&self, request: RefreshRequest) -> Pin<Box<dyn Future<Output = Option<String>> + Send + '_>> {
        Box::pin(async move {
            let child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&self.cmd)
                .env("VODVAULT_ASSET_ID", &request.asset_id)
                .env("VODVAULT_SOURCE_URL", &request.source_url)
                .env("VODVAULT_STATUS", request.status.to_string())
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(Duration::from_secs(60), child).await.ok()?.ok()?;
            if !out.status.success() {
                return None;
            }
            String::from_utf8(out.stdout).ok()?.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
        })
    }
}

fn set_refresher(vault: &Vault, cmd: Option<String>) {
    if let Some(cmd) = cmd {
        vault.set_refresher(Some(Arc::new(CmdRefresher { cmd })));
    }
}

/// The asset table of `list`.
pub(crate) async fn print_list(vault: &Vault) -> Result<(), String> {
    let assets = vault.assets().await.map_err(|e| e.to_string())?;
    if assets.is_empty() {
        eprintln!("no assets in {}", vault.dir().display());
        return Ok(());
    }
    println!("{:<16}  {:<11}  {:<9}  {:>19}  TITLE / SOURCE", "ID", "STATE", "MODE", "STORED");
    for a in &assets {
        let title = a.title.clone().unwrap_or_else(|| a.source.clone());
        println!("{:<16}  {:<11}  {:<9}  {:>19}  {title}", a.id, a.state.as_str(), a.mode.as_str(), sizes(a));
    }
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `--offline-until`: RFC 3339, or `+<n><s|m|h|d>` from now; returns Unix ms.
fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("--offline-until {s:?}: use RFC 3339 (2026-12-31T23:59:59Z) or +7d, +12h, +30m, +90s");
    if let Some(span) = s.strip_prefix('+') {
        let (n, unit) = span.split_at(span.len().saturating_sub(1));
        let n: i64 = n.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return Err(bad()),
        };
        return Ok(now_ms() + secs * 1000);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| bad())?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// One asset as `list --json` and `show --json` print it: its info plus its images.
async fn asset_json(vault: &Vault, a: &AssetInfo) -> Result<serde_json::Value, String> {
    let mut v = serde_json::to_value(a).map_err(|e| e.to_string())?;
    let images = vault.images(&a.id).await.map_err(|e| e.to_string())?;
    v["images"] = serde_json::to_value(&images).map_err(|e| e.to_string())?;
    Ok(v)
}

/// The quality, track rules and time range of `choices`, on `request`.
fn apply_choices(request: &mut DownloadRequest, choices: &Choices) -> Result<(), String> {
    request.quality = choices.quality.parse::<Quality>().map_err(|e| format!("--quality: {e}"))?;
    request.range =
        choices.range.as_deref().map(str::parse::<TimeRange>).transpose().map_err(|e| format!("--range: {e}"))?;
    if choices.no_subs {
        request.subtitles = SubtitleChoice::None;
    }
    let rules = TrackRules {
        audio_languages: choices.audio_lang.clone(),
        max_audio_channels: choices.max_channels,
        subtitle_languages: choices.subs.clone(),
        codecs: choices.codecs.clone(),
        ranges: if choices.no_hdr { vec![DynamicRange::Sdr] } else { Vec::new() },
    };
    request.rules = (!rules.is_empty()).then_some(rules);
    Ok(())
}

impl Choices {
    /// Whether any choice was given (beyond the default quality).
    fn asked(&self) -> bool {
        self.quality != "best"
            || !self.audio_lang.is_empty()
            || !self.subs.is_empty()
            || self.no_subs
            || !self.codecs.is_empty()
            || self.no_hdr
            || self.max_channels.is_some()
            || self.range.is_some()
    }
}

/// Waits for `ids`, drawing progress on a terminal; Ctrl-C pauses them.
/// What [`follow`] prints on stdout for each asset that completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Print {
    /// Its id.
    Id,
    /// `show --json` of it.
    Json,
    /// Nothing.
    Nothing,
}

impl Print {
    fn json(json: bool) -> Self {
        if json { Print::Json } else { Print::Id }
    }
}

pub(crate) async fn follow(vault: &Vault, ids: Vec<String>, print: Print) -> CmdResult {
    let json = print == Print::Json;
    let mut events = vault.subscribe();
    let draw = std::io::stderr().is_terminal();
    let multi =
        MultiProgress::with_draw_target(if draw { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let style = ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30.cyan/blue} {msg}")
        .map_err(|e| e.to_string())?
        .progress_chars("█▉▊▋▌▍▎▏ ");
    let bars: HashMap<String, ProgressBar> = ids
        .iter()
        .map(|id| {
            let bar = multi.add(ProgressBar::new(1000));
            bar.set_style(style.clone());
            bar.set_prefix(id.clone());
            (id.clone(), bar)
        })
        .collect();
    // A wait that began before we listened is said once now.
    let say_waiting = |id: &str, state: AssetState| {
        let hint = if state == AssetState::WaitingForStorage {
            " (free space, or lower --keep-free / raise --quota); it goes on by itself"
        } else {
            "; it goes on by itself"
        };
        multi.suspend(|| eprintln!("vodvault: {id}: {state}{hint}"));
    };
    for id in &ids {
        if let Ok(a) = vault.asset(id).await
            && a.state.is_waiting()
        {
            say_waiting(id, a.state);
        }
    }
    let waits = futures_wait(vault, &ids);
    tokio::pin!(waits);
    let results = loop {
        tokio::select! {
            r = &mut waits => break r,
            _ = tokio::signal::ctrl_c() => {
                for id in &ids {
                    let _ = vault.pause(id).await;
                }
                multi.clear().ok();
                for id in &ids {
                    eprintln!("vodvault: paused {id}; continue with `vodvault resume {id}`");
                }
                return Ok(ExitCode::from(EXIT_PAUSED));
            }
            ev = events.recv() => {
                if let Ok(Event::State { id, state, .. }) = &ev
                    && state.is_waiting()
                    && bars.contains_key(id)
                {
                    say_waiting(id, *state);
                }
                if let Ok(Event::Progress(p)) = ev
                    && let Some(bar) = bars.get(&p.id)
                {
                    if let Some(e) = p.bytes_expected.filter(|e| *e > 0) {
                        bar.set_position(p.bytes_done.min(e) * 1000 / e);
                    }
                    let expected = p.bytes_expected.map_or(String::from("?"), |e| format!("{}{}", if p.expected_exact { "" } else { "~" }, human(e)));
                    let eta = p.eta_secs.map_or(String::new(), |s| format!(" · eta {s:.0}s"));
                    bar.set_message(format!(
                        "{} / {expected} · {}/s{eta} · {}/{} pieces",
                        human(p.bytes_done),
                        human(p.speed_bps as u64),
                        p.segments_done,
                        p.segments_total
                    ));
                }
            }
        }
    };
    multi.clear().ok();
    let mut code = ExitCode::SUCCESS;
    for (id, result) in ids.iter().zip(results) {
        match result {
            Ok(info) => {
                // Images are extras: a completed asset may lack some; say so (resume retries).
                let missing = vault.images(id).await.map(|i| i.iter().filter(|i| !i.stored).count()).unwrap_or(0);
                if missing > 0 {
                    eprintln!(
                        "vodvault: {id}: {missing} image(s) could not be fetched (see `vodvault show {id}`; `vodvault resume {id}` tries again)"
                    );
                }
                match print {
                    Print::Json => println!("{}", serde_json::to_string(&info).map_err(|e| e.to_string())?),
                    Print::Id => println!("{}", info.id),
                    Print::Nothing => {}
                }
            }
            Err(VaultError::Failed { reason }) => {
                eprintln!("vodvault: {id}: download failed: {reason}");
                print_state_json(vault, id, json).await;
                code = ExitCode::FAILURE;
            }
            Err(VaultError::InvalidState { state: AssetState::Paused, .. }) => {
                eprintln!("vodvault: {id} was paused; continue with `vodvault resume {id}`");
                print_state_json(vault, id, json).await;
                code = ExitCode::from(EXIT_PAUSED);
            }
            Err(e) => {
                eprintln!("vodvault: {id}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

async fn print_state_json(vault: &Vault, id: &str, json: bool) {
    if json && let Ok(info) = vault.asset(id).await {
        println!("{}", serde_json::to_string(&info).unwrap_or_default());
    }
}

async fn futures_wait(vault: &Vault, ids: &[String]) -> Vec<Result<AssetInfo, VaultError>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let (v, id) = (vault.clone(), id.clone());
        set.spawn(async move { (i, v.wait(&id).await) });
    }
    let mut out: Vec<Option<Result<AssetInfo, VaultError>>> = ids.iter().map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        if let Ok((i, res)) = r {
            out[i] = Some(res);
        }
    }
    out.into_iter().map(|r| r.unwrap_or(Err(VaultError::Closed))).collect()
}
