//! WebDataset tar shards end to end: clips made with the ffmpeg CLI, packed into shards with the `tar` crate, read
//! in place. Frames from a shard are compared byte for byte with the same clip as a plain file and with what the
//! ffmpeg CLI decodes; labels, rank splitting, the shuffle, the metadata cache and the errors of bad shards.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::*;
use tch::Device;
use vidloader::{
    Backend, ColorType, DataLoader, DecoderOptions, Demuxer, Error, ProbeMode, SimpleDecoder,
    UniformSampler, VideoDataset, NO_LABEL,
};

static MAKE: Mutex<()> = Mutex::new(());

/// Clips in the test shards.
const CLIPS: usize = 6;
/// Clips per shard.
const PER_SHARD: usize = 2;
const W: usize = 96;
const H: usize = 64;

fn scratch(name: &str) -> PathBuf {
    let d = fixture_dir().join("scratch/shards").join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Clip `i`: 24 frames of 96x64 H.264 with B-frames, each clip a different hue, made once (directly in the
/// scratch folder, whose files go along to machines without the ffmpeg CLI).
fn clip(i: usize) -> PathBuf {
    let dir = fixture_dir().join("scratch");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("shards_clip{i}.mp4"));
    if path.exists() {
        return path;
    }
    let _g = MAKE.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let tmp = dir.join(format!("tmp-shards_clip{i}.mp4"));
        run(Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={W}x{H}:rate=24"))
            .args(["-frames:v", "24", "-vf"])
            .arg(format!("hue=h={}", i * 50))
            .args([
                "-c:v", "libx264", "-bf", "2", "-g", "8", "-pix_fmt", "yuv420p",
            ])
            .arg(&tmp));
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// The key of clip `i` in the shards: one in a directory whose name is longer than a tar header holds (a GNU
/// long name) and has a dot in it.
fn key(i: usize) -> String {
    if i == 3 {
        format!("{}/v1.0/clip{i}", "long-directory-name".repeat(6))
    } else {
        format!("clip{i}")
    }
}

/// Appends a regular file `name` with `data` to `b`.
fn append(b: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    b.append_data(&mut h, name, data).unwrap();
}

/// Writes a tar at `path` from `members` (name, bytes).
fn write_tar(path: &Path, members: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in members {
        append(&mut b, name, data);
    }
    b.into_inner().unwrap();
}

/// The members of clip `i`'s sample: the video, its class, text and JSON (and a member the loader ignores).
fn sample_members(i: usize) -> Vec<(String, Vec<u8>)> {
    let k = key(i);
    vec![
        (format!("{k}.cls"), format!("{}\n", i % 3).into_bytes()),
        (format!("{k}.mp4"), std::fs::read(clip(i)).unwrap()),
        (format!("{k}.txt"), format!("clip number {i}").into_bytes()),
        (
            format!("{k}.json"),
            format!("{{\"index\": {i}, \"hue\": {}}}", i * 50).into_bytes(),
        ),
        (format!("{k}.extra.bin"), vec![i as u8; 10]),
    ]
}

/// Shards `shard-000000.tar` ... of [`PER_SHARD`] clips each (a directory entry first in the first one), made
/// once; the brace pattern that names them.
fn shards() -> String {
    let dir = scratch("set");
    let done = dir.join("done");
    let pattern = format!(
        "{}/shard-{{000000..00000{}}}.tar",
        dir.display(),
        CLIPS / PER_SHARD - 1
    );
    let clips: Vec<PathBuf> = (0..CLIPS).map(clip).collect();
    let _g = MAKE.lock().unwrap_or_else(|e| e.into_inner());
    if !done.exists() {
        for s in 0..CLIPS / PER_SHARD {
            let mut b = tar::Builder::new(
                std::fs::File::create(dir.join(format!("shard-{s:06}.tar"))).unwrap(),
            );
            if s == 0 {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                b.append_data(&mut h, "somedir/", std::io::empty()).unwrap();
            }
            for i in s * PER_SHARD..(s + 1) * PER_SHARD {
                for (name, data) in sample_members(i) {
                    append(&mut b, &name, &data);
                }
            }
            b.into_inner().unwrap();
        }
        std::fs::write(&done, "").unwrap();
    }
    drop(clips);
    pattern
}

fn dataset(pattern: &str, cache: &str) -> VideoDataset {
    VideoDataset::from_shards(pattern)
        .unwrap()
        .with_cache_dir(Some(scratch(cache)))
}

fn native() -> DecoderOptions {
    DecoderOptions::default()
        .backend(Backend::Cpu)
        .threads(1)
        .color(ColorType::Native)
}

/// Every frame of `source` as one byte vector each.
fn all_frames(source: impl Into<vidloader::Source>) -> Vec<Vec<u8>> {
    let mut d = SimpleDecoder::open(source, native()).unwrap();
    let idx: Vec<i64> = (0..d.len() as i64).collect();
    let t = d.get_batch_frames_by_index(&idx).unwrap().frames;
    let bytes = tensor_bytes(&t);
    bytes
        .chunks(bytes.len() / idx.len())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn samples_are_grouped_by_key_with_their_labels() {
    let ds = dataset(&shards(), "cache-group");
    assert_eq!(ds.len(), CLIPS);
    assert_eq!(ds.shard_count(), CLIPS / PER_SHARD);
    for (i, e) in ds.entries().iter().enumerate() {
        let m = e.member.as_ref().expect("a shard member");
        assert_eq!(m.key, key(i));
        assert_eq!(m.name, format!("{}.mp4", key(i)));
        assert_eq!(m.shard, i / PER_SHARD);
        assert_eq!(m.len, std::fs::metadata(clip(i)).unwrap().len());
        assert_eq!(e.label, (i % 3) as i64);
        assert_eq!(m.text.as_deref(), Some(format!("clip number {i}").as_str()));
        assert_eq!(m.json.as_ref().unwrap()["index"], i as u64);
        assert_eq!(e.path, ds.shards()[i / PER_SHARD]);
    }
    assert_eq!(ds.shard_entries(1), 2..4);
    // The video bytes in the shard are the file's.
    let e = &ds.entries()[3];
    let m = e.member.as_ref().unwrap();
    let shard = std::fs::read(&e.path).unwrap();
    assert_eq!(
        &shard[m.offset as usize..(m.offset + m.len) as usize],
        std::fs::read(clip(3)).unwrap().as_slice()
    );
}

#[test]
fn frames_from_a_shard_are_those_of_the_plain_file_and_of_ffmpeg() {
    let ds = dataset(&shards(), "cache-frames");
    for (i, e) in ds.entries().iter().enumerate() {
        let source = e.source();
        let demuxer = Demuxer::open(source.clone()).unwrap();
        // Opened from the H.264 headers, as the plain file is: no picture decoded to probe.
        assert_eq!(demuxer.probe(), ProbeMode::Headers, "{}", source.name());
        assert_eq!(
            format!("{:?}", demuxer.info()),
            format!("{:?}", Demuxer::open(clip(i)).unwrap().info())
        );
        let from_shard = all_frames(source);
        let from_file = all_frames(clip(i));
        assert_eq!(from_shard.len(), 24);
        assert!(from_shard == from_file, "clip {i}: frames differ");
        let reference = reference_frames(&clip(i), "yuv420p", W * H * 3 / 2);
        assert!(from_shard == reference, "clip {i}: not what ffmpeg decodes");
    }
}

#[test]
fn the_loader_over_shards_delivers_the_plain_files_batches() {
    let pattern = shards();
    let from_shards = DataLoader::builder(dataset(&pattern, "cache-loader"))
        .sampler(UniformSampler::new(5))
        .batch_size(4)
        .workers(2)
        .device(Device::Cpu)
        .build()
        .unwrap();
    let files = VideoDataset::from_list((0..CLIPS).map(|i| (clip(i), (i % 3) as i64)))
        .with_cache_dir(Some(scratch("cache-loader-files")));
    let from_files = DataLoader::builder(files)
        .sampler(UniformSampler::new(5))
        .batch_size(4)
        .workers(2)
        .device(Device::Cpu)
        .build()
        .unwrap();
    let a: Vec<_> = from_shards.epoch(0).map(|b| b.unwrap()).collect();
    let b: Vec<_> = from_files.epoch(0).map(|b| b.unwrap()).collect();
    assert_eq!(a.len(), 2);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.frames.size(), y.frames.size());
        assert!(tensor_bytes(&x.frames) == tensor_bytes(&y.frames));
        assert_eq!(
            Vec::<i64>::try_from(&x.labels).unwrap(),
            Vec::<i64>::try_from(&y.labels).unwrap()
        );
        for (s, t) in x.samples.iter().zip(&y.samples) {
            assert_eq!(s.frames, t.frames);
            assert_eq!(s.times, t.times);
            let i = s.dataset_index;
            assert_eq!(s.key.as_deref(), Some(key(i).as_str()));
            assert_eq!(s.text.as_deref(), Some(format!("clip number {i}").as_str()));
            assert_eq!(s.json.as_ref().unwrap()["hue"], (i * 50) as u64);
            assert_eq!(
                (t.key.as_ref(), t.text.as_ref(), t.json.as_ref()),
                (None, None, None)
            );
        }
    }
}

/// A larger set for planning: `shards` shards of `per` samples, every sample the same small clip.
fn many(name: &str, shards: usize, per: usize) -> String {
    let dir = scratch(name);
    let video = std::fs::read(clip(0)).unwrap();
    let _g = MAKE.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.join("done").exists() {
        for s in 0..shards {
            let members: Vec<(String, Vec<u8>)> = (0..per)
                .flat_map(|k| {
                    let key = format!("s{s:02}-{k:03}");
                    [
                        (format!("{key}.mp4"), video.clone()),
                        (
                            format!("{key}.cls"),
                            format!("{}", s * per + k).into_bytes(),
                        ),
                    ]
                })
                .collect();
            write_tar(&dir.join(format!("part-{s:02}.tar")), &members);
        }
        std::fs::write(dir.join("done"), "").unwrap();
    }
    format!("{}/part-{{00..{:02}}}.tar", dir.display(), shards - 1)
}

fn plan_order(
    pattern: &str,
    rank: usize,
    world: usize,
    seed: u64,
    epoch: u64,
    buffer: usize,
) -> Vec<usize> {
    let loader = DataLoader::builder(dataset(pattern, "cache-plan"))
        .sampler(UniformSampler::new(2))
        .batch_size(4)
        .workers(1)
        .shuffle(true)
        .shuffle_buffer(buffer)
        .seed(seed)
        .shard(rank, world)
        .build()
        .unwrap();
    loader
        .plan(epoch)
        .unwrap()
        .batches
        .iter()
        .flatten()
        .map(|s| s.dataset_index)
        .collect()
}

#[test]
fn ranks_read_disjoint_shards_that_together_are_all() {
    let pattern = many("many", 7, 10);
    let ds = dataset(&pattern, "cache-plan");
    let world = 3;
    let mut all = Vec::new();
    for rank in 0..world {
        let order = plan_order(&pattern, rank, world, 5, 0, 16);
        // Only this rank's shards: shard i goes to rank i % world.
        for &i in &order {
            let shard = ds.entries()[i].member.as_ref().unwrap().shard;
            assert_eq!(
                shard % world,
                rank,
                "sample {i} of shard {shard} on rank {rank}"
            );
        }
        let mine: usize = (rank..7)
            .step_by(world)
            .map(|s| ds.shard_entries(s).len())
            .sum();
        assert_eq!(order.len(), mine);
        all.extend(order);
    }
    all.sort_unstable();
    assert_eq!(all, (0..70).collect::<Vec<_>>());
    // drop_last: every rank delivers the batches of the rank with the fewest samples (20 samples: 5 batches).
    for rank in 0..world {
        let loader = DataLoader::builder(dataset(&pattern, "cache-plan"))
            .sampler(UniformSampler::new(2))
            .batch_size(4)
            .workers(1)
            .drop_last(true)
            .shard(rank, world)
            .build()
            .unwrap();
        assert_eq!(loader.plan(0).unwrap().batches.len(), 5, "rank {rank}");
    }
}

#[test]
fn the_shuffle_is_deterministic_and_bounded_by_the_buffer() {
    let pattern = many("many", 7, 10);
    let a = plan_order(&pattern, 0, 1, 5, 1, 8);
    assert_eq!(a, plan_order(&pattern, 0, 1, 5, 1, 8));
    assert_ne!(a, plan_order(&pattern, 0, 1, 5, 2, 8));
    assert_ne!(a, plan_order(&pattern, 0, 1, 6, 1, 8));
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..70).collect::<Vec<_>>());
    // Without a buffer, shard order alone is shuffled: every shard's samples come as one run, in archive order.
    let runs = plan_order(&pattern, 0, 1, 5, 1, 0);
    assert_ne!(runs, (0..70).collect::<Vec<_>>());
    for chunk in runs.chunks(10) {
        assert_eq!(chunk[0] % 10, 0);
        assert!(chunk.windows(2).all(|w| w[1] == w[0] + 1), "{chunk:?}");
    }
    // With a buffer of 8, a sample comes out at most 7 places before its place in that shard order.
    let buffered = plan_order(&pattern, 0, 1, 5, 1, 8);
    let place: Vec<usize> = {
        let mut p = vec![0; 70];
        for (k, &i) in runs.iter().enumerate() {
            p[i] = k;
        }
        p
    };
    for (pos, &i) in buffered.iter().enumerate() {
        assert!(
            pos + 7 >= place[i],
            "sample {i} at {pos}, shard order puts it at {}",
            place[i]
        );
    }
    assert_ne!(buffered, runs);
}

