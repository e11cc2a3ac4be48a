//! `vodvault`: download, store and play back HLS and MP4 streams for offline viewing.
//!
//! Exit status: 0 success; 1 failure (one line on stderr says why); 2 usage error; 3 the
//! download was paused or interrupted (Ctrl-C, or paused from elsewhere) and can be resumed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod bench;
mod commands;
mod credentials;
mod demo;
mod show;

/// Download, store and play back HLS and MP4 streams for offline viewing.
#[derive(Parser, Debug)]
#[command(name = "vodvault", version, about, long_about = None)]
pub struct Cli {
    /// The vault directory [default: $XDG_DATA_HOME/vodvault or ~/.local/share/vodvault].
    #[arg(long, global = true, env = "VODVAULT_HOME")]
    home: Option<PathBuf>,
    /// The app's key file (make one with `vodvault-keytool generate`).
    #[arg(long, global = true, env = "VODVAULT_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// The app id the key file must be bound to [default: the key file's own].
    #[arg(long, global = true, env = "VODVAULT_APP_ID")]
    app_id: Option<String>,
    /// The SHA-256 (hex) of the certificate the app is signed with, for a key file bound to
    /// signing certificates (`vodvault-keytool generate --signing-cert-sha256`).
    #[arg(long = "signing-cert-sha256", value_name = "HEX", global = true, env = "VODVAULT_SIGNING_CERT_SHA256")]
    signing_cert_sha256: Option<String>,
    /// ApsaraVideo VOD: shell command printing credentials as JSON ({"AccessKeyId": …,
    /// "AccessKeySecret": …, "SecurityToken": …}, an STS AssumeRole answer works), run whenever
    /// fresh ones are needed. Without it: VODVAULT_ACCESS_KEY_ID, VODVAULT_ACCESS_KEY_SECRET and
    /// VODVAULT_SECURITY_TOKEN.
    #[arg(long, global = true, env = "VODVAULT_CREDENTIALS_CMD")]
    credentials_cmd: Option<String>,
    /// ApsaraVideo VOD: the region of the videos (endpoint vod.<region>.aliyuncs.com).
    #[arg(long, global = true, env = "VODVAULT_REGION", default_value = "cn-shanghai")]
    region: String,
    /// ApsaraVideo VOD: an API endpoint URL overriding the region's.
    #[arg(long, global = true, env = "VODVAULT_VOD_ENDPOINT")]
    vod_endpoint: Option<String>,
    /// ApsaraVideo VOD: signature method, v3 (ACS3-HMAC-SHA256) or rpc (HMAC-SHA1).
    #[arg(long, global = true, env = "VODVAULT_VOD_SIGNATURE", default_value = "v3")]
    vod_signature: String,
    /// Progressive files are fetched in byte-range pieces of this size, in parallel (512K, 4M,
    /// …; 0 fetches them on one connection).
    #[arg(long, global = true, env = "VODVAULT_PIECE_SIZE", default_value = "4M", value_parser = parse_size)]
    piece_size: u64,
    /// Cap on the bytes per second all downloads together fetch (512K, 2M, …; binary
    /// multiples), shared evenly between their connections. 0: no cap.
    #[arg(long, global = true, env = "VODVAULT_MAX_RATE", default_value = "0", value_parser = parse_size)]
    max_rate: u64,
    /// Free space downloads leave on the vault's volume: a size (200M), or a percentage of the
    /// volume with at least and at most so much (5%,200M,1G). 0 lets downloads fill it. A
    /// download that would not fit is refused; one that runs short midway waits for room.
    #[arg(long, global = true, env = "VODVAULT_KEEP_FREE", default_value = "5%,200M,1G", value_parser = parse_keep_free)]
    keep_free: vodvault_core::KeepFree,
    /// Bytes the vault's assets may store in all (10G, …; 0: no quota). A download that would go
    /// past it is refused with the numbers.
    #[arg(long, global = true, env = "VODVAULT_QUOTA", default_value = "0", value_parser = parse_size)]
    quota: u64,
    #[command(subcommand)]
    command: Command,
}

