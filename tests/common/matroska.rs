//! Matroska with laced video blocks and no frame durations: several frames in one `SimpleBlock` (Xiph lacing)
//! share the block's time stamp, and with neither `BlockDuration` nor the track's `DefaultDuration` the demuxer
//! gives every frame after a lace's first no time stamp at all. With B-frames, display order is then not in the
//! container. The ffmpeg CLI cannot write lacing for video, so this rewrites a Matroska file that it wrote.

use std::path::Path;

const SEGMENT: u32 = 0x1853_8067;
const SEEK_HEAD: u32 = 0x114D_9B74;
const VOID: u32 = 0xEC;
const CRC32: u32 = 0xBF;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const DEFAULT_DURATION: u32 = 0x23_E383;
const CLUSTER: u32 = 0x1F43_B675;
const SIMPLE_BLOCK: u32 = 0xA3;
const CUES: u32 = 0x1C53_BB6B;
const TAGS: u32 = 0x1254_C367;

/// An EBML variable-size integer at `b[at..]`: (value, bytes used). `keep_marker` for element IDs.
fn vint(b: &[u8], at: usize, keep_marker: bool) -> (u64, usize) {
    let first = b[at];
    let len = first.leading_zeros() as usize + 1;
    assert!(len <= 8, "bad EBML number");
    let mut v = u64::from(if keep_marker {
        first
    } else {
        first & (0xFFu16 >> len) as u8
    });
    for k in 1..len {
        v = (v << 8) | u64::from(b[at + k]);
    }
    (v, len)
}

/// The elements of `b[start..end]`: (id, header bytes, payload range). An unknown size runs to `end`.
fn elements(b: &[u8], start: usize, end: usize) -> Vec<(u32, &[u8], std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let (id, id_len) = vint(b, at, true);
        let (size, size_len) = vint(b, at + id_len, false);
        let body = at + id_len + size_len;
        let unknown = size == (1u64 << (7 * size_len)) - 1;
        let stop = if unknown { end } else { body + size as usize };
        out.push((id as u32, &b[at..body], body..stop));
        at = stop;
    }
    out
}

/// An element with an 8-byte size field.
fn element(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = id
        .to_be_bytes()
        .into_iter()
        .skip_while(|&x| x == 0)
        .collect();
    out.push(0x01);
    out.extend(&(payload.len() as u64).to_be_bytes()[1..]);
    out.extend(payload);
    out
}

/// The children of an element without its CRC-32 (and, where `drop` says so, others).
fn copy_children(b: &[u8], body: std::ops::Range<usize>, drop: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, head, range) in elements(b, body.start, body.end) {
        if id != CRC32 && !drop.contains(&id) {
            out.extend(head);
            out.extend(&b[range]);
        }
    }
    out
}

/// Rewrites the Matroska file at `path` (one video track, as the ffmpeg CLI writes it): up to `lace` frames per
/// block, a keyframe always starting a block; `DefaultDuration`, seek head, cues, tags and CRCs removed.
pub fn lace_blocks(path: &Path, lace: usize) {
    let b = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    for (id, head, body) in elements(&b, 0, b.len()) {
        if id != SEGMENT {
            out.extend(head);
            out.extend(&b[body]);
            continue;
        }
        let mut segment = Vec::new();
        for (id, head, body) in elements(&b, body.start, body.end) {
            match id {
                SEEK_HEAD | VOID | CUES | TAGS | CRC32 => {}
                INFO => segment.extend(element(INFO, &copy_children(&b, body, &[]))),
                TRACKS => {
                    let mut tracks = Vec::new();
                    for (id, _, entry) in elements(&b, body.start, body.end) {
                        if id != CRC32 {
                            let kept = copy_children(&b, entry, &[DEFAULT_DURATION]);
                            tracks.extend(element(id, &kept));
                        }
                    }
                    segment.extend(element(TRACKS, &tracks));
                }
                CLUSTER => segment.extend(element(CLUSTER, &lace_cluster(&b, body, lace))),
                _ => {
                    segment.extend(head);
                    segment.extend(&b[body]);
                }
            }
        }
        out.extend(element(SEGMENT, &segment));
    }
    std::fs::write(path, out).unwrap();
}

/// A cluster's children with its simple blocks laced.
fn lace_cluster(b: &[u8], body: std::ops::Range<usize>, lace: usize) -> Vec<u8> {
    // (track number byte, relative time code, flags, frame) of the blocks waiting to be laced.
    let mut group: Vec<(u8, [u8; 2], u8, &[u8])> = Vec::new();
    let mut out = Vec::new();
    let flush = |group: &mut Vec<(u8, [u8; 2], u8, &[u8])>, out: &mut Vec<u8>| {
        let Some(&(track, time, flags, _)) = group.first() else {
            return;
        };
        let mut block = vec![track, time[0], time[1]];
        if group.len() == 1 {
            block.push(flags);
        } else {
            block.push(flags | 0x02); // Xiph lacing
            block.push((group.len() - 1) as u8);
            for g in &group[..group.len() - 1] {
                let mut n = g.3.len();
                while n >= 255 {
                    block.push(255);
                    n -= 255;
                }
                block.push(n as u8);
            }
        }
        for g in group.iter() {
            block.extend(g.3);
        }
        out.extend(element(SIMPLE_BLOCK, &block));
        group.clear();
    };
    for (id, head, range) in elements(b, body.start, body.end) {
        if id == CRC32 {
            continue;
        }
        if id != SIMPLE_BLOCK {
            flush(&mut group, &mut out);
            out.extend(head);
            out.extend(&b[range]);
            continue;
        }
        let block = &b[range];
        assert!(block[0] & 0x80 != 0, "track numbers above 127");
        let flags = block[3];
        assert_eq!(flags & 0x06, 0, "already laced");
        if flags & 0x80 != 0 || group.len() >= lace {
            flush(&mut group, &mut out);
        }
        group.push((block[0], [block[1], block[2]], flags, &block[4..]));
    }
    flush(&mut group, &mut out);
    out
}
