//! WebDataset tar shards: shard patterns (`data/shard-{000000..000999}.tar`), the index of a shard's members
//! (names, byte offsets, sizes: the only part of a shard read to build a data set) and the samples they form.
//!
//! A sample is a run of consecutive members with the same key, as WebDataset groups them: a member's key is its
//! name up to the first dot of its file name (directory included), the rest of the file name is its extension
//! (compared without regard to case). A sample holds exactly one video (an extension whose last part is one of
//! [`VIDEO_EXTENSIONS`]: `mp4`, `left.mp4`, ...) and may hold a `.cls` (the label: an integer class id, or a class
//! name), a `.txt` (text) and a `.json` (any JSON value); other members are ignored. The video is never extracted:
//! the data set reads it in place as a byte range of the shard ([`crate::Source::Range`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::data::dataset::VIDEO_EXTENSIONS;
use crate::error::{Error, Result};

/// The most shard paths one pattern may expand to.
const MAX_SHARDS: usize = 1_000_000;

/// The largest `.cls`, `.txt` or `.json` member read (bigger ones are an error, not a memory blow-up).
const MAX_LABEL_BYTES: u64 = 16 << 20;

/// The shard paths a pattern names: `::` separates patterns; in each, `{a..b}` is the numbers from `a` to `b`
/// (zero-padded to the wider bound when either bound is written with a leading zero, as `braceexpand` does;
/// `{a..b..step}` with a step), `{x,y,z}` each alternative, and braces nest. Everything else is literal.
pub(crate) fn expand_pattern(pattern: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for part in pattern.split("::").map(str::trim).filter(|p| !p.is_empty()) {
        out.extend(
            expand(part)
                .map_err(|e| Error::InvalidArgument(format!("shard pattern '{pattern}': {e}")))?,
        );
        if out.len() > MAX_SHARDS {
            return Err(Error::InvalidArgument(format!(
                "shard pattern '{pattern}' names more than {MAX_SHARDS} shards"
            )));
        }
    }
    if out.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "shard pattern '{pattern}' names no shard"
        )));
    }
    Ok(out)
}

/// Whether `s` reads as shards rather than a manifest or a directory: a `.tar` path, or a pattern with braces or
/// `::`.
pub(crate) fn looks_like_shards(s: &str) -> bool {
    s.contains('{') || s.contains("::") || s.to_ascii_lowercase().ends_with(".tar")
}

/// One pattern's expansion (the first top-level brace group, expanded, then the rest recursively).
fn expand(s: &str) -> std::result::Result<Vec<String>, String> {
    let Some(open) = s.find('{') else {
        if s.contains('}') {
            return Err("'}' without '{'".into());
        }
        return Ok(vec![s.to_owned()]);
    };
    if s[..open].contains('}') {
        return Err("'}' without '{'".into());
    }
    let mut depth = 0usize;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(open + i),
            _ => {}
        }
    }
    let close = close.ok_or("'{' without '}'")?;
    let (prefix, body, rest) = (&s[..open], &s[open + 1..close], &s[close + 1..]);
    let alternatives: Vec<String> = if !commas.is_empty() {
        let mut alts = Vec::new();
        let mut from = open + 1;
        for &c in commas.iter().chain(std::iter::once(&close)) {
            alts.extend(expand(&s[from..c])?);
            from = c + 1;
        }
        alts
    } else if let Some(range) = numeric_range(body)? {
        range
    } else {
        // `{x}`: literal, braces kept (as braceexpand does).
        expand(body)?
            .into_iter()
            .map(|b| format!("{{{b}}}"))
            .collect()
    };
    let tails = expand(rest)?;
    if alternatives.len().saturating_mul(tails.len()) > MAX_SHARDS {
        return Err(format!("more than {MAX_SHARDS} shards"));
    }
    let mut out = Vec::with_capacity(alternatives.len() * tails.len());
    for a in &alternatives {
        for t in &tails {
            out.push(format!("{prefix}{a}{t}"));
        }
    }
    Ok(out)
}

