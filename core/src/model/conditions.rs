//! What the app says about the device (its network and power) and what downloads require of
//! it. The core cannot see a phone's network or battery; it can measure free space itself.

use serde::{Deserialize, Serialize};

use super::states::AssetState;

/// The network the device is on, as the app sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// No connection.
    None,
    /// A connection the user pays for by the byte (cellular, a metered hotspot).
    Metered,
    /// Wi-Fi, Ethernet: not metered.
    Unmetered,
}

/// What the app reports about the device ([`crate::Vault::set_conditions`]). Until it reports
/// anything, the vault assumes [`Conditions::default`]: unmetered, charging, battery not low
/// (nothing holds a download back), which is also what the CLI assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// The network.
    pub network: Network,
    /// Whether the device is charging.
    pub charging: bool,
    /// Whether the system says the battery is low.
    pub battery_low: bool,
}

impl Default for Conditions {
    fn default() -> Self {
        Self { network: Network::Unmetered, charging: true, battery_low: false }
    }
}

/// How much of the volume the vault lives on downloads leave free: `percent` of the volume,
/// but at least `at_least` and at most `at_most` bytes (`at_least` wins if they cross).
///
/// The default keeps 5% of the volume, at least 200 MiB and at most 1 GiB. The cap is Android's
/// idea of "storage low" (5%, at most 500 MiB): without it, a 256 GB phone with 12 GB free
/// would refuse every download (docs/design.md D45).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepFree {
    /// Percent of the volume's size (0–100).
    pub percent: u8,
    /// Bytes kept free whatever the percentage gives.
    pub at_least: u64,
    /// Bytes the percentage is capped at.
    pub at_most: u64,
}

impl KeepFree {
    /// Nothing kept free: downloads may fill the volume.
    pub const NONE: KeepFree = KeepFree { percent: 0, at_least: 0, at_most: 0 };

    /// Exactly `bytes` kept free.
    pub const fn bytes(bytes: u64) -> KeepFree {
        KeepFree { percent: 0, at_least: bytes, at_most: bytes }
    }

    /// The bytes to keep free on a volume of `total` bytes.
    pub fn on(self, total: u64) -> u64 {
        let pct = (u128::from(total) * u128::from(self.percent.min(100)) / 100) as u64;
        pct.min(self.at_most).max(self.at_least)
    }
}

impl Default for KeepFree {
    /// 5% of the volume, at least 200 MiB, at most 1 GiB.
    fn default() -> Self {
        Self { percent: 5, at_least: 200 << 20, at_most: 1 << 30 }
    }
}

/// What a download requires before it fetches anything: vault-wide
/// ([`crate::VaultConfig::requirements`], [`crate::Vault::set_requirements`]), or for one
/// download ([`crate::DownloadRequest::requirements`], which replaces the vault's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Requirements {
    /// Only on an unmetered network (Wi-Fi only).
    pub unmetered_only: bool,
    /// Only while charging.
    pub charging_only: bool,
    /// Not while the battery is low.
    pub not_battery_low: bool,
    /// Free space downloads leave on the vault's volume.
    pub keep_free: KeepFree,
}

/// Why a download that wants to run waits. Each is reported as an [`AssetState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitReason {
    /// No network.
    Network,
    /// The network is metered and the download requires an unmetered one.
    Unmetered,
    /// The device is not charging and the download requires it.
    Charging,
    /// The battery is low and the download requires it not to be.
    Battery,
    /// Free space is below what must be kept free, or the vault's quota is used up.
    Storage,
}

impl WaitReason {
    /// The state an asset waiting for this reason is reported in.
    pub fn state(self) -> AssetState {
        match self {
            WaitReason::Network => AssetState::WaitingForNetwork,
            WaitReason::Unmetered => AssetState::WaitingForUnmetered,
            WaitReason::Charging => AssetState::WaitingForCharging,
            WaitReason::Battery => AssetState::WaitingForBattery,
            WaitReason::Storage => AssetState::WaitingForStorage,
        }
    }
}

/// The volume's space as measured (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Free for this process.
    pub free: u64,
    /// The volume's size.
    pub total: u64,
}

/// What a download would take of the vault's volume and quota, and whether it fits
/// ([`crate::Vault::check_space`]; [`crate::Vault::download`] refuses one that does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCheck {
    /// Bytes it needs: its size, or its estimate and 5% (`exact` says which); `None` when the
    /// source gives neither (it is then checked as it downloads).
    pub needed: Option<u64>,
    /// Whether `needed` is the exact size.
    pub exact: bool,
    /// Bytes free on the volume.
    pub free: u64,
    /// Bytes downloads keep free there ([`KeepFree`]).
    pub keep_free: u64,
    /// Bytes this download may use: `free` less `keep_free` and what other unfinished
    /// downloads still expect.
    pub available: u64,
    /// Bytes the vault's assets store now (counted when there is a quota), and unfinished
    /// downloads still expect to.
    pub used: u64,
    /// The vault's quota, if any.
    pub quota: Option<u64>,
    /// Whether `needed` fits in `available` (of unknown size: whether anything is available).
    pub fits_space: bool,
    /// Whether `used` + `needed` stays within `quota`.
    pub fits_quota: bool,
}

