//! Fixtures made from other fixtures: the container shapes real data sets carry (MP4/MOV edit lists, negative
//! composition offsets, ...), made at test time with the ffmpeg CLI from a plain fixture, or by rewriting an MP4's
//! boxes where the CLI cannot write the shape.

use std::path::Path;
use std::process::Command;

use super::run;

/// A fixture derived from another one.
pub struct Derived {
    /// File name inside the fixture directory.
    pub name: &'static str,
    /// The fixture it is made from.
    pub from: &'static str,
    /// Makes `dst` from `src`.
    pub make: fn(&Path, &Path),
}

/// Writes to `dst` the transport stream `src` without its first 45 %, cut at a 188-byte packet boundary: the
/// stream then begins with a partial PES packet, inside a group of pictures.
fn cut_ts_front(src: &Path, dst: &Path) {
    let data = std::fs::read(src).expect("read the TS fixture");
    let cut = data.len() / 188 * 45 / 100 * 188;
    std::fs::write(dst, &data[cut..]).expect("write the cut TS fixture");
}

/// `ffmpeg -y -loglevel error <before> -i SRC <after> DST`.
fn ffmpeg(src: &Path, dst: &Path, before: &[&str], after: &[&str]) {
    run(Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(before)
        .arg("-i")
        .arg(src)
        .args(after)
        .arg(dst));
}