/// `a..b` or `a..b..step` (integers) as its numbers; `None` when `body` is not of that form.
fn numeric_range(body: &str) -> std::result::Result<Option<Vec<String>>, String> {
    let parts: Vec<&str> = body.split("..").collect();
    if !(2..=3).contains(&parts.len()) {
        return Ok(None);
    }
    let int = |p: &str| -> Option<i64> {
        let digits = p.strip_prefix('-').unwrap_or(p);
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (Some(a), Some(b)) = (int(parts[0]), int(parts[1])) else {
        return Ok(None);
    };
    let step = match parts.get(2) {
        None => 1,
        Some(p) => match int(p) {
            Some(0) | None => {
                return Err(format!("'{{{body}}}': the step must be a non-zero integer"))
            }
            Some(s) => s.unsigned_abs(),
        },
    };
    let padded = |p: &str| {
        let d = p.strip_prefix('-').unwrap_or(p);
        d.len() > 1 && d.starts_with('0')
    };
    let width = if padded(parts[0]) || padded(parts[1]) {
        parts[0].len().max(parts[1].len())
    } else {
        0
    };
    let count = a.abs_diff(b) / step + 1;
    if count > MAX_SHARDS as u64 {
        return Err(format!("'{{{body}}}' names more than {MAX_SHARDS} shards"));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut v = i128::from(a);
    for _ in 0..count {
        out.push(format!("{v:0width$}"));
        v += if a <= b { 1 } else { -1 } * i128::from(step);
    }
    Ok(Some(out))
}

/// A regular file in a tar: its name and where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TarMember {
    /// The member's name (path) in the archive.
    pub name: String,
    /// Byte offset of its data in the shard.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// A hard or symbolic link (no bytes of its own): not read, but named when it is a sample's video.
    pub link: bool,
}

/// A sample of a shard, its members read where they are small (labels) and located where they are not (video).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawSample {
    /// The key the members share.
    pub key: String,
    /// The video member.
    pub video: TarMember,
    /// The `.cls` member's text, trimmed.
    pub cls: Option<String>,
    /// The `.txt` member's text.
    pub text: Option<String>,
    /// The `.json` member, parsed.
    pub json: Option<serde_json::Value>,
}

/// The error of a shard that is missing or cannot be opened.
fn open_error(path: &Path, e: std::io::Error) -> Error {
    Error::opening(path, &path.display().to_string(), e)
}

/// The samples of the shard at `path`, in the order of the archive. Reads the members' headers (seeking over
/// their data) and the label members; the videos' bytes are not read.
///
/// Errors: [`Error::NotFound`] when there is no such file, [`Error::Unsupported`] for a compressed tar (gzip,
/// zstd, xz, bzip2), [`Error::Corrupt`] when it is not a tar archive or is cut short (a header or a member's data past the end of the file), [`Error::ShardSample`] for a sample without a
/// video, with two, with a repeated extension, or with a `.txt` / `.json` member that cannot be read as such.
pub(crate) fn read_shard(path: &Path) -> Result<Vec<RawSample>> {
    let file = std::fs::File::open(path).map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| open_error(path, e))?;
    if meta.is_dir() {
        return Err(Error::Open {
            source_name: path.display().to_string(),
            reason: "is a directory".into(),
        });
    }
    let mut magic = [0u8; 6];
    let n = std::os::unix::fs::FileExt::read_at(&file, &mut magic, 0)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if let Some(kind) = compression(&magic[..n]) {
        return Err(Error::Unsupported(format!(
            "{}: a {kind}-compressed tar cannot be read in place; decompress the shard",
            path.display()
        )));
    }
    let members = index_tar(path, &file, meta.len())?;
    group(path, &file, members)
}

/// The compression whose magic number `head` (a file's first bytes) starts with, if any.
fn compression(head: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 4] = [
        (&[0x1f, 0x8b], "gzip"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], "xz"),
        (b"BZh", "bzip2"),
    ];
    MAGIC
        .iter()
        .find(|(m, _)| head.starts_with(m))
        .map(|(_, kind)| *kind)
}

