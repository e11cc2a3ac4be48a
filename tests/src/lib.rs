//! Helpers shared by the end-to-end tests in `tests/tests/`.
//!
//! The tests run the real binaries. `scripts/test` builds them first (`cargo build --workspace
//! --bins`); [`bin`] finds them next to the test executable, in the same target profile.

// Test support: failing loudly is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

pub mod cli;
pub mod origin;
pub mod vod;
pub mod vod_app;

/// Path of the workspace binary `name` (e.g. `vodvault`, `vodvault-keytool`) of the profile the
/// tests were built with.
///
/// # Panics
/// If the binary has not been built, with the command that builds it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target profile directory");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (scripts/test does) first",
        path.display()
    );
    path
}

/// `payload` as the body of a structurally valid ISO BMFF file (an `ftyp` box, then an `mdat`
/// box holding it): what vodvault accepts as a progressive MP4, for tests that need a file of
/// some size and content but no real video.
pub fn mp4_wrap(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 40);
    v.extend_from_slice(&20u32.to_be_bytes());
    v.extend_from_slice(b"ftypisom\x00\x00\x02\x00isom");
    v.extend_from_slice(&1u32.to_be_bytes());
    v.extend_from_slice(b"mdat");
    v.extend_from_slice(&(payload.len() as u64 + 16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The committed test media (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A vault in a temporary directory with a fresh key file, fast retries and short timeouts.
pub struct TestVault {
    /// The vault directory (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The open vault.
    pub vault: vodvault_core::Vault,
    /// The key file's bytes.
    pub key_file: Vec<u8>,
}

/// The app id of test vaults.
pub const APP_ID: &str = "com.example.vodvault.tests";

/// Opens a test vault; `tune` adjusts the configuration first.
pub async fn test_vault(tune: impl FnOnce(&mut vodvault_core::VaultConfig)) -> TestVault {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = vodvault_core::KeyFile::generate(APP_ID).expect("key file");
    let key_file = key.to_bytes().to_vec();
    let mut config = vodvault_core::VaultConfig::new(dir.path().to_owned(), key_file.clone(), APP_ID);
    config.retry = vodvault_core::RetryPolicy {
        attempts: 5,
        base_delay: std::time::Duration::from_millis(20),
        max_delay: std::time::Duration::from_millis(200),
        max_retry_after: std::time::Duration::from_secs(2),
    };
    config.http.read_timeout = std::time::Duration::from_secs(2);
    config.http.connect_timeout = std::time::Duration::from_secs(2);
    tune(&mut config);
    let vault = vodvault_core::Vault::open(config).await.expect("open vault");
    TestVault { dir, vault, key_file }
}

impl TestVault {
    /// The plaintext of stored piece `name` of asset `id` (reading and verifying a sealed file
    /// in Encrypted mode).
    pub async fn read_piece(&self, id: &str, name: &str, mode: vodvault_core::Mode) -> Vec<u8> {
        read_piece(self.dir.path(), &self.key_file, id, name, mode).await
    }

    /// Every file under the asset's directory, relative names.
    pub fn files(&self, id: &str) -> Vec<String> {
        files(self.dir.path(), id)
    }

    /// Every file under the vault's `assets/` directory, relative names.
    pub fn files_under_assets(&self) -> Vec<String> {
        let root = self.dir.path().join("assets");
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out
    }
}

/// The content key of an Encrypted asset in the vault at `vault_dir`, unwrapped from the catalog
/// the way the vault does it.
pub async fn content_key(vault_dir: &std::path::Path, key_file: &[u8], id: &str) -> vodvault_core::ContentKey {
    vodvault_core::testing::content_key(vault_dir, key_file, APP_ID, id).await.expect("content key")
}

/// The committed test media file `path` (under `tests/fixtures`).
pub fn plain(path: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Makes a key file for `app_id` at `path` with the `vodvault-keytool` binary, as an operator
/// would; returns its bytes.
pub fn keytool_generate(path: &std::path::Path, app_id: &str) -> Vec<u8> {
    let out = std::process::Command::new(bin("vodvault-keytool"))
        .args(["generate", "--app-id", app_id, "--out"])
        .arg(path)
        .output()
        .expect("run vodvault-keytool");
    assert!(out.status.success(), "keytool: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(path).expect("read the key file")
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    i64::try_from(since.as_millis()).expect("far future")
}

/// The plaintext of stored piece `name` of asset `id` in the vault at `vault_dir`.
pub async fn read_piece(
    vault_dir: &std::path::Path,
    key_file: &[u8],
    id: &str,
    name: &str,
    mode: vodvault_core::Mode,
) -> Vec<u8> {
    let dir = vault_dir.join("assets").join(id);
    match mode {
        vodvault_core::Mode::Normal => std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")),
        vodvault_core::Mode::Encrypted => {
            let key = content_key(vault_dir, key_file, id).await;
            let path = dir.join(format!("{name}.vvs"));
            let context = vodvault_core::testing::seal_context(id, name);
            let reader =
                vodvault_core::SealedReader::open_path(&path, &key, &context).unwrap_or_else(|e| panic!("{name}: {e}"));
            reader.read_all().expect("read sealed")
        }
    }
}

/// Every file under an asset's directory, relative names, sorted.
pub fn files(vault_dir: &std::path::Path, id: &str) -> Vec<String> {
    let root = vault_dir.join("assets").join(id);
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

/// Waits (at most a minute) for an asset to finish.
pub async fn wait(vault: &vodvault_core::Vault, id: &str) -> vodvault_core::Result<vodvault_core::AssetInfo> {
    tokio::time::timeout(std::time::Duration::from_secs(60), vault.wait(id))
        .await
        .expect("download did not finish within 60 s")
}

/// Whether `tool` runs here; prints why a test is skipped when not.
pub fn have(tool: &str) -> bool {
    let ok = std::process::Command::new(tool).arg("-version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: {tool} is not installed (apt-get install ffmpeg)");
    }
    ok
}

/// Files of the pieces the catalog at `vault_dir` has as done (stored and durable) for `id`,
/// read straight from SQLite without opening the vault.
pub async fn done_files(vault_dir: &std::path::Path, id: &str) -> Vec<String> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(vault_dir.join("catalog.sqlite")).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.expect("catalog");
    let files = sqlx::query_scalar("SELECT file FROM segments WHERE asset_id = ? AND state = 'done' AND size > 0")
        .bind(id)
        .fetch_all(&pool)
        .await
        .expect("query");
    pool.close().await;
    files
}

/// For a best-quality download of `hls-aes/master.m3u8`: the fixture plaintext a stored piece
/// came from, and the origin path it was fetched from.
pub fn hls_aes_source(file: &str) -> (String, String) {
    let (dir, name) = file.split_once('/').expect("rendition/file");
    let n: usize =
        name.trim_start_matches("seg-").split('.').next().and_then(|n| n.parse().ok()).expect("segment number");
    let plain = match dir {
        "video" => format!("hls-aes/plain/high/seg-{n}.ts"),
        "audio-1" => format!("hls-aes/plain/audio-en/seg-{n}.ts"),
        "subtitles-2" => format!("hls-aes/subs-en/sub-{n}.vtt"),
        other => panic!("unexpected rendition {other}"),
    };
    let origin = format!("/{}", plain.replace("/plain/", "/"));
    (plain, origin)
}

/// A response as a raw HTTP/1.1 client saw it.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body bytes received (possibly cut short), chunked transfer encoding removed.
    pub body: Vec<u8>,
    /// A chunked body: whether its last (empty) chunk arrived.
    chunked_end: Option<bool>,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether the body is as long as `Content-Length` says (or, chunked, ended properly).
    pub fn complete(&self) -> bool {
        match self.chunked_end {
            Some(ended) => ended,
            None => self.header("content-length").and_then(|v| v.parse::<usize>().ok()) == Some(self.body.len()),
        }
    }
}

/// One request over a fresh loopback connection (`Connection: close`), read to the end, with a
/// 30 s timeout. Nothing is interpreted: what the server sent is what is returned.
pub fn raw_http(method: &str, url: &str, headers: &[(&str, &str)]) -> RawResponse {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut tcp = std::net::TcpStream::connect(host).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    // A server that cuts a response closes the connection: read what arrived.
    let _ = tcp.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = if method == "HEAD" { Vec::new() } else { raw[split + 4..].to_vec() };
    let chunked = |h: &Vec<(String, String)>| {
        h.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    };
    let mut chunked_end = None;
    if chunked(&headers) {
        let (data, ended) = dechunk(&body);
        (body, chunked_end) = (data, Some(ended));
    }
    RawResponse { status, headers, body, chunked_end }
}

/// The data of a chunked body as far as it arrived, and whether its last (empty) chunk did.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..eol]);
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else { break };
        raw = &raw[eol + 2..];
        if n == 0 {
            return (out, true);
        }
        let take = n.min(raw.len());
        out.extend_from_slice(&raw[..take]);
        if take < n {
            break;
        }
        raw = &raw[(take + 2).min(raw.len())..];
    }
    (out, false)
}

/// `ffmpeg -f framemd5` as [`framemd5`], killed after `secs` seconds (a player that hangs fails
/// the test instead of holding it).
pub fn framemd5_within(secs: u32, input: &str, before: &[&str], after: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("timeout")
        .args(["-s", "KILL", &secs.to_string(), "ffmpeg", "-hide_banner", "-nostdin", "-v", "error"])
        .args(before)
        .args(["-i", input])
        .args(after)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "ffmpeg on {input} ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
}

/// `ffmpeg -f framemd5` of `input` (hash lines only), with `before` arguments placed before
/// `-i` (e.g. a seek) and `after` before the output (e.g. `-map`).
pub fn framemd5(input: &str, before: &[&str], after: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error"])
        .args(before)
        .args(["-i", input])
        .args(after)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "ffmpeg on {input}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
}

/// A media playlist of `n` 2 s segments, each `packets` MPEG-TS packets of its own content, in
/// `dir`; returns the segments' bytes.
pub fn ts_stream(dir: &std::path::Path, n: usize, packets: usize) -> Vec<Vec<u8>> {
    let mut playlist = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    let mut segments = Vec::with_capacity(n);
    for i in 0..n {
        let mut seg = Vec::with_capacity(packets * 188);
        for p in 0..packets {
            let mut packet = [0u8; 188];
            packet[0] = 0x47;
            for (k, b) in packet[4..].iter_mut().enumerate() {
                *b = (i * 31 + p * 7 + k) as u8;
            }
            seg.extend_from_slice(&packet);
        }
        std::fs::write(dir.join(format!("s{i:04}.ts")), &seg).unwrap();
        playlist.push_str(&format!("#EXTINF:2.000,\ns{i:04}.ts\n"));
        segments.push(seg);
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(dir.join("stream.m3u8"), playlist).unwrap();
    segments
}
