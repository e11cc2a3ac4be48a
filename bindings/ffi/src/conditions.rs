//! What the app tells the vault about the device, what downloads require of it, and what a
//! download would take of the device's space.

use vodvault_core as core;

/// The network the device is on.
pub type Network = core::Network;

/// The network the device is on.
#[uniffi::remote(Enum)]
pub enum Network {
    /// No connection.
    None,
    /// Paid by the byte (cellular, a metered hotspot).
    Metered,
    /// Wi-Fi, Ethernet.
    Unmetered,
}

/// What the device is like now (`Vault.setConditions`). Until told, the vault assumes an
/// unmetered network, charging, battery not low.
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct Conditions {
    /// The network.
    pub network: Network,
    /// Whether the device is charging.
    #[uniffi(default = true)]
    pub charging: bool,
    /// Whether the system says the battery is low.
    #[uniffi(default = false)]
    pub battery_low: bool,
}

impl From<Conditions> for core::Conditions {
    fn from(c: Conditions) -> Self {
        Self { network: c.network, charging: c.charging, battery_low: c.battery_low }
    }
}

impl From<core::Conditions> for Conditions {
    fn from(c: core::Conditions) -> Self {
        Self { network: c.network, charging: c.charging, battery_low: c.battery_low }
    }
}

/// What downloads require before they fetch anything (vault-wide, or one download's own).
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct Requirements {
    /// Only on an unmetered network (Wi-Fi only).
    #[uniffi(default = false)]
    pub unmetered_only: bool,
    /// Only while charging.
    #[uniffi(default = false)]
    pub charging_only: bool,
    /// Not while the battery is low.
    #[uniffi(default = false)]
    pub not_battery_low: bool,
    /// Keep this percent of the volume free, but at least `keepFreeAtLeast` and at most
    /// `keepFreeAtMost` bytes.
    #[uniffi(default = 5)]
    pub keep_free_percent: u8,
    /// Bytes kept free whatever the percentage gives (200 MiB).
    #[uniffi(default = 209715200)]
    pub keep_free_at_least: u64,
    /// Bytes the percentage is capped at (1 GiB).
    #[uniffi(default = 1073741824)]
    pub keep_free_at_most: u64,
}

impl From<Requirements> for core::Requirements {
    fn from(r: Requirements) -> Self {
        Self {
            unmetered_only: r.unmetered_only,
            charging_only: r.charging_only,
            not_battery_low: r.not_battery_low,
            keep_free: core::KeepFree {
                percent: r.keep_free_percent,
                at_least: r.keep_free_at_least,
                at_most: r.keep_free_at_most,
            },
        }
    }
}

impl From<core::Requirements> for Requirements {
    fn from(r: core::Requirements) -> Self {
        Self {
            unmetered_only: r.unmetered_only,
            charging_only: r.charging_only,
            not_battery_low: r.not_battery_low,
            keep_free_percent: r.keep_free.percent,
            keep_free_at_least: r.keep_free.at_least,
            keep_free_at_most: r.keep_free.at_most,
        }
    }
}

/// What a download would take of the vault's volume and quota, and whether it fits.
pub type SpaceCheck = core::SpaceCheck;

/// What a download would take of the vault's volume and quota, and whether it fits.
#[uniffi::remote(Record)]
pub struct SpaceCheck {
    /// Bytes it needs: its size, or its estimate and 5% (`exact` says which); null when unknown.
    pub needed: Option<u64>,
    /// Whether `needed` is the exact size.
    pub exact: bool,
    /// Bytes free on the volume.
    pub free: u64,
    /// Bytes downloads keep free there.
    pub keep_free: u64,
    /// Bytes this download may use: `free` less `keepFree` and what other unfinished downloads
    /// still expect.
    pub available: u64,
    /// Bytes the vault's assets store now (counted when there is a quota), and unfinished
    /// downloads still expect to.
    pub used: u64,
    /// The vault's quota, if any.
    pub quota: Option<u64>,
    /// Whether `needed` fits in `available`.
    pub fits_space: bool,
    /// Whether `used` + `needed` stays within `quota`.
    pub fits_quota: bool,
}
