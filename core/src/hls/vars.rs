//! `EXT-X-DEFINE` variables (RFC 8216bis §4.3 and §4.4.2.3): defined by `NAME`/`VALUE`, taken
//! from the playlist URL's query (`QUERYPARAM`) or imported from the master playlist (`IMPORT`,
//! media playlists only), and substituted as `{$name}` in URI lines, quoted strings and
//! hexadecimal sequences.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::attrs::Attrs;

/// A playlist's variables, by name. `Debug` shows names only: values are often tokens.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Variables(BTreeMap<String, String>);

impl std::fmt::Debug for Variables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Longest string one substitution may produce (a URI line or an attribute value).
pub const MAX_SUBSTITUTED: usize = 64 * 1024;

/// Most bytes the substitutions of one playlist may produce together: a small playlist with a
/// long value referenced many times must not expand without bound.
pub const MAX_EXPANSION: usize = 16 << 20;

/// Why a substitution failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstError {
    /// A reference to a variable not defined before it (its name).
    Undefined(String),
    /// The result would be longer than [`MAX_SUBSTITUTED`].
    TooLong,
    /// The playlist's substitutions together would grow it by more than [`MAX_EXPANSION`].
    Budget,
}

/// Where `IMPORT` and `QUERYPARAM` values come from while a playlist is parsed.
#[derive(Debug, Clone, Copy)]
pub enum VarSource<'a> {
    /// A playlist just fetched from `url`. `imports` are the master playlist's variables, for a
    /// media playlist reached through one (`None`: there is no master).
    Fetched {
        /// The playlist's URL (for `QUERYPARAM`).
        url: &'a Url,
        /// The master playlist's variables (for `IMPORT`).
        imports: Option<&'a Variables>,
    },
    /// A playlist read again later (from the catalog): `IMPORT` and `QUERYPARAM` get the values
    /// they had when it was first read.
    Stored(&'a Variables),
    /// No URL and no master (a playlist given as text).
    Nothing,
}

