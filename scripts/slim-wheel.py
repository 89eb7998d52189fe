#!/usr/bin/env python3
"""Rewrites a wheel without what a benchmark run does not need, so that it travels in less space.

    python3 scripts/slim-wheel.py WHEEL... [--keep-original DIR]

Dropped: the package's data files (`*.data/`, e.g. the FFmpeg source tarball of PyNvVideoCodec), its top-level
`samples/` and `benchmarks/` folders, and duplicate copies of a shared library (`libx.so` and `libx.so.N.M.K`
when they hold the same bytes as `libx.so.N`, the name the loader asks for). RECORD is rewritten to match, so
the result is still a valid wheel for pip. Each wheel is replaced in place; with --keep-original the original is
moved into DIR first.
"""

import argparse
import os
import re
import shutil
import sys
import zipfile
from collections import defaultdict

DROP_TOP = ("samples/", "benchmarks/")
SONAME = re.compile(r"\.so\.\d+$")


def dropped(zf):
    names = zf.namelist()
    drop = {n for n in names if n.startswith(DROP_TOP) or re.match(r"[^/]+\.data/", n)}
    # Identical shared libraries in one folder: keep the libx.so.N name.
    groups = defaultdict(list)
    for info in zf.infolist():
        if re.search(r"\.so(\.\d+)*$", info.filename) and "/" in info.filename:
            folder = info.filename.rsplit("/", 1)[0]
            groups[(folder, info.CRC, info.file_size)].append(info.filename)
    for members in groups.values():
        keep = [m for m in members if SONAME.search(m)]
        if len(members) > 1 and keep:
            drop.update(m for m in members if m != keep[0])
    return drop


def slim(path, keep_dir):
    with zipfile.ZipFile(path) as zf:
        drop = dropped(zf)
        if not drop:
            print(f"{path}: nothing to drop")
            return
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        tmp = path + ".tmp"
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
            for info in zf.infolist():
                if info.filename in drop:
                    continue
                data = zf.read(info)
                if info.filename == record:
                    lines = data.decode().splitlines()
                    data = ("\n".join(l for l in lines if l.split(",", 1)[0] not in drop) + "\n").encode()
                out.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    before = os.path.getsize(path)
    if keep_dir:
        os.makedirs(keep_dir, exist_ok=True)
        shutil.move(path, os.path.join(keep_dir, os.path.basename(path)))
    os.replace(tmp, path)
    after = os.path.getsize(path)
    print(f"{path}: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB ({len(drop)} entries dropped)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", nargs="+")
    ap.add_argument("--keep-original", metavar="DIR")
    args = ap.parse_args()
    for w in args.wheels:
        slim(w, args.keep_original)
    return 0


if __name__ == "__main__":
    sys.exit(main())