/// The regular files of the tar archive in `file` (of `size` bytes), in archive order.
fn index_tar(path: &Path, file: &std::fs::File, size: u64) -> Result<Vec<TarMember>> {
    let corrupt = |reason: String| Error::Corrupt {
        source_name: path.display().to_string(),
        reason,
    };
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| corrupt(format!("not a tar archive: {e}")))?;
    let mut members = Vec::new();
    let mut end = 0u64;
    for entry in entries {
        let entry = entry.map_err(|e| corrupt(format!("tar header after byte {end}: {e}")))?;
        let offset = entry.raw_file_position();
        let len = entry.size();
        end = offset.saturating_add(len);
        if end > size {
            return Err(corrupt(format!(
                "truncated: member '{}' has {len} bytes from byte {offset}, the file ends at {size}",
                String::from_utf8_lossy(&entry.path_bytes())
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() || kind.is_symlink() {
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            members.push(TarMember {
                name,
                offset,
                len: 0,
                link: true,
            });
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            // Directories, links, PAX and GNU extension records; sparse files hold no plain byte range.
            if kind.is_gnu_sparse() {
                return Err(corrupt(format!(
                    "member '{}' is a sparse file, which cannot be read in place",
                    String::from_utf8_lossy(&entry.path_bytes())
                )));
            }
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        members.push(TarMember {
            name,
            offset,
            len,
            link: false,
        });
    }
    Ok(members)
}

/// A member name's key and extension as WebDataset splits them: the key is the name up to the first dot of its
/// file name, the extension the rest (lower case). `None` for a name whose file name has no dot or starts with
/// one (WebDataset skips those members).
pub(crate) fn key_and_extension(name: &str) -> Option<(&str, String)> {
    let file_start = name.rfind('/').map_or(0, |i| i + 1);
    let dot = file_start + name[file_start..].find('.')?;
    if dot == file_start {
        return None;
    }
    Some((&name[..dot], name[dot + 1..].to_ascii_lowercase()))
}

/// Whether an extension (`mp4`, `left.mp4`) names a video.
fn is_video_extension(ext: &str) -> bool {
    let last = ext.rsplit('.').next().unwrap_or(ext);
    VIDEO_EXTENSIONS.contains(&last)
}

/// Groups `members` into samples by key (consecutive members with the same key).
fn group(path: &Path, file: &std::fs::File, members: Vec<TarMember>) -> Result<Vec<RawSample>> {
    struct Open {
        key: String,
        video: Option<TarMember>,
        extensions: Vec<String>,
        cls: Option<String>,
        text: Option<String>,
        json: Option<serde_json::Value>,
    }
    let bad = |key: &str, reason: String| Error::ShardSample {
        shard: path.to_path_buf(),
        key: key.to_owned(),
        reason,
    };
    let finish = |s: Open| -> Result<RawSample> {
        let video = s.video.ok_or_else(|| {
            bad(
                &s.key,
                format!(
                    "no video member (members: {}; a video is one of .{})",
                    s.extensions
                        .iter()
                        .map(|e| format!(".{e}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    VIDEO_EXTENSIONS.join(", .")
                ),
            )
        })?;
        Ok(RawSample {
            key: s.key,
            video,
            cls: s.cls,
            text: s.text,
            json: s.json,
        })
    };
    let mut samples = Vec::new();
    let mut current: Option<Open> = None;
    for m in members {
        let Some((key, ext)) = key_and_extension(&m.name) else {
            continue;
        };
        if current.as_ref().is_some_and(|c| c.key != key) {
            samples.push(finish(current.take().expect("checked"))?);
        }
        let s = current.get_or_insert_with(|| Open {
            key: key.to_owned(),
            video: None,
            extensions: Vec::new(),
            cls: None,
            text: None,
            json: None,
        });
        if s.extensions.contains(&ext) {
            return Err(bad(
                &s.key,
                format!("two members with the extension .{ext}"),
            ));
        }
        s.extensions.push(ext.clone());
        if m.link {
            // WebDataset reads regular members only; a link to a video is named rather than silently dropped.
            if is_video_extension(&ext) {
                return Err(bad(
                    &s.key,
                    format!(
                        "the video '{}' is a hard or symbolic link, which is not read (pack the file itself)",
                        m.name
                    ),
                ));
            }
            continue;
        }
        if is_video_extension(&ext) {
            if let Some(v) = &s.video {
                return Err(bad(
                    &s.key,
                    format!("two videos, '{}' and '{}'", v.name, m.name),
                ));
            }
            s.video = Some(m);
            continue;
        }
        let text = |m: &TarMember| -> Result<String> {
            let bytes = read_member(path, file, m)?;
            String::from_utf8(bytes)
                .map_err(|_| bad(key, format!("'{}' is not UTF-8 text", m.name)))
        };
        match ext.as_str() {
            "cls" => s.cls = Some(text(&m)?.trim().to_owned()),
            "txt" => s.text = Some(text(&m)?),
            "json" => {
                let t = text(&m)?;
                s.json = Some(
                    serde_json::from_str(&t)
                        .map_err(|e| bad(key, format!("'{}' is not JSON: {e}", m.name)))?,
                );
            }
            _ => {}
        }
    }
    if let Some(s) = current {
        samples.push(finish(s)?);
    }
    Ok(samples)
}

/// The bytes of a small member (a label), read in place.
fn read_member(path: &Path, file: &std::fs::File, m: &TarMember) -> Result<Vec<u8>> {
    if m.len > MAX_LABEL_BYTES {
        return Err(Error::InvalidArgument(format!(
            "{}: member '{}' has {} bytes, more than the {MAX_LABEL_BYTES} a label member may have",
            path.display(),
            m.name,
            m.len
        )));
    }
    let mut bytes = Vec::with_capacity(m.len as usize);
    crate::io::source::FileRange::new(
        file.try_clone()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?,
        m.offset,
        m.len,
    )
    .read_to_end(&mut bytes)
    .map_err(|e| {
        Error::io(
            format!("{}: reading member '{}'", path.display(), m.name),
            e,
        )
    })?;
    Ok(bytes)
}

/// The shard paths of `patterns`, each expanded (see [`expand_pattern`]).
pub(crate) fn shard_paths(pattern: &str) -> Result<Vec<PathBuf>> {
    Ok(expand_pattern(pattern)?
        .into_iter()
        .map(PathBuf::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_as_braceexpand_does() {
        assert_eq!(
            expand_pattern("s-{000..003}.tar").unwrap(),
            ["s-000.tar", "s-001.tar", "s-002.tar", "s-003.tar"]
        );
        assert_eq!(expand_pattern("{8..11}").unwrap(), ["8", "9", "10", "11"]);
        assert_eq!(expand_pattern("{3..1}").unwrap(), ["3", "2", "1"]);
        assert_eq!(expand_pattern("{0..10..5}").unwrap(), ["0", "5", "10"]);
        assert_eq!(
            expand_pattern("{a,b{1..2}}/x.tar::c.tar").unwrap(),
            ["a/x.tar", "b1/x.tar", "b2/x.tar", "c.tar"]
        );
        assert_eq!(expand_pattern("{x}.tar").unwrap(), ["{x}.tar"]);
        assert_eq!(expand_pattern("a.tar").unwrap(), ["a.tar"]);
        assert_eq!(
            expand_pattern("{1..2}{1..2}").unwrap(),
            ["11", "12", "21", "22"]
        );
        // Odd but well-formed: no panic, literal where braceexpand keeps them literal.
        assert_eq!(expand_pattern("{}").unwrap(), ["{}"]);
        assert_eq!(expand_pattern("{{}}").unwrap(), ["{{}}"]);
        assert_eq!(expand_pattern("x{,}").unwrap(), ["x", "x"]);
        assert_eq!(expand_pattern("{..}").unwrap(), ["{..}"]);
        assert_eq!(expand_pattern("{-2..-03}").unwrap(), ["-02", "-03"]);
        assert_eq!(expand_pattern("é{1..2}ü").unwrap(), ["é1ü", "é2ü"]);
        let huge = "{a,b}".repeat(30);
        assert!(matches!(
            expand_pattern(&huge),
            Err(Error::InvalidArgument(_))
        ));
        for bad in [
            "{1..3",
            "a}b",
            "}{",
            "{0..4..0}",
            "",
            "::",
            "{0..99999999999}",
        ] {
            assert!(
                matches!(expand_pattern(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_and_extensions_follow_webdataset() {
        assert_eq!(
            key_and_extension("a/b.c/x.left.MP4"),
            Some(("a/b.c/x", "left.mp4".into()))
        );
        assert_eq!(key_and_extension("x.cls"), Some(("x", "cls".into())));
        assert_eq!(key_and_extension("dir/noext"), None);
        assert_eq!(key_and_extension("dir/.hidden"), None);
        assert!(is_video_extension("left.mp4"));
        assert!(!is_video_extension("mp4.json"));
    }
}