/// Every derived fixture.
pub const DERIVED: &[Derived] = &[
    // Cut by stream copy at a non-keyframe without moving time stamps: the edit list hides the pictures from the
    // keyframe before 1.5 s up to 1.5 s (decoded, never shown), and the cut ends in the middle of a GOP.
    Derived {
        name: "edit_hidden_lead.mov",
        from: "h264_b2_gop60_10s.mp4",
        make: |s, d| ffmpeg(s, d, &["-ss", "1.5"], &["-t", "5", "-c", "copy"]),
    },
    // The same for HEVC with B-frames, in MP4.
    Derived {
        name: "edit_hidden_lead_hevc.mp4",
        from: "hevc8_b.mp4",
        make: |s, d| {
            ffmpeg(
                s,
                d,
                &["-ss", "0.6"],
                &["-t", "1", "-c", "copy", "-tag:v", "hvc1"],
            )
        },
    },
    // An empty edit first: the video starts 0.5 s into the presentation.
    Derived {
        name: "edit_empty_delay.mp4",
        from: "h264_b2_gop60_10s.mp4",
        make: |s, d| ffmpeg(s, d, &["-itsoffset", "0.5"], &["-t", "3", "-c", "copy"]),
    },
    // Negative composition offsets (a version 1 `ctts` box): decode time stamps start below zero, no edit needed.
    Derived {
        name: "ctts_v1.mp4",
        from: "h264_b2_gop60_10s.mp4",
        make: |s, d| {
            ffmpeg(
                s,
                d,
                &[],
                &["-t", "4", "-c", "copy", "-movflags", "negative_cts_offsets"],
            )
        },
    },
    // Three edits: 1.0-2.0 s, 4.5-5.5 s (both starting between keyframes) and 8.0-8.5 s of the source, played one
    // after the other; the MP4/MOV demuxer feeds each edit's pre-roll pictures marked discard.
    Derived {
        name: "edit_three_edits.mp4",
        from: "h264_b2_gop60_10s.mp4",
        make: |s, d| {
            ffmpeg(s, d, &[], &["-c", "copy"]);
            rewrite_edit_list(d, &[(1.0, 1.0), (4.5, 1.0), (8.0, 0.5)]);
        },
    },
    // MPEG-TS time stamps are 33-bit: offset so that they wrap about 1.7 s in.
    Derived {
        name: "h264_ts_wrap.ts",
        from: "h264_b2_gop60_10s.mp4",
        make: |s, d| {
            ffmpeg(
                s,
                d,
                &[],
                &["-t", "4", "-c", "copy", "-output_ts_offset", "95442"],
            )
        },
    },
    // An MPEG-TS recording that begins in the middle of a keyframe group: the file's first 45 % cut off at a
    // 188-byte packet boundary, so it starts with a partial PES packet and with pictures whose references are
    // gone. Frame 0 is the first one the ffmpeg CLI shows, at the next keyframe.
    Derived {
        name: "h264_ts_cut.ts",
        from: "h264_b2_gop60_10s.mp4",
        make: |s, d| {
            ffmpeg(s, d, &[], &["-t", "6", "-c", "copy", "-f", "mpegts"]);
            cut_ts_front(d, d);
        },
    },
    // An intra-refresh MPEG-TS cut the same way: it begins at a recovery point (a P-picture), and libavcodec shows
    // nothing before that point's recovery picture, 18 pictures on.
    Derived {
        name: "h264_intra_refresh_cut.ts",
        from: "h264_intra_refresh.ts",
        make: |s, d| cut_ts_front(s, d),
    },
    // An intra-refresh stream with B-frames moved from Matroska to MPEG-TS (the parameter sets then stand only
    // before the one IDR picture) and cut the same way: no sequence header is left, and the ffmpeg CLI decodes
    // no picture from it.
    Derived {
        name: "h264_no_parameter_sets.ts",
        from: "h264_intra_refresh_b.mkv",
        make: |s, d| {
            ffmpeg(s, d, &[], &["-c", "copy", "-f", "mpegts"]);
            cut_ts_front(d, d);
        },
    },
    // The same for MPEG-2, whose groups are open: the B-pictures after the first keyframe that are shown before it
    // lost their earlier reference, and libavcodec drops them too.
    Derived {
        name: "mpeg2_ts_cut.ts",
        from: "mpeg2_b.ts",
        make: |s, d| {
            cut_ts_front(s, d);
        },
    },
    // HEVC cut the same way: libavcodec shows the pictures before the first CRA (decoded against missing
    // references, the parameter sets coming from the stream's extradata) and drops that CRA's RASL pictures.
    Derived {
        name: "hevc_ts_cut.ts",
        from: "hevc_opengop.mp4",
        make: |s, d| {
            ffmpeg(s, d, &[], &["-c", "copy", "-f", "mpegts"]);
            cut_ts_front(d, d);
        },
    },
    // HEVC cut at a CRA picture of an open GOP: its RASL pictures cannot be decoded and are dropped.
    Derived {
        name: "hevc_cra_start.ts",
        from: "hevc_opengop.mp4",
        make: |s, d| ffmpeg(s, d, &["-ss", "1.0"], &["-c", "copy"]),
    },
    // H.264 with gaps in frame_num (the SPS allows them): two mini-GOPs of reference and non-reference B-frames
    // that nothing else refers to are gone (see `h264_gaps`).
    Derived {
        name: "h264_frame_num_gaps.mp4",
        from: "h264_b2_gop60_10s.mp4",
        make: |_, d| super::h264_gaps::make(d),
    },
    // Matroska whose blocks lace three frames each with no durations: two of every three packets have no time
    // stamp, and the stream has B-frames (see `matroska`).
    Derived {
        name: "h264_laced_untimed.mkv",
        from: "h264_b2_gop60_10s.mp4",
        make: |_, d| {
            let mut cmd = Command::new("ffmpeg");
            cmd.args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"]);
            cmd.args(["testsrc2=size=192x108:rate=30", "-frames:v", "100"]);
            cmd.args([
                "-c:v", "libx264", "-bf", "3", "-g", "30", "-pix_fmt", "yuv420p",
            ]);
            run(cmd.arg(d));
            super::matroska::lace_blocks(d, 3);
        },
    },
    // Two video tracks, the larger one second: the stream chosen must be ffmpeg's.
    Derived {
        name: "two_video_tracks.mp4",
        from: "h264_b2_gop60_10s.mp4",
        make: |_, d| {
            let mut cmd = Command::new("ffmpeg");
            cmd.args(["-y", "-loglevel", "error"]);
            cmd.args(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25"]);
            cmd.args(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=30"]);
            cmd.args([
                "-t", "2", "-map", "0:v", "-map", "1:v", "-c:v", "libx264", "-bf", "2",
            ]);
            cmd.args(["-pix_fmt", "yuv420p"]);
            run(cmd.arg(d));
        },
    },
    // A one-picture PNG track stored before the video (cover art kept as a plain Matroska video track, not as an
    // attachment): the ffmpeg CLI takes the larger picture, the H.264 track.
    Derived {
        name: "still_track_first.mkv",
        from: "h264_b2_gop60_10s.mp4",
        make: |s, d| {
            let mut cmd = Command::new("ffmpeg");
            cmd.args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"]);
            cmd.args(["testsrc=size=64x64:rate=1:duration=1", "-i"])
                .arg(s);
            cmd.args([
                "-map", "0:v", "-map", "1:v", "-c:v:0", "png", "-c:v:1", "copy",
            ]);
            run(cmd.arg(d));
        },
    },
    // Two transport streams of different picture sizes, concatenated: a new SPS of another size mid-stream,
    // and time stamps that restart.
    Derived {
        name: "size_change.ts",
        from: "h264_b2_gop60_10s.mp4",
        make: |_, d| {
            let part = |size: &str, n: usize| {
                let p = d.with_extension(format!("part{n}.ts"));
                let mut cmd = Command::new("ffmpeg");
                cmd.args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"]);
                cmd.arg(format!("testsrc2=size={size}:rate=30"));
                cmd.args(["-frames:v", "45", "-c:v", "libx264", "-bf", "2", "-g", "15"]);
                cmd.args(["-pix_fmt", "yuv420p"]);
                run(cmd.arg(&p));
                let bytes = std::fs::read(&p).unwrap();
                std::fs::remove_file(&p).unwrap();
                bytes
            };
            std::fs::write(d, [part("192x108", 0), part("160x120", 1)].concat()).unwrap();
        },
    },
];

/// Big-endian u32 at `at`.
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// The boxes in `b[start..end]`: (type, offset of the box, size).
fn boxes(b: &[u8], start: usize, end: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        let size = be32(b, at) as usize;
        assert!(
            size >= 8 && at + size <= end,
            "a box that is not 32-bit sized"
        );
        out.push((b[at + 4..at + 8].try_into().unwrap(), at, size));
        at += size;
    }
    out
}

fn find(b: &[u8], start: usize, end: usize, kind: &[u8; 4]) -> (usize, usize) {
    boxes(b, start, end)
        .into_iter()
        .find(|(k, _, _)| k == kind)
        .map(|(_, at, size)| (at, size))
        .unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(kind)))
}

