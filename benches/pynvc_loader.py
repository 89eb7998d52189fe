#!/usr/bin/env python3
"""A data loader written by hand from PyNvVideoCodec + torch, timed on the clip sets of the GPU benchmark.

W worker threads, each with one SimpleDecoder (RGBP, device memory) reconfigured from clip to clip, take batches
of 8 clips from a shared queue; per clip 16 evenly spaced frames (numpy.linspace(0, len - 1, 16, dtype=int)) are
fetched with get_batch_frames_by_index, taken into torch through DLPack, resized to 224x224 (bilinear), scaled
to 0..1, normalised with the ImageNet mean/std and cast to fp16, giving one [8, 16, 3, 224, 224] CUDA tensor per
batch. Each worker runs its torch work on its own CUDA stream, which it also hands to its decoder, and waits for
it before counting a batch as delivered. Scenario "loader", the same as the "loader" scenario of
benches/gpu_decode.rs (which writes the same batches with vidloader's fused kernel); fps = frames delivered in
batches / wall time, every worker warmed up with one batch of the distinct clips first. Each setting runs
--repeats times (3) and then again until its timed runs add up to --min-seconds (1.0), at most --max-repeats times
(25), with new workers each run, as benches/pynvc_bench.py does; its line reports the median run, every run's fps
in "fps_runs" and (max - min) / median in "spread_pct".

    python3 benches/pynvc_loader.py [--data .benchdata] [--workers 1,7,14] [--clips 210] [--budget SECONDS]
                                    [--repeats 3] [--min-seconds 1.0] [--max-repeats 25]
"""

import argparse
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import traceback

IMPL = "pynvc"
CLIP_SETS = ["clips_1080p", "clips_360p"]
FRAMES_PER_CLIP = 16
CLIPS_PER_BATCH = 8
SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def emit(file, threads, frames=None, secs=None, error=None, skipped=None, **extra):
    line = {"impl": IMPL, "scenario": "loader", "file": file, "threads": threads}
    if frames is not None:
        fps = frames / max(secs, 1e-9)
        line.update(frames=frames, seconds=round(secs, 4), fps=round(fps, 1))
        print(f"{IMPL} loader {file:<14} workers {threads:>2}: {frames:>6} frames in {secs:>7.3f} s = "
              f"{fps:>8.1f} fps")
    if error is not None:
        line["error"] = error
        print(f"{IMPL} loader {file:<14} workers {threads:>2}: ERROR {error}")
    if skipped is not None:
        line["skipped"] = skipped
    line.update(extra)
    print(json.dumps(line, sort_keys=True))


