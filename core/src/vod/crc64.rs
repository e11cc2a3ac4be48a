//! CRC-64 as Alibaba Cloud OSS computes it for objects (`x-oss-hash-crc64ecma`) and as VOD reports
//! it for mezzanine files: the ECMA-182 polynomial, reflected, initial value and final XOR all
//! ones (catalogued as CRC-64/XZ; Go's `crc64.ECMA` table with the OSS SDK's update).

use crc::{CRC_64_XZ, Crc, Digest, Table};

static CRC64: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_XZ);

/// A running CRC-64/ECMA.
#[derive(Clone)]
pub struct Crc64(Digest<'static, u64, Table<16>>);

impl Default for Crc64 {
    fn default() -> Self {
        Self(CRC64.digest())
    }
}

impl Crc64 {
    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The CRC of everything added.
    pub fn finish(self) -> u64 {
        self.0.finalize()
    }
}

/// The CRC-64/ECMA of `data`.
#[cfg(test)]
fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        // The catalogue check value of CRC-64/XZ (reveng.sourceforge.io/crc-catalogue).
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(crc64(b""), 0);
        let mut c = Crc64::default();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0x995D_C9BB_DF19_39FA);
    }
}