#[test]
fn frame_indexes_are_cached_per_member_and_a_changed_shard_is_scanned_again() {
    let dir = scratch("cache-change");
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    // Directly in the scratch folder, like the clips, so that it travels with them.
    let short = fixture_dir().join("scratch/shards_short.mp4");
    if !short.exists() {
        let tmp = fixture_dir().join("scratch/tmp-shards_short.mp4");
        run(Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-i"])
            .arg(clip(1))
            .args(["-frames:v", "12", "-c:v", "libx264", "-bf", "2", "-g", "8"])
            .arg(&tmp));
        std::fs::rename(&tmp, &short).unwrap();
    }
    // Sample clip1 holds a 12-frame clip: members of one shard must not share a cache entry.
    let with_short = || {
        let mut m = sample_members(1);
        m[1].1 = std::fs::read(&short).unwrap();
        m
    };
    let shard = dir.join("one.tar");
    let members: Vec<_> = sample_members(0).into_iter().chain(with_short()).collect();
    write_tar(&shard, &members);
    let open = || {
        VideoDataset::from_shards(shard.to_str().unwrap())
            .unwrap()
            .with_cache_dir(Some(cache.clone()))
    };
    let frames = |ds: &VideoDataset| -> Vec<usize> {
        (0..ds.len())
            .map(|i| ds.meta(i).unwrap().num_frames())
            .collect()
    };
    let first = open();
    assert_eq!(frames(&first), [24, 12]);
    assert_eq!(first.cache_stats().scans, 2);
    drop(first);
    let second = open();
    assert_eq!(frames(&second), [24, 12]);
    assert_eq!(
        (second.cache_stats().disk_hits, second.cache_stats().scans),
        (2, 0)
    );
    drop(second);
    // The shard rewritten with the samples the other way round: every member is a miss, and scanned again.
    let members: Vec<_> = with_short().into_iter().chain(sample_members(0)).collect();
    write_tar(&shard, &members);
    let third = open();
    assert_eq!(frames(&third), [12, 24]);
    assert_eq!(
        (third.cache_stats().disk_hits, third.cache_stats().scans),
        (0, 2)
    );
}

