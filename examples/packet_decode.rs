//! Decode a video packet by packet on NVDEC, the low-level API (PyNvVideoCodec's `decoder.Decode(packet)`), and
//! print what goes in and what comes out next to the frame index's view of the stream:
//!
//! ```text
//! cargo run --release --example packet_decode -- VIDEO [GPU]
//! ```
//!
//! Each packet line gives its decode-order position, time stamps, flags and the frame the index says it shows
//! (`-` for a packet whose picture is not a frame: an edit list's pre-roll, an HEVC RASL picture after the first
//! CRA); each picture NVDEC hands out follows the packet that released it, with its time stamp and the frame that
//! stamp belongs to. Where there is no NVDEC GPU the index is printed and the decoder's typed error after it.

use vidloader::{Demuxer, FrameIndex, PacketDecoder, PacketDecoderOptions};

fn main() -> vidloader::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: packet_decode VIDEO [GPU]");
        std::process::exit(2);
    };
    let gpu: usize = args.next().and_then(|g| g.parse().ok()).unwrap_or(0);

    let index = FrameIndex::scan(&path.as_str().into())?;
    let mut demuxer = Demuxer::open(path.as_str())?;
    let info = demuxer.info().clone();
    println!(
        "{path}: {} {}x{}, {} packets, {} frames, {} decode segment(s), time base {}/{}",
        info.codec,
        info.width,
        info.height,
        index.packets().len(),
        index.len(),
        index.segment_count(),
        index.time_base().0,
        index.time_base().1
    );
    let frame_of = |pts: i64| {
        index
            .frame_of_pts(pts)
            .map_or_else(|| "not a frame".to_string(), |f| format!("frame {f}"))
    };

    let mut decoder = match PacketDecoder::new(
        &mut demuxer,
        PacketDecoderOptions {
            gpu,
            ..Default::default()
        },
    ) {
        Ok(d) => Some(d),
        Err(e) => {
            println!("NVDEC: {e}");
            None
        }
    };
    let mut shown = 0usize;
    let mut at = 0usize;
    while let Some(packet) = demuxer.read_packet()? {
        let entry = index.packets().get(at);
        println!(
            "packet {at:4} dts {:>8} pts {:>8}{}{} -> {}",
            packet.dts().map_or("-".into(), |v| v.to_string()),
            packet.pts().map_or("-".into(), |v| v.to_string()),
            if packet.is_key() { " key" } else { "" },
            if packet.is_discard() { " discard" } else { "" },
            entry
                .and_then(|e| e.frame)
                .map_or("-".into(), |f| format!("frame {f}"))
        );
        at += 1;
        if let Some(d) = decoder.as_mut() {
            for picture in d.decode(&packet)? {
                shown += 1;
                println!(
                    "    picture pts {:>8} {}x{} ({})",
                    picture.pts,
                    picture.width,
                    picture.height,
                    frame_of(picture.pts)
                );
            }
        }
    }
    if let Some(d) = decoder.as_mut() {
        for picture in d.flush()? {
            shown += 1;
            println!(
                "    picture pts {:>8} (flush) ({})",
                picture.pts,
                frame_of(picture.pts)
            );
        }
        println!(
            "{shown} pictures out of NVDEC, {} frames in the index",
            index.len()
        );
    }
    Ok(())
}
