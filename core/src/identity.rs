//! Stable identities: what makes two downloads "the same asset", independent of signed URLs.
//!
//! CDN and object-store signatures change on every request (ExoPlayer #5408: a token in the URL
//! made the cache treat the same content as new). An asset's identity is its source URL with
//! signature parameters removed, plus the chosen rendition; the asset id is a hash of that.

use url::Url;

/// Query parameters that carry signatures, tokens or expiry times, compared case-insensitively.
/// Names ending in `*` are prefixes.
pub const SIGNATURE_PARAMS: &[&str] = &[
    // Alibaba Cloud CDN type A/B/C, OSS, and VOD's HLS-encryption token.
    "auth_key",
    "mtshlsuritoken",
    "ossaccesskeyid",
    "expires",
    "signature",
    "security-token",
    "x-oss-*",
    // AWS S3 / CloudFront.
    "x-amz-*",
    "policy",
    "key-pair-id",
    // Google Cloud Storage.
    "x-goog-*",
    "googleaccessid",
    // Akamai, generic tokens.
    "hdnts",
    "hdnea",
    "__gda__",
    "token",
    "access_token",
    "auth",
    "wmsauthsign",
    // Azure SAS.
    "sig",
    "se",
    "sp",
    "sv",
    "sr",
    "spr",
    "skoid",
    "sktid",
];

fn is_signature_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SIGNATURE_PARAMS.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == *p,
    })
}

/// `url` without signature parameters and fragment: the part that names the content.
pub fn strip_signature(url: &Url) -> String {
    let mut out = url.clone();
    out.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_signature_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        out.set_query(None);
    } else {
        out.query_pairs_mut().clear().extend_pairs(kept);
    }
    out.to_string()
}

/// A URI as written in a playlist (relative or absolute), without signature parameters: the key
/// for matching segments across playlist refreshes and for the catalog.
pub fn strip_uri_signature(uri: &str) -> String {
    match uri.split_once('?') {
        None => uri.split('#').next().unwrap_or(uri).to_owned(),
        Some((path, query)) => {
            let query = query.split('#').next().unwrap_or("");
            let kept: Vec<&str> = query
                .split('&')
                .filter(|kv| {
                    let name = kv.split('=').next().unwrap_or("");
                    !name.is_empty() && !is_signature_param(&percent_decode(name))
                })
                .collect();
            if kept.is_empty() { path.to_owned() } else { format!("{path}?{}", kept.join("&")) }
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes()).next().map(|(k, _)| k.into_owned()).unwrap_or_default()
}

/// The asset id for an identity string: 16 hex digits of its SHA-256.
pub fn asset_id(identity: &str) -> String {
    hex::encode(&crate::crypto::sha256(&[identity.as_bytes()])[..8])
}

/// Redacts a URL for messages and logs: scheme, host and path only (no query, no credentials).
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// [`redact`] of a URL given as text ("(invalid URL)" when it does not parse).
pub fn redact_str(url: &str) -> String {
    Url::parse(url).map(|u| redact(&u)).unwrap_or_else(|_| "(invalid URL)".to_owned())
}

/// The extension of the last path segment of `uri` (lowercase, 1–5 alphanumerics), or `fallback`.
pub(crate) fn sanitize_ext(uri: &str, fallback: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((_, ext)) if (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            ext.to_ascii_lowercase()
        }
        _ => fallback.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_not_identity() {
        let a = Url::parse("https://cdn.example.com/v/master.m3u8?auth_key=1700000000-0-0-abc&lang=en").unwrap();
        let b = Url::parse("https://cdn.example.com/v/master.m3u8?lang=en&auth_key=1800000000-0-0-def").unwrap();
        assert_eq!(strip_signature(&a), "https://cdn.example.com/v/master.m3u8?lang=en");
        assert_eq!(strip_signature(&a), strip_signature(&b));
        let oss = Url::parse("https://b.oss-cn-shanghai.aliyuncs.com/x.mp4?OSSAccessKeyId=LTAI&Expires=1&Signature=s%2Bg&security-token=t").unwrap();
        assert_eq!(strip_signature(&oss), "https://b.oss-cn-shanghai.aliyuncs.com/x.mp4");
        let s3 = Url::parse("https://s3/x.ts?X-Amz-Signature=1&X-Amz-Date=2#frag").unwrap();
        assert_eq!(strip_signature(&s3), "https://s3/x.ts");
        assert_ne!(asset_id("a"), asset_id("b"));
        assert_eq!(asset_id("a").len(), 16);
    }

    #[test]
    fn relative_uris() {
        assert_eq!(strip_uri_signature("seg-1.ts?auth_key=1-2-3"), "seg-1.ts");
        assert_eq!(strip_uri_signature("seg-1.ts?v=2&Expires=9"), "seg-1.ts?v=2");
        assert_eq!(strip_uri_signature("seg-1.ts"), "seg-1.ts");
    }

    #[test]
    fn redaction_drops_queries_and_credentials() {
        let u = Url::parse("https://user:pw@h/p/x.m3u8?auth_key=secret").unwrap();
        assert_eq!(redact(&u), "https://h/p/x.m3u8");
    }
}
