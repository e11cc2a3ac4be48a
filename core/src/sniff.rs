//! Checks that downloaded (and decrypted) bytes are the media they claim to be, so an error page,
//! a wrong key or a truncated response is caught at the segment that has it.

/// What a segment's bytes turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// MPEG-2 transport stream.
    Ts,
    /// ISO BMFF (fMP4 segment or init section, MP4).
    Mp4,
    /// Packed audio (ADTS AAC, MP3, AC-3, optionally after an ID3 tag).
    PackedAudio,
    /// WebVTT subtitles.
    WebVtt,
}

/// Why bytes are not acceptable media.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    /// Empty body.
    #[error("empty body")]
    Empty,
    /// An HTML or XML document (an error page served with status 200).
    #[error("got an HTML/XML document, not media")]
    Html,
    /// A transport stream whose packets lose sync.
    #[error("MPEG-TS sync byte missing at offset {0}")]
    TsSync(usize),
    /// ISO BMFF boxes that do not add up.
    #[error("MP4 box structure broken at offset {0}")]
    Boxes(usize),
    /// None of the formats we accept.
    #[error("unrecognised media (starts with {0})")]
    Unknown(String),
}

/// Incremental checker fed with the decrypted bytes as they are stored. Both structural walks
/// (TS packet sync, MP4 box sizes) run on every byte; the first 16 bytes decide which applies.
#[derive(Debug, Default)]
pub struct Sniffer {
    head: Vec<u8>,
    len: u64,
    ts_bad: Option<u64>,
    box_start: u64,
    box_hdr: [u8; 16],
    box_hdr_len: usize,
    /// Where the next box starts; `u64::MAX` after a box of size 0 ("to the end").
    box_next: u64,
    box_bad: Option<u64>,
}

const TS_PACKET: u64 = 188;
const BOX_TYPES: [&[u8; 4]; 14] = [
    b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"sidx", b"emsg", b"prft", b"free", b"skip", b"uuid", b"ssix",
    b"meta", b"pdin",
];

impl Sniffer {
    /// A fresh checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        let take = (16 - self.head.len()).min(data.len());
        self.head.extend_from_slice(&data[..take]);
        let base = self.len;
        let end = base + data.len() as u64;
        if self.ts_bad.is_none() {
            let mut k = base.div_ceil(TS_PACKET) * TS_PACKET;
            while k < end {
                if data[(k - base) as usize] != 0x47 {
                    self.ts_bad = Some(k);
                    break;
                }
                k += TS_PACKET;
            }
        }
        let mut i = 0usize;
        while self.box_bad.is_none() && i < data.len() {
            let abs = base + i as u64;
            if self.box_hdr_len == 0 {
                if abs < self.box_next {
                    i += (self.box_next - abs).min((data.len() - i) as u64) as usize;
                    continue;
                }
                self.box_start = abs;
            }
            let want = if self.box_hdr_len >= 8 && self.size32() == 1 { 16 } else { 8 };
            let n = (want - self.box_hdr_len).min(data.len() - i);
            self.box_hdr[self.box_hdr_len..self.box_hdr_len + n].copy_from_slice(&data[i..i + n]);
            self.box_hdr_len += n;
            i += n;
            if self.box_hdr_len < want {
                continue;
            }
            let size = match self.size32() {
                1 if want == 8 => continue, // read the 64-bit size next
                1 => u64::from_be_bytes(self.box_hdr[8..16].try_into().unwrap_or([0; 8])),
                0 => u64::MAX - self.box_start,
                s => u64::from(s),
            };
            if size < want as u64 {
                self.box_bad = Some(self.box_start);
            }
            self.box_next = self.box_start.saturating_add(size);
            self.box_hdr_len = 0;
        }
        self.len = end;
    }

    fn size32(&self) -> u32 {
        u32::from_be_bytes([self.box_hdr[0], self.box_hdr[1], self.box_hdr[2], self.box_hdr[3]])
    }

    /// The verdict once every byte has been fed.
    ///
    /// # Errors
    /// A [`SniffError`] saying what is wrong.
    pub fn finish(&self) -> Result<MediaKind, SniffError> {
        if self.len == 0 {
            return Err(SniffError::Empty);
        }
        let kind = detect(&self.head)?;
        match kind {
            MediaKind::Ts => {
                if let Some(at) = self.ts_bad {
                    return Err(SniffError::TsSync(at as usize));
                }
            }
            MediaKind::Mp4 => {
                let bad = self.box_bad.or_else(|| {
                    let complete = self.box_hdr_len == 0 && (self.box_next == self.len || self.box_next == u64::MAX);
                    (!complete).then_some(self.box_start)
                });
                if let Some(at) = bad {
                    return Err(SniffError::Boxes(at as usize));
                }
            }
            MediaKind::PackedAudio | MediaKind::WebVtt => {}
        }
        Ok(kind)
    }
}