#[test]
fn bad_shards_are_errors() {
    let dir = scratch("bad");
    let good: Vec<_> = [0, 1].iter().flat_map(|&i| sample_members(i)).collect();
    let whole = dir.join("whole.tar");
    write_tar(&whole, &good);
    let bytes = std::fs::read(&whole).unwrap();

    // A missing shard of a pattern.
    let pattern = format!("{}/{{whole,missing}}.tar", dir.display());
    match VideoDataset::from_shards(&pattern) {
        Err(Error::NotFound { path }) => assert!(path.ends_with("missing.tar")),
        other => panic!("{other:?}"),
    }
    // Cut inside a video member's data, and inside a header.
    let ds = VideoDataset::from_shards(whole.to_str().unwrap()).unwrap();
    let video = ds.entries()[1].member.clone().unwrap();
    for cut in [video.offset + video.len / 2, video.offset - 512 + 100] {
        let path = dir.join(format!("cut-{cut}.tar"));
        std::fs::write(&path, &bytes[..cut as usize]).unwrap();
        match VideoDataset::from_shards(path.to_str().unwrap()) {
            Err(Error::Corrupt { source_name, .. }) => assert!(source_name.ends_with(".tar")),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // Not a tar at all.
    let path = dir.join("clip.tar");
    std::fs::copy(clip(0), &path).unwrap();
    assert!(matches!(
        VideoDataset::from_shards(path.to_str().unwrap()),
        Err(Error::Corrupt { .. })
    ));
    // A compressed shard cannot be read in place.
    let path = dir.join("packed.tar.gz");
    std::fs::write(&path, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]).unwrap();
    assert!(matches!(
        VideoDataset::from_shards(path.to_str().unwrap()),
        Err(Error::Unsupported(_))
    ));
    // A sample without a video.
    let path = dir.join("novideo.tar");
    let mut members = sample_members(0);
    members.push(("lonely.cls".into(), b"1".to_vec()));
    members.push(("lonely.txt".into(), b"no video".to_vec()));
    write_tar(&path, &members);
    match VideoDataset::from_shards(path.to_str().unwrap()) {
        Err(Error::ShardSample { key, reason, .. }) => {
            assert_eq!(key, "lonely");
            assert!(reason.contains("no video"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A video stored as a hard link to another member's (tarfile does that for files with several links).
    let path = dir.join("link.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (name, data) in sample_members(0) {
            append(&mut b, &name, &data);
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_mode(0o644);
        b.append_link(&mut h, "again.mp4", "clip0.mp4").unwrap();
        b.into_inner().unwrap();
    }
    match VideoDataset::from_shards(path.to_str().unwrap()) {
        Err(Error::ShardSample { key, reason, .. }) => {
            assert_eq!(key, "again");
            assert!(reason.contains("link"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // JSON that is not JSON.
    let path = dir.join("badjson.tar");
    let mut members = sample_members(0);
    members[3].1 = b"{not json".to_vec();
    write_tar(&path, &members);
    assert!(matches!(
        VideoDataset::from_shards(path.to_str().unwrap()),
        Err(Error::ShardSample { .. })
    ));
    // A video member that is not a video: found when its metadata is read, named by shard and member.
    let path = dir.join("notvideo.tar");
    let mut members = sample_members(0);
    members[1].1 = vec![7u8; 5000];
    write_tar(&path, &members);
    let ds = VideoDataset::from_shards(path.to_str().unwrap())
        .unwrap()
        .with_cache_dir(None);
    match ds.meta(0) {
        Err(Error::NotVideo { source_name }) => {
            assert!(
                source_name.ends_with("notvideo.tar:clip0.mp4"),
                "{source_name}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A pattern with an unbalanced brace.
    assert!(matches!(
        VideoDataset::from_shards("data/shard-{000..009.tar"),
        Err(Error::InvalidArgument(_))
    ));
    // An empty tar is a data set without samples.
    let path = dir.join("empty.tar");
    write_tar(&path, &[]);
    assert_eq!(
        VideoDataset::from_shards(path.to_str().unwrap())
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn class_names_in_cls_members_map_to_ids() {
    let dir = scratch("names");
    let path = dir.join("names.tar");
    let mut members = Vec::new();
    for (i, class) in ["dog", "cat", "7", "dog"].iter().enumerate() {
        let mut m = sample_members(i);
        m[0].1 = class.as_bytes().to_vec();
        m.truncate(2);
        members.extend(m);
    }
    members.extend(sample_members(4).into_iter().skip(1).take(1));
    write_tar(&path, &members);
    let ds = VideoDataset::from_shards(path.to_str().unwrap()).unwrap();
    assert_eq!(ds.classes(), ["7", "cat", "dog"]);
    let labels: Vec<i64> = ds.entries().iter().map(|e| e.label).collect();
    assert_eq!(labels, [2, 1, 0, 2, NO_LABEL]);
}

#[test]
fn plan_and_bench_take_shards() {
    let pattern = many("many", 7, 10);
    let cache = scratch("cache-cli");
    let out = run(cli()
        .args([
            "plan",
            &pattern,
            "--json",
            "--rank",
            "1",
            "--world",
            "2",
            "--shuffle-buffer",
            "4",
        ])
        .arg("--cache-dir")
        .arg(&cache));
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let samples: Vec<&serde_json::Value> = plan["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b.as_array().unwrap())
        .collect();
    // Rank 1 of 2: shards 1, 3 and 5.
    assert_eq!(samples.len(), 30);
    for s in &samples {
        let key = s["key"].as_str().unwrap();
        let shard: usize = key[1..3].parse().unwrap();
        assert_eq!(shard % 2, 1, "{key}");
        assert!(s["path"]
            .as_str()
            .unwrap()
            .ends_with(&format!("part-{shard:02}.tar")));
    }
    assert!(plan["metadata_scan_s"].as_f64().unwrap() > 0.0);
    let out = run(cli()
        .args([
            "bench",
            &pattern,
            "--json",
            "--sampler",
            "uniform:4",
            "--batch",
            "4",
            "--workers",
            "1",
        ])
        .arg("--cache-dir")
        .arg(&cache));
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["videos"], 70);
    assert_eq!(report["shards"], 7);
    assert!(report["first_batch_s"].as_f64().unwrap() > 0.0);
    assert!(report["metadata_scan_s"].as_f64().unwrap() > 0.0);
    assert!(report["fps"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_data_set_of_one_ranks_shards_reads_no_other_shard() {
    let pattern = many("many", 7, 10);
    let keys = |ds: VideoDataset, rank: usize, world: usize, drop_last: bool| -> Vec<Vec<String>> {
        let loader = DataLoader::builder(ds.with_cache_dir(Some(scratch("cache-plan"))))
            .sampler(UniformSampler::new(2))
            .batch_size(4)
            .workers(1)
            .shuffle(true)
            .shuffle_buffer(5)
            .seed(9)
            .drop_last(drop_last)
            .shard(rank, world)
            .build()
            .unwrap();
        let plan = loader.plan(3).unwrap();
        plan.batches
            .iter()
            .map(|b| b.iter().map(|s| s.key.clone().unwrap()).collect())
            .collect()
    };
    // The same samples, in the same order, as the rank's share of the whole data set.
    let mine = VideoDataset::from_shards_of_rank(&pattern, 1, 3).unwrap();
    assert_eq!(mine.len(), 20);
    assert_eq!(mine.shard_rank(), Some((1, 3)));
    assert_eq!(
        keys(mine, 1, 3, false),
        keys(VideoDataset::from_shards(&pattern).unwrap(), 1, 3, false)
    );
    // With drop_last it stops after its own full batches (20 samples: 5), the whole data set's rank after those of
    // the rank with the fewest (rank 2: shards 2 and 5, 20 samples).
    let mine = VideoDataset::from_shards_of_rank(&pattern, 0, 3).unwrap();
    assert_eq!(keys(mine, 0, 3, true).len(), 7);
    assert_eq!(
        keys(VideoDataset::from_shards(&pattern).unwrap(), 0, 3, true).len(),
        5
    );
    // A missing shard that another rank owns is never looked at.
    let dir = scratch("many");
    let with_missing = format!("{}/{{missing,part-{{00..06}}}}.tar", dir.display());
    let rank1 = VideoDataset::from_shards_of_rank(&with_missing, 1, 2).unwrap();
    assert_eq!(rank1.shard_count(), 8);
    assert_eq!(rank1.len(), 40);
    assert!(matches!(
        VideoDataset::from_shards_of_rank(&with_missing, 0, 2),
        Err(Error::NotFound { .. })
    ));
    // The loader must be the rank the data set was read for.
    let err = DataLoader::builder(rank1).shard(0, 2).build().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(matches!(
        VideoDataset::from_shards_of_rank(&pattern, 3, 3),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_shard_cut_short_after_it_was_indexed_fails_its_samples_not_the_others() {
    let dir = scratch("cut-later");
    let shard = dir.join("s.tar");
    let members: Vec<_> = (0..4).flat_map(sample_members).collect();
    write_tar(&shard, &members);
    let build = |policy| {
        DataLoader::builder(
            VideoDataset::from_shards(shard.to_str().unwrap())
                .unwrap()
                .with_cache_dir(None),
        )
        .sampler(UniformSampler::new(4))
        .batch_size(2)
        .workers(1)
        .device(Device::Cpu)
        .on_error(policy)
        .build()
        .unwrap()
    };
    let skip = build(vidloader::ErrorPolicy::Skip);
    let fail = build(vidloader::ErrorPolicy::Fail);
    // Plans read every member's metadata; then the shard loses the second half of its last video.
    skip.plan(0).unwrap();
    fail.plan(0).unwrap();
    let last = VideoDataset::from_shards(shard.to_str().unwrap())
        .unwrap()
        .entries()[3]
        .member
        .clone()
        .unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap();
    f.set_len(last.offset + last.len / 2).unwrap();
    drop(f);
    let batches: Vec<_> = skip.epoch(0).map(|b| b.unwrap()).collect();
    let delivered: Vec<usize> = batches
        .iter()
        .flat_map(|b| b.samples.iter().map(|s| s.dataset_index))
        .collect();
    assert_eq!(delivered, [0, 1, 2]);
    let skipped = skip.summary().skipped;
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].dataset_index, 3);
    let results: Vec<_> = fail.epoch(0).collect();
    assert!(
        results.iter().any(|r| r.is_err()),
        "the cut video was not an error"
    );
}

#[test]
fn damaged_shards_are_errors_or_samples_never_panics() {
    // A shard of two samples, damaged 300 ways: bytes changed in headers and data, or cut anywhere. Building the
    // data set and reading every video's metadata either works or is an error; nothing panics or hangs.
    let dir = scratch("damaged");
    let good = dir.join("good.tar");
    let members: Vec<_> = (0..2).flat_map(sample_members).collect();
    write_tar(&good, &members);
    let bytes = std::fs::read(&good).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let started = std::time::Instant::now();
    let (mut ok, mut errors) = (0, 0);
    for round in 0..300 {
        let mut damaged = bytes.clone();
        match round % 3 {
            0 => damaged.truncate(next(bytes.len())),
            1 => {
                // Inside a header block: the block of some member's header.
                let block = next(bytes.len() / 512) * 512;
                for _ in 0..1 + next(4) {
                    damaged[block + next(512)] = next(256) as u8;
                }
            }
            _ => {
                for _ in 0..1 + next(16) {
                    let at = next(bytes.len());
                    damaged[at] = next(256) as u8;
                }
            }
        }
        let path = dir.join("damaged.tar");
        std::fs::write(&path, &damaged).unwrap();
        match VideoDataset::from_shards(path.to_str().unwrap()) {
            Ok(ds) => {
                let ds = ds.with_cache_dir(None);
                for i in 0..ds.len() {
                    let _ = ds.meta(i);
                }
                ok += 1;
            }
            Err(_) => errors += 1,
        }
    }
    assert!(ok > 0 && errors > 0, "{ok} read, {errors} errors");
    assert!(started.elapsed().as_secs() < 120);
}