/// Whether a download with these requirements may run under these conditions; `None` if it may,
/// else why it waits. `space` is the volume's (when measured); `need` is what the download
/// still has to store (0 once it runs: it is then held back only when free space falls below
/// what is kept free); `over_quota` says the vault's quota is used up. A download already
/// waiting for storage (`waiting_for_storage`) runs again only once a little more is free (1% of
/// the volume, at most 16 MiB), so that it does not start and stop at the edge.
pub fn wait_reason(
    req: &Requirements,
    cond: &Conditions,
    space: Option<Space>,
    need: u64,
    over_quota: bool,
    waiting_for_storage: bool,
) -> Option<WaitReason> {
    if cond.network == Network::None {
        return Some(WaitReason::Network);
    }
    if req.unmetered_only && cond.network == Network::Metered {
        return Some(WaitReason::Unmetered);
    }
    if req.charging_only && !cond.charging {
        return Some(WaitReason::Charging);
    }
    if req.not_battery_low && cond.battery_low {
        return Some(WaitReason::Battery);
    }
    if over_quota {
        return Some(WaitReason::Storage);
    }
    if let Some(s) = space {
        let margin = if waiting_for_storage { (s.total / 100).min(16 << 20) } else { 0 };
        if s.free < req.keep_free.on(s.total).saturating_add(margin).saturating_add(need) {
            return Some(WaitReason::Storage);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    #[test]
    fn each_requirement_waits_for_its_condition() {
        let space = Some(Space { free: 10 * GB, total: 64 * GB });
        let all =
            Requirements { unmetered_only: true, charging_only: true, not_battery_low: true, ..Default::default() };
        let ok = Conditions::default();
        assert_eq!(wait_reason(&all, &ok, space, 0, false, false), None);
        let c = |network, charging, battery_low| Conditions { network, charging, battery_low };
        assert_eq!(
            wait_reason(&all, &c(Network::None, true, false), space, 0, false, false),
            Some(WaitReason::Network)
        );
        assert_eq!(
            wait_reason(&Requirements::default(), &c(Network::None, true, false), space, 0, false, false),
            Some(WaitReason::Network),
            "no network holds every download"
        );
        assert_eq!(
            wait_reason(&all, &c(Network::Metered, true, false), space, 0, false, false),
            Some(WaitReason::Unmetered)
        );
        assert_eq!(
            wait_reason(&Requirements::default(), &c(Network::Metered, false, true), space, 0, false, false),
            None
        );
        assert_eq!(
            wait_reason(&all, &c(Network::Unmetered, false, false), space, 0, false, false),
            Some(WaitReason::Charging)
        );
        assert_eq!(
            wait_reason(&all, &c(Network::Unmetered, true, true), space, 0, false, false),
            Some(WaitReason::Battery)
        );
        assert_eq!(wait_reason(&all, &ok, space, 0, true, false), Some(WaitReason::Storage));
    }

    #[test]
    fn keep_free_is_the_larger_of_its_two_parts_with_a_margin_to_start_again() {
        let keep = KeepFree::default();
        assert_eq!(keep.on(16 * GB), 16 * GB / 20, "5%");
        assert_eq!(keep.on(256 * GB), GB, "at most 1 GiB");
        assert_eq!(keep.on(GB), 200 << 20, "at least 200 MiB");
        assert_eq!(KeepFree::NONE.on(GB), 0);
        assert_eq!(KeepFree::bytes(5 << 20).on(GB), 5 << 20);
        assert_eq!(KeepFree { percent: 250, at_least: 0, at_most: u64::MAX }.on(GB), GB, "percent is capped at 100");
        assert_eq!(KeepFree { percent: 5, at_least: 10, at_most: 5 }.on(GB), 10, "at_least wins");
        let req = Requirements::default();
        let ok = Conditions::default();
        let at = |free| Some(Space { free, total: 16 * GB });
        let keep = 16 * GB / 20;
        assert_eq!(wait_reason(&req, &ok, at(keep - 1), 0, false, false), Some(WaitReason::Storage));
        assert_eq!(wait_reason(&req, &ok, at(keep), 0, false, false), None);
        assert_eq!(wait_reason(&req, &ok, at(keep), 0, false, true), Some(WaitReason::Storage), "not at the edge");
        assert_eq!(wait_reason(&req, &ok, at(keep + (16 << 20)), 0, false, true), None);
        assert_eq!(wait_reason(&req, &ok, at(keep + (16 << 20) - 1), 0, false, true), Some(WaitReason::Storage));
        assert_eq!(wait_reason(&req, &ok, None, 0, false, false), None, "unmeasured space holds nothing back");
        assert_eq!(wait_reason(&req, &ok, at(keep + 100), 100, false, false), None, "what it needs fits");
        assert_eq!(wait_reason(&req, &ok, at(keep + 100), 101, false, false), Some(WaitReason::Storage));
    }
}
