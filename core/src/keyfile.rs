//! Key files: a 256-bit app secret bound to one app id and, optionally, to the certificates the
//! app is signed with.
//!
//! A key file is made once per app by `vodvault-keytool generate` and shipped with (or
//! provisioned to) the app. Everything the vault encrypts is ultimately protected by the secret
//! it holds, through the key hierarchy in [`crate::keys`]. The byte layout is specified in
//! `docs/format.md`; in short (all integers big-endian):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `89 56 56 4B 45 59 0D 0A` (`\x89VVKEY\r\n`) |
//! | 8 | 2 | format version (1) |
//! | 10 | 2 | total length of the file in bytes |
//! | 12 | 8 | creation time, Unix seconds |
//! | 20 | 8 | key id |
//! | 28 | 1 | app id length *n* (1–255) |
//! | 29 | *n* | app id, UTF-8 |
//! | 29+*n* | 32 | secret |
//! | 61+*n* | 32 | SHA-256 of bytes 0 .. 61+*n* |
//!
//! Version 2 (written only for a file bound to signing certificates) inserts, after the app id,
//! one byte *k* (1–16) and *k* SHA-256 digests of the app's signing certificates (32 bytes each);
//! the secret and the checksum follow. Version 1 files stay valid and bind no certificate.

use std::fmt;
use std::io::Write;
use std::path::Path;

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::crypto::{self, RandomUnavailable};

const MAGIC: [u8; 8] = *b"\x89VVKEY\r\n";
/// The newest key file format version this build reads and writes (2: bound to signing
/// certificates; a file without them is written as version 1, which every build reads).
pub const KEY_FILE_VERSION: u16 = 2;
/// The most signing certificates a key file may be bound to.
pub const MAX_SIGNERS: usize = 16;
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 32;
const FIXED_LEN: usize = 29 + SECRET_LEN + CHECKSUM_LEN;
/// Maximum length of an app id in bytes.
pub const MAX_APP_ID_LEN: usize = 255;
const KEY_ID_INFO: &[u8] = b"vodvault/v1/key-id";