def to_chw(torch, frame):
    """One decoded RGBP frame as a [3, H, W] uint8 CUDA tensor (no copy)."""
    try:
        t = torch.from_dlpack(frame)
    except Exception:  # noqa: BLE001 - older exports: the CUDA array interface
        t = torch.as_tensor(frame, device="cuda")
    if t.dim() == 2:  # planes stacked as [3 * H, W]
        t = t.view(3, t.shape[0] // 3, t.shape[1])
    elif t.dim() == 3 and t.shape[-1] == 3 and t.shape[0] != 3:  # HWC
        t = t.permute(2, 0, 1)
    return t


def linspace_indices(n, count):
    """numpy.linspace(0, n - 1, count, dtype=int), in integers."""
    return [i * (n - 1) // (count - 1) for i in range(count)] if count > 1 else [0]


class Worker:
    def __init__(self, torch, nvc, device):
        self.torch, self.nvc, self.device = torch, nvc, device
        self.cuda = device.startswith("cuda")
        self.stream = torch.cuda.Stream(device=0) if self.cuda else None
        self.dec = None
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

    def batch(self, clips):
        torch = self.torch
        if not self.cuda:
            return self._batch(clips)
        with torch.cuda.stream(self.stream):
            n = self._batch(clips)
            self.stream.synchronize()
        return n

    def _batch(self, clips):
        torch, F = self.torch, self.torch.nn.functional
        out = torch.empty((len(clips), FRAMES_PER_CLIP, 3, SIZE, SIZE), dtype=torch.float16, device=self.device)
        for k, clip in enumerate(clips):
            if self.dec is None:
                stream = {"cuda_stream": self.stream.cuda_stream} if self.cuda else {}
                self.dec = self.nvc.SimpleDecoder(clip, gpu_id=0, use_device_memory=self.cuda,
                                                  output_color_type=self.nvc.OutputColorType.RGBP, **stream)
            else:
                self.dec.reconfigure_decoder(clip)
            frames = self.dec.get_batch_frames_by_index(linspace_indices(len(self.dec), FRAMES_PER_CLIP))
            x = torch.stack([to_chw(torch, f) for f in frames]).float()
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
            out[k] = ((x / 255.0 - self.mean) / self.std).half()
        return len(clips) * FRAMES_PER_CLIP


def describe(e):
    return (str(e) if isinstance(e, ThreadFailure) else f"{type(e).__name__}: {e}")[:2000]


class ThreadFailure(RuntimeError):
    """A benchmark thread failed; the message is its exception and where it was raised."""


def short_traceback(text):
    """The exception line of a formatted traceback and the innermost place it was raised."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    places = [line for line in lines if line.startswith("File ")]
    return lines[-1] + (f" ({places[-1]})" if places else "")


def run(torch, nvc, device, clips, warm, workers, deadline):
    """(frames delivered, wall seconds, truncated): stops taking batches after `deadline` (perf_counter)."""
    batches = queue.Queue()
    for i in range(0, len(clips), CLIPS_PER_BATCH):
        batches.put(clips[i:i + CLIPS_PER_BATCH])
    barrier = threading.Barrier(workers + 1)
    frames, errors = [0] * workers, [None] * workers
    # The workers (and their decoders) are kept here until the clock has stopped: closing a decoder takes tens
    # of ms, which is no part of decoding (vidloader's side drops its decoders after its clock stops too).
    kept = [None] * workers
    truncated = []

    def work(i):
        w = None
        try:
            w = Worker(torch, nvc, device)
            kept[i] = w
            w.batch(warm)
        except BaseException:  # noqa: BLE001
            errors[i] = traceback.format_exc(limit=3)
        barrier.wait()
        if errors[i]:
            return
        try:
            while True:
                try:
                    b = batches.get_nowait()
                except queue.Empty:
                    return
                if deadline and time.perf_counter() > deadline:
                    truncated.append(i)
                    return
                frames[i] += w.batch(b)
        except BaseException:  # noqa: BLE001
            errors[i] = traceback.format_exc(limit=3)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    secs = time.perf_counter() - start
    kept.clear()
    for e in errors:
        if e:
            raise ThreadFailure(short_traceback(e))
    return sum(frames), secs, bool(truncated)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("VIDLOADER_BENCH_DATA", ".benchdata"))
    ap.add_argument("--workers", default="1,7,14")
    ap.add_argument("--clips", type=int, default=int(os.environ.get("VIDLOADER_BENCH_CLIPS", "210")))
    ap.add_argument("--budget", type=float, default=float(os.environ.get("VIDLOADER_BENCH_BUDGET_S", "0")),
                    help="skip the runs left after this many seconds (0 = no limit)")
    ap.add_argument("--repeats", type=int, default=int(os.environ.get("VIDLOADER_BENCH_REPEATS", "3")),
                    help="runs of each setting at least; the median run is reported")
    ap.add_argument("--min-seconds", type=float, default=float(os.environ.get("VIDLOADER_BENCH_MIN_S", "1.0")),
                    help="run a setting again until its timed runs add up to this many seconds")
    ap.add_argument("--max-repeats", type=int, default=int(os.environ.get("VIDLOADER_BENCH_MAX_REPEATS", "25")),
                    help="at most this many runs of a setting")
    ap.add_argument("--tmp", default=os.environ.get("VIDLOADER_BENCH_TMP") or None)
    ap.add_argument("--device", default="cuda", help="cuda, or cpu to check the script with host frames")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.data, CLIP_SETS[0])):
        print(f"skipped: no clips in {args.data} (datasets/make-gpu-bench.sh makes them)")
        return 0
    try:
        import torch
        import PyNvVideoCodec as nvc
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
    except Exception as e:  # noqa: BLE001
        print(f"skipped: {type(e).__name__}: {e}")
        print(json.dumps({"impl": IMPL, "scenario": "loader", "file": "", "threads": 0,
                          "error": f"{type(e).__name__}: {e}"}))
        return 0

    start = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="pynvc-loader-", dir=args.tmp)
    extra = dict(clips=args.clips, frames_per_clip=FRAMES_PER_CLIP, clips_per_batch=CLIPS_PER_BATCH, size=SIZE,
                 dtype="fp16")
    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device
    print(f"PyNvVideoCodec {getattr(nvc, '__version__', '?')} hand-written loader on {where}: "
          f"data {args.data}, {args.clips} clips")
    try:
        for clip_set in CLIP_SETS:
            src = os.path.join(args.data, clip_set)
            distinct = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".mp4"))
            for workers in [int(w) for w in args.workers.split(",") if w]:
                if args.budget and time.perf_counter() - start > args.budget:
                    emit(clip_set, workers, skipped=f"time budget of {args.budget} s spent", **extra)
                    continue
                # Fresh names for every run (links to the distinct clips, copies where links fail).
                d = os.path.join(tmp, f"{clip_set}-loader{workers}")
                os.makedirs(d)
                clips = []
                for j in range(args.clips):
                    dst = os.path.join(d, f"loader{workers}_{j:03d}.mp4")
                    try:
                        os.link(distinct[j % len(distinct)], dst)
                    except OSError:
                        shutil.copyfile(distinct[j % len(distinct)], dst)
                    clips.append(dst)
                try:
                    deadline = start + args.budget if args.budget else 0
                    runs, timed, cut = [], 0.0, False
                    for r in range(max(args.repeats, args.max_repeats, 1)):
                        if r > 0 and deadline and time.perf_counter() > deadline:
                            break
                        if r >= max(args.repeats, 1) and timed >= args.min_seconds:
                            break
                        frames, secs, truncated = run(torch, nvc, args.device, clips, distinct[:CLIPS_PER_BATCH],
                                                      workers, deadline)
                        runs.append((frames / max(secs, 1e-9), frames, secs))
                        timed += secs
                        cut = cut or truncated
                    runs.sort()
                    fps, frames, secs = runs[len(runs) // 2]
                    emit(clip_set, workers, frames, secs, **extra, fps_runs=[round(f, 1) for f, _, _ in runs],
                         spread_pct=round((runs[-1][0] - runs[0][0]) / max(fps, 1e-9) * 100, 1),
                         **({"truncated": True} if cut else {}))
                except Exception as e:  # noqa: BLE001 - one failure must not stop the run
                    emit(clip_set, workers, error=describe(e), **extra)
                finally:
                    shutil.rmtree(d, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
