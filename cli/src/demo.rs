//! `vodvault demo`: the whole product in one command, offline.
//!
//! Generates a throw-away key file and vault, serves a bundled AES-128 HLS sample (made by
//! `cli/demo/make.sh`) from a small origin on 127.0.0.1, downloads it in Encrypted mode with a
//! progress bar, prints the catalog, and serves it through the decrypt-and-play server until
//! Ctrl-C. With `--once` it checks playback itself — every byte the player would get, against an
//! independent decryption of the bundled source — and exits.

use std::convert::Infallible;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use vodvault_core::hls::aes128::{Aes128Key, decrypt_segment};
use vodvault_core::hls::media::{Encryption, MediaPlaylist};
use vodvault_core::hls::vars::VarSource;
use vodvault_core::{DownloadRequest, KeyFile, Mode, Vault, VaultConfig};

const APP_ID: &str = "com.example.vodvault.demo";

/// The bundled sample: (name, bytes).
const MEDIA: &[(&str, &[u8])] = &[
    ("master.m3u8", include_bytes!("../demo/media/master.m3u8")),
    ("stream.m3u8", include_bytes!("../demo/media/stream.m3u8")),
    ("a.key", include_bytes!("../demo/media/a.key")),
    ("b.key", include_bytes!("../demo/media/b.key")),
    ("seg-0.ts", include_bytes!("../demo/media/seg-0.ts")),
    ("seg-1.ts", include_bytes!("../demo/media/seg-1.ts")),
    ("seg-2.ts", include_bytes!("../demo/media/seg-2.ts")),
];

fn media(name: &str) -> Option<&'static [u8]> {
    MEDIA.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Serves the bundled sample on 127.0.0.1; returns its base URL.
async fn start_origin() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let name = req.uri().path().trim_start_matches('/');
                    let resp = match media(name) {
                        Some(body) => Response::new(Full::new(Bytes::from_static(body))),
                        None => {
                            let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
                            *r.status_mut() = StatusCode::NOT_FOUND;
                            r
                        }
                    };
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}/"))
}

/// Runs the demo.
pub async fn run(once: bool, port: u16) -> Result<ExitCode, String> {
    let work = tempfile::Builder::new().prefix("vodvault-demo-").tempdir().map_err(|e| e.to_string())?;
    let key = KeyFile::generate(APP_ID).map_err(|e| e.to_string())?;
    let key_path = work.path().join("demo.vvkey");
    key.write_to(&key_path, false).map_err(|e| e.to_string())?;
    println!("key file   {} (app id {APP_ID}, key id {})", key_path.display(), key.key_id());

    let origin = start_origin().await.map_err(|e| format!("cannot start the sample origin: {e}"))?;
    let source = format!("{origin}master.m3u8");
    println!("origin     {source}  (bundled AES-128 HLS sample, 3 segments, key rotation)");

    let vault_dir = work.path().join("vault");
    let vault = Vault::open(VaultConfig::new(vault_dir.clone(), key.to_bytes().to_vec(), APP_ID))
        .await
        .map_err(|e| e.to_string())?;
    println!("vault      {}\n", vault_dir.display());

    let mut request = DownloadRequest::new(&source);
    request.mode = Mode::Encrypted;
    request.title = Some("vodvault demo".into());
    let id = vault.download(request).await.map_err(|e| e.to_string())?;
    println!("download   {id} (Encrypted mode: every byte sealed as it arrives)");
    let code = crate::commands::follow(&vault, vec![id.clone()], crate::commands::Print::Nothing).await?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    println!();
    crate::commands::print_list(&vault).await?;
    println!();

    let session = vault.play_on_port(&id, port).await.map_err(|e| e.to_string())?;
    let url = session.url().to_owned();
    println!("playing    {url}");
    println!("           decrypted and verified on the fly from sealed files; open it with:");
    println!("           ffplay '{url}'   or   vlc '{url}'");

    let result = if once {
        check_playback(&url, session.base_url()).await
    } else {
        println!("\nserving until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        Ok(ExitCode::SUCCESS)
    };
    session.close();
    vault.close().await;
    result
}

/// Fetches every file a player would, through the playback server, and checks it against an
/// independent decryption of the bundled source.
async fn check_playback(url: &str, base: &str) -> Result<ExitCode, String> {
    let get = fetch;
    let master = get(url.to_owned()).await?;
    let master = String::from_utf8_lossy(&master);
    if !master.contains("video/index.m3u8") {
        return Err(format!("unexpected master playlist from the server:\n{master}"));
    }
    let served = String::from_utf8_lossy(&get(format!("{base}video/index.m3u8")).await?).into_owned();
    let served = MediaPlaylist::parse(&served, VarSource::Nothing).map_err(|e| format!("served playlist: {e}"))?;
    let source =
        MediaPlaylist::parse(&String::from_utf8_lossy(media("stream.m3u8").unwrap_or_default()), VarSource::Nothing)
            .map_err(|e| format!("bundled playlist: {e}"))?;
    if served.segments.len() != source.segments.len() {
        return Err("the served playlist does not list every segment".into());
    }
    let mut total = 0;
    for (i, (s, src)) in served.segments.iter().zip(&source.segments).enumerate() {
        let got = get(format!("{base}video/{}", s.uri)).await?;
        let mut want = media(&src.uri).unwrap_or_default().to_vec();
        if let Encryption::Aes128 { key, iv } = src.encryption {
            let k =
                Aes128Key::from_bytes(media(&source.keys[key].uri).unwrap_or_default()).map_err(|e| e.to_string())?;
            decrypt_segment(&k, iv, &mut want).map_err(|e| e.to_string())?;
        }
        if got[..] != want[..] {
            return Err(format!("segment {i} served by the player URL differs from the source"));
        }
        total += got.len();
    }
    println!(
        "\nverified   {} segments, {total} bytes served = the source, decrypted independently",
        served.segments.len()
    );
    // If ffprobe is here, let a real player's demuxer and decoders read it too.
    if let Ok(out) = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height", "-of", "csv=p=0", url])
        .output()
        && out.status.success()
    {
        // The HLS demuxer lists each stream once per program: keep each once.
        let mut streams: Vec<String> = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()) {
            if !streams.iter().any(|s| s == line) {
                streams.push(line.to_owned());
            }
        }
        println!("ffprobe    {}", streams.join("; "));
    }
    Ok(ExitCode::SUCCESS)
}

/// GET `url` from the loopback playback server, as a player would.
async fn fetch(url: String) -> Result<Bytes, String> {
    let u = url::Url::parse(&url).map_err(|e| e.to_string())?;
    let fail = |e: &dyn std::fmt::Display| format!("{u}: {e}");
    let addr = (u.host_str().unwrap_or("127.0.0.1"), u.port().unwrap_or(80));
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| fail(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.map_err(|e| fail(&e))?;
    let conn = tokio::spawn(conn);
    let req = Request::get(u.path()).header("host", addr.0).body(http_body_util::Empty::<Bytes>::new());
    let resp = sender.send_request(req.map_err(|e| fail(&e))?).await.map_err(|e| fail(&e))?;
    if !resp.status().is_success() {
        return Err(fail(&resp.status()));
    }
    let body = resp.into_body().collect().await.map_err(|e| fail(&e))?.to_bytes();
    drop(sender);
    let _ = conn.await;
    Ok(body)
}