fn detect(head: &[u8]) -> Result<MediaKind, SniffError> {
    let h = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if h.is_empty() {
        return Err(SniffError::Empty);
    }
    if h[0] == 0x47 {
        return Ok(MediaKind::Ts);
    }
    if h.len() >= 8 && BOX_TYPES.iter().any(|t| &h[4..8] == *t) {
        return Ok(MediaKind::Mp4);
    }
    if h.starts_with(b"WEBVTT") {
        return Ok(MediaKind::WebVtt);
    }
    if h.starts_with(b"ID3") || (h.len() >= 2 && h[0] == 0xFF && h[1] & 0xE0 == 0xE0) || h.starts_with(&[0x0B, 0x77]) {
        return Ok(MediaKind::PackedAudio);
    }
    let t = h.trim_ascii_start();
    if t.first() == Some(&b'<') {
        return Err(SniffError::Html);
    }
    Err(SniffError::Unknown(hex::encode(&h[..h.len().min(8)])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data: &[u8], piece: usize) -> Result<MediaKind, SniffError> {
        let mut s = Sniffer::new();
        for c in data.chunks(piece.max(1)) {
            s.update(c);
        }
        s.finish()
    }

    fn ts(packets: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..packets {
            let mut p = vec![0u8; 188];
            p[0] = 0x47;
            v.extend(p);
        }
        v
    }

    fn mp4() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(16u32.to_be_bytes());
        v.extend(b"styp");
        v.extend([0u8; 8]);
        v.extend(24u32.to_be_bytes());
        v.extend(b"moof");
        v.extend([0u8; 16]);
        v.extend(1u32.to_be_bytes()); // 64-bit size
        v.extend(b"mdat");
        v.extend(20u64.to_be_bytes());
        v.extend([0u8; 4]);
        v
    }

    #[test]
    fn accepts_real_shapes_in_any_split() {
        for piece in [1, 3, 7, 16, 100, 10_000] {
            assert_eq!(check(&ts(5), piece), Ok(MediaKind::Ts), "piece {piece}");
            assert_eq!(check(&mp4(), piece), Ok(MediaKind::Mp4), "piece {piece}");
            assert_eq!(check(b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", piece), Ok(MediaKind::WebVtt));
            assert_eq!(check(b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xf1", piece), Ok(MediaKind::PackedAudio));
        }
    }

    #[test]
    fn rejects_broken_media() {
        let mut bad = ts(5);
        bad[188 * 3] = 0x00;
        assert_eq!(check(&bad, 50), Err(SniffError::TsSync(188 * 3)));
        let mut cut = mp4();
        cut.truncate(cut.len() - 2);
        assert!(matches!(check(&cut, 5), Err(SniffError::Boxes(_))));
        assert_eq!(check(b"<!DOCTYPE html><html>403</html>", 4), Err(SniffError::Html));
        assert_eq!(check(b"", 4), Err(SniffError::Empty));
        assert!(matches!(check(&[0x12u8; 40], 4), Err(SniffError::Unknown(_))));
    }
}