/// The timescale of an `mvhd` or `mdhd` box at `at` (version 0 or 1).
fn timescale(b: &[u8], at: usize) -> u32 {
    let version = b[at + 8];
    be32(b, at + if version == 1 { 28 } else { 20 })
}

/// Replaces the edit list of the only track of the MP4 at `path` (its `moov` after its `mdat`, as the ffmpeg CLI
/// writes by default, so no chunk offset moves) with one edit per `(media start s, duration s)`.
fn rewrite_edit_list(path: &Path, edits: &[(f64, f64)]) {
    let mut b = std::fs::read(path).unwrap();
    let top = boxes(&b, 0, b.len());
    let (_, moov, moov_size) = *top.iter().find(|(k, _, _)| k == b"moov").unwrap();
    let (_, mdat, _) = *top.iter().find(|(k, _, _)| k == b"mdat").unwrap();
    assert!(mdat < moov, "moov must follow mdat");
    let movie_scale = f64::from(timescale(
        &b,
        find(&b, moov + 8, moov + moov_size, b"mvhd").0,
    ));
    let (trak, trak_size) = find(&b, moov + 8, moov + moov_size, b"trak");
    let (mdia, mdia_size) = find(&b, trak + 8, trak + trak_size, b"mdia");
    let media_scale = f64::from(timescale(
        &b,
        find(&b, mdia + 8, mdia + mdia_size, b"mdhd").0,
    ));
    let (edts, edts_size) = find(&b, trak + 8, trak + trak_size, b"edts");
    let mut elst = Vec::new();
    elst.extend_from_slice(&[0, 0, 0, 0]); // size, filled below
    elst.extend_from_slice(b"elst");
    elst.extend_from_slice(&[0, 0, 0, 0]); // version 0, no flags
    elst.extend_from_slice(&(edits.len() as u32).to_be_bytes());
    for &(start, duration) in edits {
        elst.extend_from_slice(&((duration * movie_scale).round() as u32).to_be_bytes());
        elst.extend_from_slice(&((start * media_scale).round() as i32).to_be_bytes());
        elst.extend_from_slice(&[0, 1, 0, 0]); // rate 1.0
    }
    let elst_len = elst.len() as u32;
    elst[..4].copy_from_slice(&elst_len.to_be_bytes());
    let mut new_edts = Vec::new();
    new_edts.extend_from_slice(&(8 + elst_len).to_be_bytes());
    new_edts.extend_from_slice(b"edts");
    new_edts.extend_from_slice(&elst);
    let grow = new_edts.len() as i64 - edts_size as i64;
    b.splice(edts..edts + edts_size, new_edts);
    for at in [moov, trak] {
        let size = (i64::from(be32(&b, at)) + grow) as u32;
        b[at..at + 4].copy_from_slice(&size.to_be_bytes());
    }
    std::fs::write(path, b).unwrap();
}