/// Whether `name` is a valid variable name: `[a-zA-Z0-9_-]+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Variables {
    /// Whether no variable is defined.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Defines `name` (tests and callers that build variables by hand).
    pub fn insert(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_owned(), value.to_owned());
    }

    /// The JSON stored in the catalog.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Parses the stored JSON (`None` for anything else).
    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }

    /// Applies one `EXT-X-DEFINE` tag. `master` says whether the playlist is a master playlist
    /// (where `IMPORT` is not allowed).
    ///
    /// # Errors
    /// What is wrong with the tag, for a one-line message.
    pub fn define(&mut self, attrs: &Attrs, source: VarSource<'_>, master: bool) -> Result<(), String> {
        let (name, value) = match (attrs.get("NAME"), attrs.get("IMPORT"), attrs.get("QUERYPARAM")) {
            (Some(name), None, None) => {
                let value = attrs.get("VALUE").ok_or_else(|| format!("NAME=\"{name}\" without VALUE"))?;
                (name, value.to_owned())
            }
            (None, Some(name), None) => {
                if master {
                    return Err("IMPORT is only allowed in media playlists".into());
                }
                let value = match source {
                    VarSource::Fetched { imports: Some(m), .. } => m.get(name),
                    VarSource::Fetched { imports: None, .. } | VarSource::Nothing => {
                        return Err(format!(
                            "IMPORT=\"{name}\" in a media playlist not reached through a master playlist"
                        ));
                    }
                    VarSource::Stored(v) => v.get(name),
                };
                let value =
                    value.ok_or_else(|| format!("IMPORT=\"{name}\": the master playlist does not define it"))?;
                (name, value.to_owned())
            }
            (None, None, Some(name)) => {
                let value = match source {
                    // The URL the playlist came from after redirects; an empty value fails
                    // (§4.4.2.3).
                    VarSource::Fetched { url, .. } => url
                        .query_pairs()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                        .filter(|v| !v.is_empty()),
                    VarSource::Stored(v) => v.get(name).map(str::to_owned),
                    VarSource::Nothing => None,
                };
                let value = value.ok_or_else(|| {
                    format!("QUERYPARAM=\"{name}\": the playlist URL has no such parameter, or it is empty")
                })?;
                (name, value)
            }
            _ => return Err("needs exactly one of NAME, IMPORT and QUERYPARAM".into()),
        };
        if !valid_name(name) {
            return Err(format!("bad variable name {name:?} (letters, digits, '-' and '_' only)"));
        }
        if self.0.contains_key(name) {
            return Err(format!("variable \"{name}\" is defined twice"));
        }
        self.0.insert(name.to_owned(), value);
        Ok(())
    }

    /// Replaces every `{$name}` in `s`.
    ///
    /// # Errors
    /// [`SubstError::Undefined`] with the first variable referenced but not defined;
    /// [`SubstError::TooLong`] when the result would exceed [`MAX_SUBSTITUTED`].
    pub fn substitute<'s>(&self, s: &'s str) -> Result<Cow<'s, str>, SubstError> {
        if !s.contains("{$") {
            return Ok(Cow::Borrowed(s));
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find("{$") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            // A name, then `}`: one pass over the name's bytes (no search to the end of the
            // string for a `}`, which made `{${${$…` quadratic).
            let len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-').count();
            if len > 0 && after.as_bytes().get(len) == Some(&b'}') {
                let name = &after[..len];
                let value = self.get(name).ok_or_else(|| SubstError::Undefined(name.to_owned()))?;
                if out.len() + value.len() > MAX_SUBSTITUTED {
                    return Err(SubstError::TooLong);
                }
                out.push_str(value);
                rest = &after[len + 1..];
            } else {
                // Not a variable reference: kept as written.
                out.push_str("{$");
                rest = after;
            }
        }
        if out.len() + rest.len() > MAX_SUBSTITUTED {
            return Err(SubstError::TooLong);
        }
        out.push_str(rest);
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(s: &str) -> Attrs {
        Attrs::parse(s).unwrap()
    }

    #[test]
    fn define_import_and_queryparam() {
        let url = Url::parse("https://cdn.example.com/v/master.m3u8?token=abc%20d&x=1").unwrap();
        let mut m = Variables::default();
        m.define(
            &attrs(r#"NAME="host",VALUE="cdn.example.com""#),
            VarSource::Fetched { url: &url, imports: None },
            true,
        )
        .unwrap();
        m.define(&attrs(r#"QUERYPARAM="token""#), VarSource::Fetched { url: &url, imports: None }, true).unwrap();
        assert_eq!(m.get("token"), Some("abc d"));
        assert!(m.define(&attrs(r#"IMPORT="host""#), VarSource::Fetched { url: &url, imports: None }, true).is_err());
        assert!(
            m.define(&attrs(r#"QUERYPARAM="missing""#), VarSource::Fetched { url: &url, imports: None }, true).is_err()
        );
        assert!(m.define(&attrs(r#"NAME="host",VALUE="again""#), VarSource::Nothing, true).is_err());
        assert!(m.define(&attrs(r#"NAME="bad name",VALUE="x""#), VarSource::Nothing, true).is_err());

        let media_url = Url::parse("https://cdn.example.com/v/720p.m3u8").unwrap();
        let mut v = Variables::default();
        v.define(&attrs(r#"IMPORT="host""#), VarSource::Fetched { url: &media_url, imports: Some(&m) }, false).unwrap();
        assert_eq!(v.get("host"), Some("cdn.example.com"));
        let missing =
            v.define(&attrs(r#"IMPORT="nope""#), VarSource::Fetched { url: &media_url, imports: Some(&m) }, false);
        assert!(missing.unwrap_err().contains("does not define"));
        // Read again from the catalog: the same values, without the master or the URL.
        let mut again = Variables::default();
        again.define(&attrs(r#"IMPORT="host""#), VarSource::Stored(&v), false).unwrap();
        assert_eq!(again, v);
    }

    #[test]
    fn substitution() {
        let mut v = Variables::default();
        v.insert("a", "1");
        v.insert("b-c_d", "two");
        assert_eq!(v.substitute("x{$a}y{$b-c_d}z").unwrap(), "x1ytwoz");
        assert_eq!(v.substitute("no refs").unwrap(), "no refs");
        assert_eq!(v.substitute("{$} {$ a} {$a").unwrap(), "{$} {$ a} {$a", "not references");
        assert_eq!(v.substitute("{$zzz}"), Err(SubstError::Undefined("zzz".to_owned())));
        assert_eq!(v.substitute("{$a}{$a}").unwrap(), "11");
        // A long value referenced many times does not expand without bound.
        v.insert("big", &"x".repeat(40_000));
        assert_eq!(v.substitute("{$big}").unwrap().len(), 40_000);
        assert_eq!(v.substitute("{$big}{$big}"), Err(SubstError::TooLong));
        // Unterminated references are literal, and cost one pass.
        let open = "{$".repeat(30_000);
        assert_eq!(v.substitute(&format!("{open}a")).unwrap(), format!("{open}a"));
        // Debug shows names, never values (a value is often a token).
        v.insert("token", "s3cr3t");
        assert!(!format!("{v:?}").contains("s3cr3t") && format!("{v:?}").contains("token"));
    }
}
