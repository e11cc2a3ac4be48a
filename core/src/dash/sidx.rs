//! The segment index box (`sidx`, ISO/IEC 14496-12 8.16.3) of a `SegmentBase` representation:
//! the byte ranges and durations of its subsegments.

use super::MpdError;
use super::segments::{Piece, Pieces, Segment};

fn be(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
    bytes.get(at..at + n).map(|b| b.iter().fold(0u64, |v, x| (v << 8) | u64::from(*x)))
}

/// Fills `pieces.segments` from the `sidx` in `bytes`, which were read from offset `at` of the
/// representation's file (its `@indexRange`).
pub fn apply(pieces: &mut Pieces, bytes: &[u8], at: u64) -> Result<(), MpdError> {
    let bad = |m: &str| MpdError::Invalid(format!("the segment index (sidx): {m}"));
    let index = pieces.index.take().ok_or_else(|| bad("no index to read"))?;
    // Find the sidx among the boxes read (a styp or free may come first).
    let mut pos = 0usize;
    let (start, size) = loop {
        let size = be(bytes, pos, 4).ok_or_else(|| bad("no sidx box in the index range"))?;
        let kind = bytes.get(pos + 4..pos + 8).ok_or_else(|| bad("truncated box"))?;
        let (size, header) = match size {
            1 => (be(bytes, pos + 8, 8).ok_or_else(|| bad("truncated box"))?, 16),
            0 => ((bytes.len() - pos) as u64, 8),
            s => (s, 8),
        };
        if size < header {
            return Err(bad("a box smaller than its header"));
        }
        if kind == b"sidx" {
            break (pos, size as usize);
        }
        pos = pos
            .checked_add(size as usize)
            .filter(|p| *p < bytes.len())
            .ok_or_else(|| bad("no sidx box in the index range"))?;
    };
    let b = start.checked_add(size).and_then(|end| bytes.get(start..end)).ok_or_else(|| bad("truncated sidx"))?;
    let header = if be(b, 0, 4) == Some(1) { 16 } else { 8 };
    let version = *b.get(header).ok_or_else(|| bad("truncated sidx"))?;
    let mut p = header + 4 + 4; // version+flags, reference_ID
    let timescale = be(b, p, 4).filter(|t| *t > 0).ok_or_else(|| bad("no timescale"))?;
    p += 4;
    let (ept, first_offset) = if version == 0 {
        let v = (be(b, p, 4), be(b, p + 4, 4));
        p += 8;
        v
    } else {
        let v = (be(b, p, 8), be(b, p + 8, 8));
        p += 16;
        v
    };
    let (mut t, first_offset) =
        (ept.ok_or_else(|| bad("truncated sidx"))?, first_offset.ok_or_else(|| bad("truncated sidx"))?);
    p += 2; // reserved
    let count = be(b, p, 2).ok_or_else(|| bad("truncated sidx"))? as usize;
    p += 2;
    let overflow = || bad("offsets past 2^64");
    let mut offset =
        at.checked_add(start as u64 + size as u64).and_then(|o| o.checked_add(first_offset)).ok_or_else(overflow)?;
    let mut segments = Vec::with_capacity(count);
    for i in 0..count {
        let q = p + i * 12;
        let word = be(b, q, 4).ok_or_else(|| bad("truncated sidx"))?;
        let d = be(b, q + 4, 4).ok_or_else(|| bad("truncated sidx"))?;
        if word >> 31 == 1 {
            return Err(MpdError::Unsupported("a hierarchical segment index (sidx of sidx)".into()));
        }
        let len = word & 0x7fff_ffff;
        if len == 0 {
            return Err(bad("a subsegment of 0 bytes"));
        }
        segments.push(Segment { piece: Piece { url: index.url.clone(), range: Some((offset, len)) }, t, d: d.max(1) });
        offset = offset.checked_add(len).ok_or_else(overflow)?;
        t = t.checked_add(d).ok_or_else(overflow)?;
    }
    if segments.is_empty() {
        return Err(bad("no subsegments"));
    }
    // Times are now in the index's timescale: the offset too.
    pieces.pto = u64::try_from(u128::from(pieces.pto) * u128::from(timescale) / u128::from(pieces.timescale.max(1)))
        .map_err(|_| bad("a presentation time offset past 2^64 in the index's timescale"))?;
    pieces.timescale = timescale;
    pieces.segments = segments;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn sidx(refs: &[(u32, u32)], first_offset: u32) -> Vec<u8> {
        let mut b = Vec::new();
        let size = 8 + 4 + 4 + 4 + 4 + 4 + 2 + 2 + 12 * refs.len();
        b.extend_from_slice(&(size as u32).to_be_bytes());
        b.extend_from_slice(b"sidx");
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        b.extend_from_slice(&1000u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&first_offset.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(refs.len() as u16).to_be_bytes());
        for (len, d) in refs {
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&0x9000_0000u32.to_be_bytes());
        }
        b
    }

    #[test]
    fn ranges_follow_the_index() {
        let url = Url::parse("http://h/a.mp4").unwrap();
        let mut p = Pieces {
            timescale: 1,
            pto: 0,
            init: None,
            segments: vec![],
            index: Some(Piece { url: url.clone(), range: Some((800, 56)) }),
        };
        let b = sidx(&[(1000, 2000), (500, 1500)], 0);
        apply(&mut p, &b, 800).unwrap();
        assert_eq!(p.timescale, 1000);
        assert_eq!(p.segments[0].piece.range, Some((800 + b.len() as u64, 1000)));
        assert_eq!(p.segments[1].piece.range, Some((800 + b.len() as u64 + 1000, 500)));
        assert_eq!((p.segments[1].t, p.segments[1].d), (2000, 1500));
        let mut p2 = Pieces { index: Some(Piece { url, range: None }), ..p.clone() };
        assert!(apply(&mut p2, &b[..b.len() - 3], 0).is_err());
    }
}
