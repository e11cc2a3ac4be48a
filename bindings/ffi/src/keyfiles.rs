//! Key files: checking, inspecting and making them, and moving a vault to a new one.

use vodvault_core as core;

use crate::errors::Result;
use crate::runtime::spawn;

use vodvault_core::KeyId;

uniffi::custom_type!(KeyId, String, {
    remote,
    lower: |k| k.to_string(),
    try_lift: |s| KeyId::from_hex(&s).ok_or_else(|| uniffi::deps::anyhow::anyhow!("not a key id: {s}")),
});

/// What a key file says about itself (never its secret).
pub type KeyFileInfo = core::KeyFileInfo;

/// What a key file says about itself (never its secret).
#[uniffi::remote(Record)]
pub struct KeyFileInfo {
    /// Format version.
    pub version: u16,
    /// The app id it is bound to.
    pub app_id: String,
    /// Key id (a fingerprint), 16 hex digits.
    pub key_id: KeyId,
    /// Creation time, Unix seconds.
    pub created_unix: u64,
    /// SHA-256 digests (hex) of the signing certificates it is bound to; empty: any.
    pub signers: Vec<String>,
}

/// Checks a key file's integrity and returns what it says about itself (never its secret).
///
/// # Errors
/// `InvalidKeyFile` naming the problem.
#[uniffi::export]
pub fn inspect_key_file(key_file: Vec<u8>) -> Result<KeyFileInfo> {
    Ok(core::KeyFile::inspect(&key_file)?)
}

/// Checks that a key file is intact and bound to `app_id`.
///
/// # Errors
/// `InvalidKeyFile` naming the problem (another app's key file included).
#[uniffi::export]
pub fn validate_key_file(key_file: Vec<u8>, app_id: String) -> Result<KeyFileInfo> {
    Ok(core::KeyFile::from_bytes(&key_file, &app_id)?.info().clone())
}

/// Makes a new key file for `app_id` (apps normally ship one made with `vodvault-keytool`).
///
/// # Errors
/// `InvalidKeyFile` for an invalid app id.
#[uniffi::export]
pub fn generate_key_file(app_id: String) -> Result<Vec<u8>> {
    Ok(core::KeyFile::generate(&app_id)?.to_bytes().to_vec())
}

/// Makes a new key file for `app_id` that opens only in an app signed with one of
/// `signing_cert_sha256` (hex digests; apps normally ship one made with `vodvault-keytool
/// generate --signing-cert-sha256`).
///
/// # Errors
/// `InvalidKeyFile` for an invalid app id or digest.
#[uniffi::export]
pub fn generate_bound_key_file(app_id: String, signing_cert_sha256: Vec<String>) -> Result<Vec<u8>> {
    let signers = signing_cert_sha256.iter().map(|s| core::parse_signer(s)).collect::<Result<Vec<_>, _>>()?;
    Ok(core::KeyFile::generate_for_signers(&app_id, &signers)?.to_bytes().to_vec())
}

/// Moves a closed vault to a new key file: every asset's key is re-wrapped, no media is
/// re-encrypted. Returns the new key id.
///
/// # Errors
/// `InvalidKeyFile`, `KeyMismatch` (the old key file is not the vault's).
#[uniffi::export]
pub async fn rotate_vault_key(
    dir: String,
    app_id: String,
    old_key_file: Vec<u8>,
    new_key_file: Vec<u8>,
) -> Result<String> {
    let rotated = spawn(async move {
        core::Vault::rotate_key_file(std::path::Path::new(&dir), &app_id, &old_key_file, &new_key_file).await
    });
    Ok(rotated.await??.to_string())
}
