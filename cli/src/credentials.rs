//! ApsaraVideo VOD credentials for the CLI: a command that prints them (run whenever fresh ones
//! are needed), or the environment.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use vodvault_core::{Credentials, CredentialsProvider, CredentialsReason, StaticCredentials};

/// The credentials source the options and environment describe, if any: `--credentials-cmd`,
/// else `VODVAULT_ACCESS_KEY_ID` / `VODVAULT_ACCESS_KEY_SECRET` / `VODVAULT_SECURITY_TOKEN`
/// (and `VODVAULT_HLS_URI_TOKEN` for HLS-encrypted videos whose key service checks a token).
pub fn provider(cmd: Option<&str>) -> Option<Arc<dyn CredentialsProvider>> {
    if let Some(cmd) = cmd.filter(|c| !c.trim().is_empty()) {
        return Some(Arc::new(CommandCredentials { cmd: cmd.to_owned() }));
    }
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
    let (id, secret) = (var("VODVAULT_ACCESS_KEY_ID")?, var("VODVAULT_ACCESS_KEY_SECRET")?);
    let token = var("VODVAULT_SECURITY_TOKEN");
    let credentials =
        Credentials::new(&id, &secret, token.as_deref()).with_hls_uri_token(var("VODVAULT_HLS_URI_TOKEN").as_deref());
    Some(Arc::new(StaticCredentials(credentials)))
}

/// Runs `sh -c CMD` and reads credentials from its standard output (JSON). The reason is in
/// `VODVAULT_CREDENTIALS_REASON` (`initial`, `rejected` with `VODVAULT_ERROR_CODE`, or
/// `url_expired` with `VODVAULT_ASSET_ID`).
struct CommandCredentials {
    cmd: String,
}

/// What the command prints: the AccessKey fields, as STS `AssumeRole` names them (optionally
/// inside `Credentials`) or in snake case.
#[derive(Deserialize)]
struct Printed {
    #[serde(alias = "access_key_id")]
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
    #[serde(alias = "access_key_secret")]
    #[serde(rename = "AccessKeySecret")]
    access_key_secret: String,
    #[serde(alias = "security_token")]
    #[serde(rename = "SecurityToken", default)]
    security_token: Option<String>,
    /// RFC 3339, e.g. `2026-11-24T12:00:00Z`.
    #[serde(alias = "expiration")]
    #[serde(rename = "Expiration", default)]
    expiration: Option<String>,
    /// For HLS-encrypted videos whose key service checks a token.
    #[serde(alias = "hls_uri_token")]
    #[serde(rename = "MtsHlsUriToken", default)]
    hls_uri_token: Option<String>,
}

/// Parses the command's output into credentials.
fn parse(stdout: &str) -> Result<Credentials, String> {
    let mut v: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|_| "its output is not a JSON object".to_owned())?;
    // An STS answer may carry the HLS token beside its `Credentials`.
    let beside = ["MtsHlsUriToken", "hls_uri_token"].iter().find_map(|k| v.get(k)?.as_str().map(str::to_owned));
    if let Some(inner) = v.get_mut("Credentials").map(serde_json::Value::take) {
        v = inner;
    }
    let p: Printed = serde_json::from_value(v)
        .map_err(|_| "its JSON lacks AccessKeyId and AccessKeySecret (and SecurityToken for STS)".to_owned())?;
    let mut c = Credentials::new(&p.access_key_id, &p.access_key_secret, p.security_token.as_deref())
        .with_hls_uri_token(p.hls_uri_token.or(beside).as_deref());
    if let Some(e) = p.expiration {
        let t = time::OffsetDateTime::parse(&e, &time::format_description::well_known::Rfc3339)
            .map_err(|_| format!("Expiration {e:?} is not RFC 3339"))?;
        c.expires_at = Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    Ok(c)
}

impl CredentialsProvider for CommandCredentials {
    fn credentials(&self, reason: CredentialsReason) -> Pin<Box<dyn Future<Output = Option<Credentials>> + Send + '_>> {
        Box::pin(async move {
            let mut command = tokio::process::Command::new("sh");
            command.arg("-c").arg(&self.cmd);
            match &reason {
                CredentialsReason::Initial => {
                    command.env("VODVAULT_CREDENTIALS_REASON", "initial");
                }
                CredentialsReason::Rejected { code } => {
                    command.env("VODVAULT_CREDENTIALS_REASON", "rejected").env("VODVAULT_ERROR_CODE", code);
                }
                CredentialsReason::UrlExpired { asset_id } => {
                    command.env("VODVAULT_CREDENTIALS_REASON", "url_expired").env("VODVAULT_ASSET_ID", asset_id);
                }
            }
            let child = command
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .kill_on_drop(true)
                .output();
            let out = match tokio::time::timeout(Duration::from_secs(60), child).await {
                Ok(Ok(out)) => out,
                Ok(Err(e)) => {
                    eprintln!("vodvault: --credentials-cmd: cannot run it: {e}");
                    return None;
                }
                Err(_) => {
                    eprintln!("vodvault: --credentials-cmd: no answer within 60 s");
                    return None;
                }
            };
            if !out.status.success() {
                eprintln!("vodvault: --credentials-cmd exited with {}", out.status);
                return None;
            }
            match parse(&String::from_utf8_lossy(&out.stdout)) {
                Ok(c) => Some(c),
                Err(why) => {
                    // Never echo the output: it holds secrets.
                    eprintln!("vodvault: --credentials-cmd: {why}");
                    None
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_credentials() {
        let c = parse(
            r#"{"AccessKeyId":"STS.a","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2026-11-24T12:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(c.access_key_id, "STS.a");
        assert_eq!(c.expires_at, Some(1_795_521_600_000));
        // An STS AssumeRole answer.
        let c = parse(
            r#"{"RequestId":"x","Credentials":{"AccessKeyId":"STS.b","AccessKeySecret":"s","SecurityToken":"t"}}"#,
        )
        .unwrap();
        assert_eq!(c.access_key_id, "STS.b");
        assert!(c.hls_uri_token.is_none());
        let c = parse(
            r#"{"MtsHlsUriToken":"tok","Credentials":{"AccessKeyId":"STS.b","AccessKeySecret":"s","SecurityToken":"t"}}"#,
        )
        .unwrap();
        assert_eq!(c.hls_uri_token.as_deref().map(String::as_str), Some("tok"));
        let c = parse(r#"{"access_key_id":"LTAI","access_key_secret":"s"}"#).unwrap();
        assert!(c.security_token.is_none());
        let e = parse("AccessKeySecret=hunter2").err().unwrap();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(parse(r#"{"AccessKeyId":"a"}"#).is_err());
    }
}