/// Which tracks to download, and which part.
#[derive(clap::Args, Debug, Clone)]
pub struct Choices {
    /// best, worst, a height (720p) or a bandwidth ceiling (800k), among the variants the
    /// rules below accept.
    #[arg(long, default_value = "best")]
    pub quality: String,
    /// Audio languages in order of preference (fr,en): one audio track, of the first offered.
    #[arg(long, value_delimiter = ',', value_name = "LANGS")]
    pub audio_lang: Vec<String>,
    /// Subtitle languages (en,zh): every subtitle track in one of them [default: all].
    #[arg(long, value_delimiter = ',', value_name = "LANGS")]
    pub subs: Vec<String>,
    /// No subtitles.
    #[arg(long, conflicts_with = "subs")]
    pub no_subs: bool,
    /// Codecs the player decodes (avc1,hvc1,av01,vp09,mp4a,ec-3,…): variants with others are
    /// left out.
    #[arg(long, value_delimiter = ',', value_name = "CODECS")]
    pub codecs: Vec<String>,
    /// Standard dynamic range only (no HDR10, HLG or Dolby Vision variant).
    #[arg(long)]
    pub no_hdr: bool,
    /// The most audio channels the player plays (2: stereo).
    #[arg(long, value_name = "N")]
    pub max_channels: Option<u32>,
    /// Only this part of an HLS stream: START-END (05:00-20:00, 1:02:03-, -90).
    #[arg(long, value_name = "START-END")]
    pub range: Option<String>,
}