/// Why a key file could not be loaded. Every variant is safe to show: none carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    /// The bytes are not a vodvault key file at all (wrong magic number).
    #[error("not a vodvault key file")]
    NotAKeyFile,
    /// The file ends before the length its header declares.
    #[error("key file is truncated ({found} of {expected} bytes)")]
    Truncated {
        /// Bytes present.
        found: usize,
        /// Bytes the header declares (or the minimum, when even the header is cut).
        expected: usize,
    },
    /// The checksum does not match, or the contents are inconsistent: the file was damaged.
    #[error("key file is corrupted (checksum or structure mismatch)")]
    Corrupted,
    /// A well-formed key file of a format version this build does not know.
    #[error("key file format version {found} is not supported (this build reads versions 1 to {KEY_FILE_VERSION})")]
    UnsupportedVersion {
        /// The version in the file.
        found: u16,
    },
    /// The key file is intact but bound to another app.
    #[error("key file belongs to app id {found:?}, not {expected:?}")]
    WrongApp {
        /// The app id the caller asked for.
        expected: String,
        /// The app id the key file is bound to.
        found: String,
    },
    /// The app id is not acceptable (empty, too long, or characters outside `[A-Za-z0-9._-]`).
    #[error("invalid app id {app_id:?}: {reason}")]
    InvalidAppId {
        /// The rejected app id.
        app_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signing-certificate digest that is not 32 bytes of hex (colons allowed, as Android and
    /// keytool print them).
    #[error("invalid signing certificate SHA-256 {given:?}: {reason}")]
    InvalidSigner {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key file is bound to signing certificates and the app gave none (iOS apps, and
    /// Android apps that do not pass theirs, use key files without signers).
    #[error("the key file is bound to {count} signing certificate(s), and the app did not give its own")]
    SignerRequired {
        /// How many certificates the file is bound to.
        count: usize,
    },
    /// The key file is bound to signing certificates and the app's is not one of them: another
    /// (repackaged) app is using it.
    #[error("the app's signing certificate ({given}) is not one of the {count} the key file is bound to")]
    WrongSigner {
        /// The app's certificate digest, hex.
        given: String,
        /// How many certificates the file is bound to.
        count: usize,
    },
    /// Reading or writing the file failed (the message names the OS error, not the path).
    #[error("{0}")]
    Io(String),
    /// The file already exists and overwriting was not requested.
    #[error("file already exists; refusing to overwrite it")]
    AlreadyExists,
    /// The OS random generator failed.
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

/// A key id: a fingerprint of a secret, derived one-way with HKDF, so it is safe to show, log and
/// store beside the data it identifies. Displayed as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The key id of `secret`, derived as `HKDF-SHA256(salt = "", ikm = secret, info)[..8]`.
    pub(crate) fn derive(secret: &[u8], info: &[u8]) -> Self {
        let mut id = [0u8; 8];
        crypto::hkdf_sha256(&[], secret, &[info], &mut id);
        Self(id)
    }

    /// Parses the 16-hex-digit form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(s, &mut id).ok()?;
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// What a key file says about itself, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyFileInfo {
    /// Format version.
    pub version: u16,
    /// The app id (Android package name / iOS bundle id) the key is bound to.
    pub app_id: String,
    /// Fingerprint of the secret.
    #[serde(serialize_with = "serialize_display")]
    pub key_id: KeyId,
    /// Creation time, Unix seconds.
    pub created_unix: u64,
    /// SHA-256 digests (lowercase hex) of the signing certificates the app must be signed with;
    /// empty: any (a version 1 file, or one for iOS, where the bundle id binds it).
    pub signers: Vec<String>,
}

/// A signing certificate's SHA-256 from its hex form (64 digits, upper or lower case, with or
/// without the colons Android's `apksigner` and `keytool` print).
///
/// # Errors
/// [`KeyFileError::InvalidSigner`].
pub fn parse_signer(given: &str) -> Result<[u8; 32], KeyFileError> {
    let digits: String = given.trim().chars().filter(|c| *c != ':').collect();
    let bad = |reason| KeyFileError::InvalidSigner { given: given.to_owned(), reason };
    if digits.len() != 64 {
        return Err(bad("not 64 hex digits (32 bytes)"));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(&digits, &mut out).map_err(|_| bad("not hex"))?;
    Ok(out)
}

fn serialize_display<S: serde::Serializer>(v: &KeyId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl KeyFileInfo {
    /// The creation time as RFC 3339 in UTC, e.g. `2026-11-24T19:02:41Z`.
    pub fn created_rfc3339(&self) -> String {
        i64::try_from(self.created_unix)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}", self.created_unix))
    }
}

/// A loaded key file: the app secret and what it is bound to.
///
/// Not `Clone`; the secret is wiped when the value is dropped and never appears in `Debug`.
pub struct KeyFile {
    info: KeyFileInfo,
    signers: Vec<[u8; 32]>,
    secret: Zeroizing<[u8; SECRET_LEN]>,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("version", &self.info.version)
            .field("app_id", &self.info.app_id)
            .field("key_id", &self.info.key_id)
            .field("created_unix", &self.info.created_unix)
            .field("signers", &self.info.signers)
            .field("secret", &format_args!(".."))
            .finish()
    }
}

/// Checks that `app_id` is an acceptable Android package name / iOS bundle id: 1–255 bytes of
/// `[A-Za-z0-9._-]`.
///
/// # Errors
/// [`KeyFileError::InvalidAppId`] saying what is wrong.
pub fn validate_app_id(app_id: &str) -> Result<(), KeyFileError> {
    let reason = if app_id.is_empty() {
        Some("it is empty")
    } else if app_id.len() > MAX_APP_ID_LEN {
        Some("it is longer than 255 bytes")
    } else if !app_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        Some("only letters, digits, '.', '_' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(KeyFileError::InvalidAppId { app_id: app_id.to_owned(), reason }),
        None => Ok(()),
    }
}

impl KeyFile {
    /// Makes a new key file for `app_id` with a fresh secret from the OS CSPRNG.
    ///
    /// # Errors
    /// [`KeyFileError::InvalidAppId`], or [`KeyFileError::Random`] if the OS generator fails.
    pub fn generate(app_id: &str) -> Result<Self, KeyFileError> {
        Self::generate_for_signers(app_id, &[])
    }

    /// Makes a new key file for `app_id`, usable only by an app signed with one of `signers`
    /// (SHA-256 digests of signing certificates; an app may have several, across key rotation).
    /// Without signers it is a version 1 file, bound to the app id alone.
    ///
    /// # Errors
    /// [`KeyFileError::InvalidAppId`], [`KeyFileError::InvalidSigner`] for more than
    /// [`MAX_SIGNERS`], or [`KeyFileError::Random`] if the OS generator fails.
    pub fn generate_for_signers(app_id: &str, signers: &[[u8; 32]]) -> Result<Self, KeyFileError> {
        let created = OffsetDateTime::now_utc().unix_timestamp();
        Self::generate_at(app_id, signers, u64::try_from(created).unwrap_or(0))
    }

    fn generate_at(app_id: &str, signers: &[[u8; 32]], created_unix: u64) -> Result<Self, KeyFileError> {
        validate_app_id(app_id)?;
        if signers.len() > MAX_SIGNERS {
            return Err(KeyFileError::InvalidSigner {
                given: format!("{} certificates", signers.len()),
                reason: "more than 16 signing certificates",
            });
        }
        let mut signers = signers.to_vec();
        signers.sort_unstable();
        signers.dedup();
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        crypto::fill_random(&mut secret[..])?;
        Ok(Self::from_parts(app_id.to_owned(), created_unix, signers, secret))
    }

    fn from_parts(
        app_id: String,
        created_unix: u64,
        signers: Vec<[u8; 32]>,
        secret: Zeroizing<[u8; SECRET_LEN]>,
    ) -> Self {
        let key_id = KeyId::derive(&secret[..], KEY_ID_INFO);
        let version = if signers.is_empty() { 1 } else { 2 };
        let info =
            KeyFileInfo { version, app_id, key_id, created_unix, signers: signers.iter().map(hex::encode).collect() };
        Self { info, signers, secret }
    }

    /// Checks that the running app may use this key file: a file bound to signing certificates
    /// needs the app's (`signer`, its SHA-256 in hex) to be one of them; a file bound to none
    /// (version 1, or made for iOS) takes any app with its id, whatever `signer` says.
    ///
    /// # Errors
    /// [`KeyFileError::SignerRequired`], [`KeyFileError::WrongSigner`],
    /// [`KeyFileError::InvalidSigner`].
    pub fn check_signer(&self, signer: Option<&str>) -> Result<(), KeyFileError> {
        // A malformed digest is refused whatever the file: not only once the app ships a bound
        // one.
        let given = signer.map(parse_signer).transpose()?;
        if self.signers.is_empty() {
            return Ok(());
        }
        let count = self.signers.len();
        let given = given.ok_or(KeyFileError::SignerRequired { count })?;
        if self.signers.iter().any(|s| constant_time_eq(s, &given)) {
            Ok(())
        } else {
            Err(KeyFileError::WrongSigner { given: hex::encode(given), count })
        }
    }

    /// Loads a key file and checks that it is bound to `app_id`.
    ///
    /// # Errors
    /// Each way the bytes can be wrong is its own variant: [`KeyFileError::NotAKeyFile`],
    /// [`KeyFileError::Truncated`], [`KeyFileError::Corrupted`],
    /// [`KeyFileError::UnsupportedVersion`], and [`KeyFileError::WrongApp`] when the file is
    /// intact but made for another app.
    pub fn from_bytes(bytes: &[u8], app_id: &str) -> Result<Self, KeyFileError> {
        let key = Self::decode(bytes)?;
        if key.info.app_id != app_id {
            return Err(KeyFileError::WrongApp { expected: app_id.to_owned(), found: key.info.app_id });
        }
        Ok(key)
    }

    /// Reads and loads the key file at `path`; see [`KeyFile::from_bytes`].
    ///
    /// # Errors
    /// [`KeyFileError::Io`] if the file cannot be read, else as [`KeyFile::from_bytes`].
    pub fn load(path: &Path, app_id: &str) -> Result<Self, KeyFileError> {
        let bytes = Zeroizing::new(read_file(path)?);
        Self::from_bytes(&bytes, app_id)
    }

    /// Checks a key file's integrity and returns what it says about itself, for any app id.
    ///
    /// # Errors
    /// As [`KeyFile::from_bytes`], except that it never returns [`KeyFileError::WrongApp`].
    pub fn inspect(bytes: &[u8]) -> Result<KeyFileInfo, KeyFileError> {
        Ok(Self::decode(bytes)?.info)
    }

    /// Reads the key file at `path` and returns [`KeyFile::inspect`] of it.
    ///
    /// # Errors
    /// As [`KeyFile::inspect`], or [`KeyFileError::Io`].
    pub fn inspect_file(path: &Path) -> Result<KeyFileInfo, KeyFileError> {
        let bytes = Zeroizing::new(read_file(path)?);
        Self::inspect(&bytes)
    }

    fn decode(bytes: &[u8]) -> Result<Self, KeyFileError> {
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                KeyFileError::Truncated { found: bytes.len(), expected: FIXED_LEN + 1 }
            } else {
                KeyFileError::NotAKeyFile
            });
        }
        if bytes[..8] != MAGIC {
            return Err(KeyFileError::NotAKeyFile);
        }
        if bytes.len() < 12 {
            return Err(KeyFileError::Truncated { found: bytes.len(), expected: FIXED_LEN + 1 });
        }
        let declared = usize::from(u16::from_be_bytes([bytes[10], bytes[11]]));
        if declared <= FIXED_LEN || declared > FIXED_LEN + MAX_APP_ID_LEN + 1 + 32 * MAX_SIGNERS {
            return Err(KeyFileError::Corrupted);
        }
        if bytes.len() < declared {
            return Err(KeyFileError::Truncated { found: bytes.len(), expected: declared });
        }
        if bytes.len() > declared {
            return Err(KeyFileError::Corrupted);
        }
        // Every version ends with a SHA-256 of everything before it, so damage is reported as
        // such even for versions this build cannot otherwise read.
        let (body, checksum) = bytes.split_at(declared - CHECKSUM_LEN);
        if !constant_time_eq(&crypto::sha256(&[body]), checksum) {
            return Err(KeyFileError::Corrupted);
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if !(1..=KEY_FILE_VERSION).contains(&version) {
            return Err(KeyFileError::UnsupportedVersion { found: version });
        }
        let created_unix = u64::from_be_bytes(field(bytes, 12));
        let stored_key_id = KeyId(field(bytes, 20));
        let app_len = usize::from(bytes[28]);
        if FIXED_LEN + app_len > declared {
            return Err(KeyFileError::Corrupted);
        }
        let app_id = std::str::from_utf8(&bytes[29..29 + app_len]).map_err(|_| KeyFileError::Corrupted)?;
        validate_app_id(app_id).map_err(|_| KeyFileError::Corrupted)?;
        let mut at = 29 + app_len;
        let mut signers = Vec::new();
        if version >= 2 {
            let count = usize::from(*bytes.get(at).ok_or(KeyFileError::Corrupted)?);
            if count == 0 || count > MAX_SIGNERS || FIXED_LEN + app_len + 1 + 32 * count != declared {
                return Err(KeyFileError::Corrupted);
            }
            at += 1;
            for _ in 0..count {
                signers.push(field::<32>(bytes, at));
                at += 32;
            }
        } else if FIXED_LEN + app_len != declared {
            return Err(KeyFileError::Corrupted);
        }
        let secret = Zeroizing::new(field::<SECRET_LEN>(bytes, at));
        let key = Self::from_parts(app_id.to_owned(), created_unix, signers, secret);
        if key.info.key_id != stored_key_id || key.info.version != version {
            return Err(KeyFileError::Corrupted);
        }
        Ok(key)
    }

    /// The key file's bytes, to store. The result holds the secret: keep it in memory no longer
    /// than needed (it is wiped when dropped).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let app = self.info.app_id.as_bytes();
        let bound = if self.signers.is_empty() { 0 } else { 1 + 32 * self.signers.len() };
        let total = FIXED_LEN + app.len() + bound;
        let mut out = Zeroizing::new(Vec::with_capacity(total));
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.info.version.to_be_bytes());
        out.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&self.info.created_unix.to_be_bytes());
        out.extend_from_slice(&self.info.key_id.0);
        out.push(u8::try_from(app.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(app);
        if !self.signers.is_empty() {
            out.push(u8::try_from(self.signers.len()).unwrap_or(u8::MAX));
            for s in &self.signers {
                out.extend_from_slice(s);
            }
        }
        out.extend_from_slice(&self.secret[..]);
        let sum = crypto::sha256(&[&out[..]]);
        out.extend_from_slice(&sum);
        out
    }

    /// Writes the key file to `path` with owner-only permissions (0600 on Unix). The file appears
    /// complete or not at all: it is written to a temporary file beside `path`, synced, then
    /// moved into place. Without `overwrite`, an existing file is never replaced.
    ///
    /// # Errors
    /// [`KeyFileError::AlreadyExists`] without `overwrite` when `path` exists;
    /// [`KeyFileError::Io`] for any other failure (nothing is left behind).
    pub fn write_to(&self, path: &Path, overwrite: bool) -> Result<(), KeyFileError> {
        let io = |e: std::io::Error| KeyFileError::Io(format!("cannot write: {e}"));
        if !overwrite && path.symlink_metadata().is_ok() {
            return Err(KeyFileError::AlreadyExists);
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(".vvkey-").suffix(".tmp");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        let mut tmp = builder.tempfile_in(dir).map_err(io)?;
        tmp.write_all(&self.to_bytes()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        if overwrite {
            tmp.persist(path).map_err(|e| io(e.error))?;
        } else {
            // `persist_noclobber` links the file into place, failing if `path` appeared meanwhile.
            tmp.persist_noclobber(path).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    KeyFileError::AlreadyExists
                } else {
                    io(e.error)
                }
            })?;
        }
        if let Ok(d) = std::fs::File::open(dir) {
            // Make the rename durable; failure here does not make the written file wrong.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// What the key file says about itself.
    pub fn info(&self) -> &KeyFileInfo {
        &self.info
    }

    /// The fingerprint of the secret.
    pub fn key_id(&self) -> KeyId {
        self.info.key_id
    }

    /// The app id the key is bound to.
    pub fn app_id(&self) -> &str {
        &self.info.app_id
    }

    pub(crate) fn secret(&self) -> &[u8; SECRET_LEN] {
        &self.secret
    }
}

fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_file(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let io = |e: std::io::Error| KeyFileError::Io(format!("cannot read: {e}"));
    // Key files are a few hundred bytes; anything large is not one and is not worth reading.
    if std::fs::metadata(path).map_err(io)?.len() > 4096 {
        return Err(KeyFileError::NotAKeyFile);
    }
    std::fs::read(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyFile {
        KeyFile::from_parts("com.example.player".into(), 1_764_000_000, Vec::new(), Zeroizing::new([0x42; 32]))
    }

    #[test]
    fn a_file_bound_to_two_signers_takes_either_and_refuses_others() {
        let a = parse_signer(&format!("{}AB", "AB:".repeat(31))).unwrap();
        assert_eq!(a, [0xab; 32]);
        let b = [0x11u8; 32];
        let key = KeyFile::generate_for_signers("com.example.player", &[b, a, b]).unwrap();
        let bytes = key.to_bytes();
        assert_eq!(bytes.len(), FIXED_LEN + "com.example.player".len() + 1 + 64, "two signers, deduplicated");
        let back = KeyFile::from_bytes(&bytes, "com.example.player").unwrap();
        assert_eq!((back.info().version, back.info().signers.len()), (2, 2));
        assert_eq!(back.secret(), key.secret());
        // Either signer, in any case and with or without colons.
        back.check_signer(Some(&hex::encode(a).to_uppercase())).unwrap();
        back.check_signer(Some(&"11:".repeat(32)[..95])).unwrap();
        assert_eq!(
            back.check_signer(Some(&"22".repeat(32))),
            Err(KeyFileError::WrongSigner { given: "22".repeat(32), count: 2 })
        );
        assert_eq!(back.check_signer(None), Err(KeyFileError::SignerRequired { count: 2 }));
        assert!(matches!(back.check_signer(Some("abc")), Err(KeyFileError::InvalidSigner { .. })));
        // A file bound to no signer (version 1, or made for iOS) takes any app with its id.
        let old = sample();
        assert_eq!(old.info().version, 1);
        old.check_signer(None).unwrap();
        old.check_signer(Some(&"22".repeat(32))).unwrap();
        // Damage in the signer list is damage.
        let mut bad = bytes.to_vec();
        let at = 29 + "com.example.player".len() + 1;
        bad[at] ^= 1;
        assert_eq!(KeyFile::from_bytes(&bad, "com.example.player").unwrap_err(), KeyFileError::Corrupted);
        assert!(KeyFile::generate_for_signers("com.example.player", &[[0; 32]; 17]).is_err());
    }

    #[test]
    fn round_trip() {
        let key = KeyFile::generate("com.example.player").unwrap();
        let bytes = key.to_bytes();
        assert_eq!(bytes.len(), FIXED_LEN + "com.example.player".len());
        let back = KeyFile::from_bytes(&bytes, "com.example.player").unwrap();
        assert_eq!(back.info(), key.info());
        assert_eq!(back.secret(), key.secret());
    }

    /// The v1 encoding of a fixed secret. If this changes, key files already shipped in apps
    /// stop loading. Checked independently: the key id is HKDF-SHA256 (RFC 5869, empty salt) of
    /// the secret with info "vodvault/v1/key-id", the last 32 bytes are SHA-256 of the rest.
    const V1_VECTOR: &str = concat!(
        "8956564b45590d0a",                                                 // magic
        "0001",                                                             // version 1
        "006f",                                                             // total length 111
        "0000000069248100",                                                 // created 1764000000
        "88329a760945ac9e",                                                 // key id
        "12",                                                               // app id length 18
        "636f6d2e6578616d706c652e706c61796572",                             // "com.example.player"
        "4242424242424242424242424242424242424242424242424242424242424242", // secret
        "328a9eb5b039e3a796d1ba3c5f233a33106a9e1487184e7c892a5eaff251bd2f", // SHA-256
    );

    #[test]
    fn fixed_vector_never_changes() {
        assert_eq!(hex::encode(&sample().to_bytes()[..]), V1_VECTOR);
        let parsed = KeyFile::from_bytes(&hex::decode(V1_VECTOR).unwrap(), "com.example.player");
        let parsed = parsed.unwrap();
        assert_eq!(parsed.key_id().to_string(), "88329a760945ac9e");
        assert_eq!(parsed.info().created_rfc3339(), "2025-11-24T16:00:00Z");
        assert_eq!(parsed.secret(), &[0x42; 32]);
    }

    /// The version 2 encoding of the same secret bound to two signers (sorted): the v1 layout with
    /// a count and the digests between the app id and the secret.
    #[test]
    fn fixed_v2_vector_never_changes() {
        let key = KeyFile::from_parts(
            "com.example.player".into(),
            1_764_000_000,
            vec![[0x11; 32], [0xab; 32]],
            Zeroizing::new([0x42; 32]),
        );
        assert_eq!(hex::encode(&key.to_bytes()[..]), V2_VECTOR);
        let parsed = KeyFile::from_bytes(&hex::decode(V2_VECTOR).unwrap(), "com.example.player").unwrap();
        assert_eq!((parsed.info().version, parsed.key_id().to_string()), (2, "88329a760945ac9e".to_owned()));
        assert_eq!(parsed.info().signers, ["11".repeat(32), "ab".repeat(32)]);
        assert_eq!(parsed.secret(), &[0x42; 32]);
    }

    const V2_VECTOR: &str = concat!(
        "8956564b45590d0a",
        "0002",
        "00b0",
        "0000000069248100",
        "88329a760945ac9e",
        "12",
        "636f6d2e6578616d706c652e706c61796572",
        "02",
        "1111111111111111111111111111111111111111111111111111111111111111",
        "abababababababababababababababababababababababababababababababab",
        "4242424242424242424242424242424242424242424242424242424242424242",
        "7776d05f71c09b772846816a4259ea55b097ed16977135e4f69e224018ae72ab",
    );

    #[test]
    fn generated_secrets_differ() {
        let a = KeyFile::generate("a.b").unwrap();
        let b = KeyFile::generate("a.b").unwrap();
        assert_ne!(a.secret(), b.secret());
        assert_ne!(a.key_id(), b.key_id());
    }

    #[test]
    fn debug_hides_secret() {
        let key = sample();
        let dbg = format!("{key:?}");
        assert!(dbg.contains("com.example.player"));
        assert!(!dbg.contains("42, 42") && !dbg.contains("4242"), "{dbg}");
        assert!(dbg.contains("secret: .."));
    }
}
