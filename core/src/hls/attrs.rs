//! RFC 8216 §4.2 attribute lists: `NAME=value,NAME="quoted string",…`.

use std::collections::BTreeMap;

/// A parsed attribute list. Names are kept as written (they are upper case by the RFC); values
/// lose their quotes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    values: BTreeMap<String, String>,
}

impl Attrs {
    /// Parses an attribute list. Returns `None` when it is malformed (unterminated quote, missing
    /// `=`, empty name).
    pub fn parse(s: &str) -> Option<Self> {
        let mut values = BTreeMap::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let eq = rest.find('=')?;
            let name = rest[..eq].trim();
            if name.is_empty() || name.contains(',') {
                return None;
            }
            rest = &rest[eq + 1..];
            let value;
            if let Some(q) = rest.strip_prefix('"') {
                let end = q.find('"')?;
                value = q[..end].to_owned();
                rest = q[end + 1..].trim_start();
                if !rest.is_empty() {
                    rest = rest.strip_prefix(',')?.trim_start();
                }
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = rest[..end].trim().to_owned();
                rest = rest.get(end + 1..).unwrap_or("").trim_start();
            }
            values.insert(name.to_owned(), value);
        }
        Some(Self { values })
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_unquoted() {
        let a = Attrs::parse(r#"METHOD=AES-128,URI="https://k/x?a=1,b=2",IV=0x01,KEYFORMAT="identity""#).unwrap();
        assert_eq!(a.get("METHOD"), Some("AES-128"));
        assert_eq!(a.get("URI"), Some("https://k/x?a=1,b=2"));
        assert_eq!(a.get("IV"), Some("0x01"));
        assert_eq!(a.get("KEYFORMAT"), Some("identity"));
        assert_eq!(a.get("NOPE"), None);
    }

    #[test]
    fn malformed() {
        assert!(Attrs::parse(r#"URI="unterminated"#).is_none());
        assert!(Attrs::parse("NOVALUE").is_none());
        assert!(Attrs::parse(r#"A="x"B=1"#).is_none());
        assert_eq!(Attrs::parse("").unwrap(), Attrs::default());
    }
}
