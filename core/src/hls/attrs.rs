//! RFC 8216 §4.2 attribute lists: `NAME=value,NAME="quoted string",…`.

use std::collections::BTreeMap;

use super::vars::{SubstError, Variables};

/// A parsed attribute list. Names are kept as written (they are upper case by the RFC); values
/// lose their quotes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    values: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Value {
    text: String,
    quoted: bool,
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
            rest = rest[eq + 1..].trim_start();
            let value;
            if let Some(q) = rest.strip_prefix('"') {
                let end = q.find('"')?;
                value = Value { text: q[..end].to_owned(), quoted: true };
                rest = q[end + 1..].trim_start();
                if !rest.is_empty() {
                    rest = rest.strip_prefix(',')?.trim_start();
                }
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                value = Value { text: rest[..end].trim().to_owned(), quoted: false };
                rest = rest.get(end + 1..).unwrap_or("").trim_start();
            }
            values.insert(name.to_owned(), value);
        }
        Some(Self { values })
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.text.as_str())
    }

    /// Whether `name` was written as a quoted string.
    pub fn is_quoted(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| v.quoted)
    }

    /// Replaces variable references (`{$name}`) in every quoted-string and hexadecimal-sequence
    /// value, the values RFC 8216bis §4.3 applies substitution to, taking what each value grows
    /// by from `budget` as it goes (the playlist's expansion budget).
    ///
    /// # Errors
    /// As [`Variables::substitute`]; [`SubstError::Budget`] when the budget runs out.
    pub fn substitute(&mut self, vars: &Variables, budget: &mut usize) -> Result<(), SubstError> {
        for v in self.values.values_mut() {
            let hex = !v.quoted && (v.text.starts_with("0x") || v.text.starts_with("0X"));
            if (v.quoted || hex) && v.text.contains("{$") {
                let new = vars.substitute(&v.text)?.into_owned();
                *budget = budget.checked_sub(new.len().saturating_sub(v.text.len())).ok_or(SubstError::Budget)?;
                v.text = new;
            }
        }
        Ok(())
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
        assert!(a.is_quoted("URI") && !a.is_quoted("METHOD"));
        assert_eq!(a.get("NOPE"), None);
        // White space after commas, as some packagers write it.
        let a = Attrs::parse("PROGRAM-ID=1, BANDWIDTH=40000").unwrap();
        assert_eq!(a.get("BANDWIDTH"), Some("40000"));
    }

    #[test]
    fn malformed() {
        assert!(Attrs::parse(r#"URI="unterminated"#).is_none());
        assert!(Attrs::parse("NOVALUE").is_none());
        assert!(Attrs::parse(r#"A="x"B=1"#).is_none());
        assert_eq!(Attrs::parse("").unwrap(), Attrs::default());
    }

    #[test]
    fn substitution_applies_to_quoted_and_hex_values_only() {
        let mut vars = Variables::default();
        vars.insert("host", "cdn.example.com");
        vars.insert("iv", "00000000000000000000000000000001");
        let mut a = Attrs::parse(r#"METHOD={$host},URI="https://{$host}/k",IV=0x{$iv}"#).unwrap();
        let mut budget = 1 << 20;
        a.substitute(&vars, &mut budget).unwrap();
        assert!(budget < 1 << 20, "the growth was charged");
        assert_eq!(a.get("URI"), Some("https://cdn.example.com/k"));
        assert_eq!(a.get("IV"), Some("0x00000000000000000000000000000001"));
        assert_eq!(a.get("METHOD"), Some("{$host}"), "enumerated strings are not substituted");
        let mut b = Attrs::parse(r#"URI="{$nope}""#).unwrap();
        assert_eq!(b.substitute(&vars, &mut budget), Err(SubstError::Undefined("nope".to_owned())));
        // Many values in one tag are charged one by one: the budget stops them, not memory.
        let many: Vec<String> = (0..100).map(|i| format!("A{i}=\"{{$host}}{{$host}}\"")).collect();
        let mut c = Attrs::parse(&many.join(",")).unwrap();
        let mut small = 100;
        assert_eq!(c.substitute(&vars, &mut small), Err(SubstError::Budget));
    }
}