/// The commands.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Show what a source offers: variants, renditions, sizes; for vod:<VideoId>, every
    /// definition and format.
    Prepare {
        /// HLS playlist or progressive file URL, or vod:<VideoId>.
        url: String,
        /// Request headers ("Name: value"), repeatable.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Referer header.
        #[arg(long)]
        referer: Option<String>,
        /// Print JSON (with "pick": the tracks a download with these choices would store, and
        /// its size against the space and the quota).
        #[arg(long)]
        json: bool,
        /// Which tracks, and which part.
        #[command(flatten, next_help_heading = "Choosing tracks")]
        choices: Choices,
    },
    /// Download a source into the vault and wait until it is complete.
    Download {
        /// HLS playlist or progressive file URL, or vod:<VideoId> (ApsaraVideo VOD).
        url: String,
        /// normal (plain files any player opens) or encrypted (sealed for this app only).
        #[arg(long, default_value = "normal")]
        mode: String,
        /// Request headers ("Name: value"), repeatable; sent with every request.
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Referer header.
        #[arg(long)]
        referer: Option<String>,
        /// Title to store with the asset.
        #[arg(long)]
        title: Option<String>,
        /// Concurrent requests for this asset.
        #[arg(long)]
        parallel: Option<usize>,
        /// Shell command printing a fresh URL when the current one expires.
        #[arg(long)]
        refresh_cmd: Option<String>,
        /// Playable offline only until this time: RFC 3339 (2026-12-31T23:59:59Z) or a span
        /// from now (+7d, +12h, +30m).
        #[arg(long)]
        offline_until: Option<String>,
        /// VOD: the definition (FD, LD, SD, HD, OD, 2K, 4K, …) [default: the one --quality picks].
        #[arg(long, help_heading = "ApsaraVideo VOD")]
        definition: Option<String>,
        /// VOD: m3u8, mp4, mpd (DASH) or mp3 [default: m3u8, else mp4, else mpd, else mp3].
        #[arg(long, help_heading = "ApsaraVideo VOD")]
        format: Option<String>,
        /// VOD: video or audio [default: video].
        #[arg(long, help_heading = "ApsaraVideo VOD")]
        stream_type: Option<String>,
        /// VOD: cdn or oss URLs.
        #[arg(long, help_heading = "ApsaraVideo VOD", default_value = "cdn")]
        output_type: String,
        /// VOD: the source (mezzanine) file, checked against its CRC-64.
        #[arg(long, help_heading = "ApsaraVideo VOD")]
        mezzanine: bool,
        /// VOD: do not store the cover, snapshots, sprites and thumbnail track.
        #[arg(long, help_heading = "ApsaraVideo VOD")]
        no_images: bool,
        /// Print one JSON object instead of the id.
        #[arg(long)]
        json: bool,
        /// Serve it to players (127.0.0.1) from the moment it exists: prints the playback URL
        /// first, alone on its line, then downloads; once complete, serves until Ctrl-C.
        #[arg(long)]
        play: bool,
        /// Port for --play [default: any free port].
        #[arg(long, default_value_t = 0, requires = "play")]
        port: u16,
        /// Which tracks, and which part.
        #[command(flatten, next_help_heading = "Choosing tracks")]
        choices: Choices,
    },
    /// Continue interrupted, paused or failed downloads (one, or all) and wait for them.
    Resume {
        /// The asset [default: every unfinished asset].
        id: Option<String>,
        /// Shell command printing a fresh URL when the current one expires.
        #[arg(long)]
        refresh_cmd: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause a download (keeps what is stored).
    Pause {
        /// The asset.
        id: String,
    },
    /// Stop a download for good and delete its files (keeps its record).
    Cancel {
        /// The asset.
        id: String,
    },
    /// Delete an asset: files and record.
    Remove {
        /// The asset.
        id: String,
    },
    /// List the assets.
    List {
        /// Print JSON (the same fields as `show --json`).
        #[arg(long)]
        json: bool,
    },
    /// Show one asset.
    Show {
        /// The asset.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve assets to players on 127.0.0.1; prints their URLs first (one line each, in the
    /// order given), then serves until Ctrl-C or SIGTERM. An asset that is not complete plays
    /// too, and its download continues meanwhile (pieces a player asks for first).
    Serve {
        /// The assets: one or more, all on one server.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Port to listen on [default: any free port].
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Do not resume a paused or failed download: fetch only the pieces players ask for (a
        /// queued one starts when played).
        #[arg(long)]
        no_download: bool,
    },
    /// Move the vault to a new key file (key rotation): every asset's key is re-wrapped, no
    /// media is re-encrypted. The vault must not be in use by another process.
    RotateKey {
        /// The new key file (the current one is --key-file).
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Check every chunk of every stored file of an asset; exit 0 only if all verify.
    Verify {
        /// The asset.
        id: String,
    },
    /// Run the demo: download a bundled AES-128 HLS sample from a local origin into a
    /// throw-away vault (Encrypted mode), then serve it for playback until Ctrl-C.
    Demo {
        /// Check playback over HTTP and exit instead of serving.
        #[arg(long)]
        once: bool,
        /// Port for the playback server [default: any free port].
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Measure the vault's decrypt+verify throughput on one core.
    Bench {
        /// Plaintext bytes to seal and open (e.g. 64M, 1G, 1048576).
        #[arg(long, default_value = "64M", value_parser = parse_size)]
        size: u64,
        /// Plaintext bytes per sealed chunk.
        #[arg(long, default_value = "64K", value_parser = parse_size)]
        chunk_size: u64,
        /// Rounds per measurement; the median is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Minimum measured seconds per round.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Parses `1048576`, `64K`, `64KiB`, `16M`, `1G` (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size like 65536, 64K or 1G"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K, M or G)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}

/// `200M` (exactly), `5%,200M,1G` (5% of the volume, at least 200M, at most 1G), `5%`, `0`.
fn parse_keep_free(s: &str) -> Result<vodvault_core::KeepFree, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let usage = || format!("{s:?}: use a size (200M) or 5%,200M,1G (a percentage 0-100%, at least, at most)");
    let percent =
        |p: &str| p.strip_suffix('%').and_then(|n| n.trim().parse::<u8>().ok()).filter(|n| *n <= 100).ok_or_else(usage);
    match parts.as_slice() {
        [size] if !size.ends_with('%') => Ok(vodvault_core::KeepFree::bytes(parse_size(size)?)),
        [pct, rest @ ..] if rest.len() <= 2 => Ok(vodvault_core::KeepFree {
            percent: percent(pct)?,
            at_least: rest.first().map_or(Ok(0), |p| parse_size(p))?,
            at_most: rest.get(1).map_or(Ok(u64::MAX), |p| parse_size(p))?,
        }),
        _ => Err(usage()),
    }
}

fn run_bench(size: u64, chunk_size: u64, rounds: usize, seconds: f64, json: bool) -> ExitCode {
    let Ok(chunk_size) = u32::try_from(chunk_size) else {
        eprintln!("vodvault: --chunk-size {chunk_size} is too large");
        return ExitCode::from(2);
    };
    if rounds == 0 || !seconds.is_finite() || seconds <= 0.0 {
        eprintln!("vodvault: --rounds and --seconds must be positive");
        return ExitCode::from(2);
    }
    let report = match bench::run(size, chunk_size, rounds, Duration::from_secs_f64(seconds)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vodvault: bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("vodvault: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!(
            "{} · chunk {} B · {} B · median of {} rounds · 1 thread",
            report.suite, report.chunk_size, report.size, report.rounds
        );
        println!("decrypt+verify (in place)   {:6.2} GB/s", report.decrypt_verify_gbps);
        println!("read_at (copy+decrypt)      {:6.2} GB/s", report.read_at_gbps);
        println!("read_at from a file         {:6.2} GB/s", report.read_at_file_gbps);
        println!("seal                        {:6.2} GB/s", report.seal_gbps);
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("VODVAULT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    if let Command::Bench { size, chunk_size, rounds, seconds, json } = cli.command {
        return run_bench(size, chunk_size, rounds, seconds, json);
    }
    if let Command::Demo { once, port } = cli.command {
        return match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(rt) => match rt.block_on(demo::run(once, port)) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("vodvault: demo: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("vodvault: cannot start: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vodvault: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(commands::run(cli))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
