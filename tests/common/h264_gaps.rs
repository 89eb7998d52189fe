//! An H.264 stream with `gaps_in_frame_num`: reference pictures that no kept picture refers to are removed, and
//! the SPS says such gaps are allowed (as when a temporal layer is dropped from a stream). Made from a libx264
//! encode in MP4: x264's strict B-pyramid makes each middle B-frame a reference picture (it advances
//! `frame_num`) that only its own mini-GOP's non-reference B-frames use; dropping it and them leaves a stream
//! whose kept pictures decode exactly as in the full stream, with a gap in `frame_num` and in the time stamps.

use std::path::Path;
use std::process::Command;

use super::run;

/// The NAL units of an Annex-B byte stream (without start codes or trailing zero bytes).
fn nal_units(d: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= d.len() {
        if d[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut end = starts.get(k + 1).map_or(d.len(), |&n| n - 3);
            while end > s && d[end - 1] == 0 {
                end -= 1;
            }
            &d[s..end]
        })
        .collect()
}

/// Removes emulation prevention bytes (`00 00 03` -> `00 00`).
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut zeros = 0;
    for &x in b {
        if zeros >= 2 && x == 3 {
            zeros = 0;
            continue;
        }
        out.push(x);
        zeros = if x == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Adds emulation prevention bytes.
fn escape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + 4);
    let mut zeros = 0;
    for &x in b {
        if zeros >= 2 && x <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(x);
        zeros = if x == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Reads bits and Exp-Golomb codes, most significant bit first.
struct Bits<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> u32 {
        let v = (self.b[self.pos / 8] >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        u32::from(v)
    }
    fn u(&mut self, n: u32) -> u32 {
        (0..n).fold(0, |v, _| v * 2 + self.bit())
    }
    fn ue(&mut self) -> u32 {
        let mut zeros = 0;
        while self.bit() == 0 {
            zeros += 1;
        }
        (1 << zeros) - 1 + self.u(zeros)
    }
}

/// Sets `gaps_in_frame_num_value_allowed_flag` in an SPS NAL unit (header byte included); the escaped length
/// stays the same for the streams made here (asserted, so that the `avcC` box keeps its size).
fn allow_gaps(sps: &[u8]) -> Vec<u8> {
    let mut rbsp = unescape(&sps[1..]);
    let mut r = Bits { b: &rbsp, pos: 0 };
    let profile = r.u(8);
    r.u(16); // constraint flags, level
    r.ue(); // seq_parameter_set_id
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        if r.ue() == 3 {
            r.u(1); // separate_colour_plane_flag
        }
        r.ue(); // bit_depth_luma_minus8
        r.ue(); // bit_depth_chroma_minus8
        r.u(1); // qpprime_y_zero_transform_bypass_flag
        assert_eq!(r.u(1), 0, "an SPS with scaling matrices");
    }
    r.ue(); // log2_max_frame_num_minus4
    assert_eq!(r.ue(), 0, "pic_order_cnt_type other than 0");
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
    r.ue(); // max_num_ref_frames
    let at = r.pos;
    rbsp[at / 8] |= 0x80 >> (at % 8);
    let mut out = vec![sps[0]];
    out.extend(escape(&rbsp));
    assert_eq!(out.len(), sps.len(), "the SPS changed length");
    out
}

/// Decode-order indices of the access units to drop: the 3rd and 7th reference B-pictures with the
/// non-reference pictures that follow each of them up to the next reference picture.
fn dropped_access_units(annex_b: &[u8]) -> Vec<usize> {
    let (mut au, mut ref_b, mut dropping) = (0usize, 0, false);
    let mut out = Vec::new();
    let mut first = true;
    for nal in nal_units(annex_b) {
        let (kind, nal_ref_idc) = (nal[0] & 31, (nal[0] >> 5) & 3);
        if kind != 1 && kind != 5 {
            continue;
        }
        let head = unescape(&nal[1..nal.len().min(12)]);
        let mut r = Bits { b: &head, pos: 0 };
        let first_mb = r.ue();
        let slice_type = r.ue() % 5;
        if first_mb == 0 && !first {
            au += 1;
        }
        first = false;
        if nal_ref_idc != 0 && slice_type == 1 {
            ref_b += 1;
            dropping = ref_b == 3 || ref_b == 7;
        } else if nal_ref_idc != 0 {
            dropping = false;
        }
        if dropping && first_mb == 0 {
            out.push(au);
        }
    }
    out
}

/// Makes the fixture at `dst` (MP4).
pub fn make(dst: &Path) {
    let full = dst.with_extension("full.mp4");
    let mut enc = Command::new("ffmpeg");
    enc.args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"]);
    enc.args(["testsrc2=size=192x108:rate=30", "-frames:v", "90"]);
    enc.args([
        "-c:v", "libx264", "-bf", "3", "-refs", "1", "-pix_fmt", "yuv420p",
    ]);
    enc.args(["-x264-params", "b-pyramid=strict:scenecut=0:keyint=45"]);
    run(enc.arg(&full));
    let annex_b = run(Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(&full)
        .args([
            "-c",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
            "-",
        ]));
    let drop = dropped_access_units(&annex_b);
    assert_eq!(drop.len(), 6, "unexpected GOP structure: {drop:?}");
    let expr = drop
        .iter()
        .map(|n| format!("eq(n\\,{n})"))
        .collect::<Vec<_>>()
        .join("+");
    run(Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-i"])
        .arg(&full)
        .args(["-c", "copy", "-bsf:v"])
        .arg(format!("noise=drop={expr}"))
        .arg(dst));
    std::fs::remove_file(&full).unwrap();

    // The SPS lives in the `avcC` box: flip its flag in place.
    let mut b = std::fs::read(dst).unwrap();
    let at = b
        .windows(4)
        .position(|w| w == b"avcC")
        .expect("no avcC box")
        + 4;
    assert_eq!(b[at + 5] & 31, 1, "one SPS expected");
    let len = usize::from(u16::from_be_bytes([b[at + 6], b[at + 7]]));
    let sps = allow_gaps(&b[at + 8..at + 8 + len]);
    b[at + 8..at + 8 + len].copy_from_slice(&sps);
    std::fs::write(dst, b).unwrap();
}
