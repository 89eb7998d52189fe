#!/usr/bin/env python3
"""PyNvVideoCodec (2.2.x) on the scenarios of benches/gpu_decode.rs, same files, same JSON lines.

Scenarios and the PyNvVideoCodec script each one follows (the scripts ship in the wheel, under benchmarks/ and
samples/):
  seq100_b5, seq100_b100, uniform30, random30   frame_sampling_benchmark.py: SimpleDecoder RGBP in device
      memory, the first 100 frames in batches of 5 (or one batch of 100), 30 uniform frames (i * len / 30),
      30 distinct random frames (splitmix64, seed 7, draw order, same numbers as the Rust bench);
      GOP 30 and GOP 250 files, 1 and 7 threads.
  clips_new, clips_reused, clips_reused_batch    cached_decoder_benchmark.py: 210 two-second clips (the distinct
      clips linked under 210 names), 7 threads in contiguous chunks, NATIVE output, every frame with dec[i]
      (or all 60 with get_batch_frames); a new SimpleDecoder per clip vs one reconfigure_decoder()'d decoder
      (max 3840x2160), each thread with the primary context and its own stream, as that script does.
  nv12_x4                                        samples/advanced/decode_perf.py: CreateDemuxer + CreateDecoder
      (device memory), every packet through Decode(); the whole file 4 times per thread (a new demuxer per pass,
      the same decoder); H.264 and HEVC, 1, 7 and 14 threads.

Differences from those scripts, the same for both libraries: every thread warms up once (untimed) and all start
together; fps = all threads' frames / wall time of the timed part (the scripts sum per-thread fps and subtract
session init time; "fps_thread_sum" gives that sum); bWaitForSessionWarmUp/SetSessionCount are not used (the
warm-up creates the sessions); each thread ends its timed part with torch.cuda.synchronize() when torch is there.
A failing scenario prints an "error" line and the run goes on. With --budget, the clip loops stop early once the
budget is spent (their line says "truncated") and the scenarios left are skipped. Each scenario runs --repeats
times (3) and then again until its timed runs add up to --min-seconds (1.0), at most --max-repeats times (25), as
benches/gpu_decode.rs does; its line reports the median run. The clip scenarios use --clip-min-seconds (5.0)
instead when it is larger: a run of the 360p clips lasts about 0.6 s. Clip scenarios run --clip-threads threads
(7). Scenarios of several threads also print, per run, each thread's seconds, its time on a CPU and waiting for
one (/proc/thread-self/schedstat), and the CPU time of the process's other threads (a readable line, not JSON).
VIDLOADER_BENCH_PIN_CORES (e.g. "1-7") pins thread i to the (i % len)-th core listed, as the Rust bench does;
VIDLOADER_BENCH_SETTLE_MS (default 20) pauses between preparation and the clock, as the Rust bench does.

    python3 benches/pynvc_bench.py [--data .benchdata] [--only PREFIX,...] [--clips 210] [--budget SECONDS]
                                   [--repeats 3] [--min-seconds 1.0] [--clip-min-seconds 5.0] [--max-repeats 25]
"""

import argparse
import ctypes
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

IMPL = "pynvc"
SAMPLE_FILES = ["h264_1080p_gop30.mp4", "h264_1080p_gop250.mp4"]
NV12_FILES = ["h264_1080p_gop30.mp4", "hevc_1080p_gop30.mp4"]
CLIP_SETS = ["clips_1080p", "clips_360p"]
SAMPLE_THREADS = [1, 7]
NV12_THREADS = [1, 7, 14]
RANDOM_SEED = 7
MASK64 = (1 << 64) - 1

nvc = None  # PyNvVideoCodec, imported in main()
torch = None  # optional


def emit(scenario, file, threads, result=None, error=None, skipped=None, **extra):
    line = {"impl": IMPL, "scenario": scenario, "file": file, "threads": threads}
    if result is not None:
        frames, secs = result[0], result[1]
        fps = frames / max(secs, 1e-9)
        line.update(frames=frames, seconds=round(secs, 4), fps=round(fps, 1))
        if len(result) > 2 and result[2]:
            line["fps_thread_sum"] = round(result[2], 1)
        print(f"{IMPL} {scenario:<20} {file:<24} threads {threads:>2}: {frames:>6} frames in {secs:>7.3f} s = "
              f"{fps:>8.1f} fps")
    if error is not None:
        line["error"] = error
        print(f"{IMPL} {scenario:<20} {file:<24} threads {threads:>2}: ERROR {error}")
    if skipped is not None:
        line["skipped"] = skipped
    line.update(extra)
    print(json.dumps(line, sort_keys=True))


# ---------------------------------------------------------------------------------------------------------------
# Index patterns (identical to benches/gpu_decode.rs)

def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def uniform_indices(n, count):
    return [i * n // count for i in range(count)]


def random_indices(n, count, seed):
    state, out = seed, []
    while len(out) < min(count, n):
        state, r = splitmix64(state)
        i = r % n
        if i not in out:
            out.append(i)
    return out


def split_list(items, n):
    k, m = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + k + (1 if i < m else 0)
        out.append(items[start:end])
        start = end
    return out


# ---------------------------------------------------------------------------------------------------------------
# Threads and timing

def describe(e):
    return (str(e) if isinstance(e, ThreadFailure) else f"{type(e).__name__}: {e}")[:2000]


class ThreadFailure(RuntimeError):
    """A benchmark thread failed; the message is its exception and where it was raised."""


def short_traceback(text):
    """The exception line of a formatted traceback and the innermost place it was raised."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    places = [line for line in lines if line.startswith("File ")]
    return lines[-1] + (f" ({places[-1]})" if places else "")


def sched_stat(path="/proc/thread-self/schedstat"):
    """A thread's scheduler account (Linux): (ns on a CPU, ns ready but waiting in a run queue); zeros without
    the file."""
    try:
        with open(path) as f:
            fields = f.read().split()
        return int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return 0, 0


def this_core():
    """The core the calling thread last ran on (field 39 of /proc/thread-self/stat), or None."""
    try:
        with open("/proc/thread-self/stat") as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 1:].split()[39 - 3])
    except (OSError, ValueError, IndexError):
        return None


def process_threads():
    """{tid: (name, (ns on a CPU, ns waiting))} for every thread of this process."""
    out = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        out[int(tid)] = (name, sched_stat(f"/proc/self/task/{tid}/schedstat"))
    return out


def other_threads_summary(before, after, skip):
    """The threads not in `skip` between two process_threads() snapshots: how many, and the CPU ms of the busiest
    names (as the Rust bench prints it)."""
    by_name = {}
    for tid, (name, (cpu, _)) in after.items():
        if tid in skip:
            continue
        was = before.get(tid, (name, (0, 0)))[1][0]
        n, ms = by_name.get(name, (0, 0.0))
        by_name[name] = (n + 1, ms + max(cpu - was, 0) / 1e6)
    top = sorted(by_name.items(), key=lambda kv: -kv[1][1])
    total = sum(ms for _, (_, ms) in top)
    count = sum(n for _, (n, _) in top)
    busiest = ", ".join(f"{name} x{n} {ms:.1f}" for name, (n, ms) in top[:4])
    return f"{count} threads, {total:.1f} ms on CPU ({busiest})"


def pin_cores():
    """The cores the benchmark threads are pinned to (VIDLOADER_BENCH_PIN_CORES, e.g. "1-7" or "0,2,4"; thread i
    takes the (i % len)-th); empty = not pinned. Threads a pinned thread starts inherit its core."""
    cores = []
    for part in filter(None, (p.strip() for p in os.environ.get("VIDLOADER_BENCH_PIN_CORES", "").split(","))):
        a, _, b = part.partition("-")
        try:
            first, last = int(a), int(b or a)
        except ValueError:
            first, last = 1, 0
        if first > last:
            print(f"VIDLOADER_BENCH_PIN_CORES: cannot read {part!r}, ignored", file=sys.stderr)
        cores.extend(range(first, last + 1))
    return cores


PIN_CORES = pin_cores()


def settle_seconds():
    """The pause between the end of every thread's preparation and the start of the clock, in seconds:
    VIDLOADER_BENCH_SETTLE_MS (default 20 ms; unreadable or negative: the default), the same pause as the Rust
    bench, whose module docs say why."""
    try:
        ms = float(os.environ.get("VIDLOADER_BENCH_SETTLE_MS", "20"))
    except ValueError:
        ms = -1.0
    return (ms if ms >= 0 and math.isfinite(ms) else 20.0) / 1000.0


SETTLE_S = settle_seconds()


def run_threads(n, prepare, timed):
    """Each of n threads prepares and warms up (untimed); all start together; returns (frames, wall seconds,
    sum of per-thread fps, per-thread seconds, per-thread (ms on a CPU, ms waiting for one), a summary of the
    process's other threads, the core each thread last ran on)."""
    # Workers wait at `ready` once prepared, so that the snapshot of the process's threads is taken when every helper
    # thread the preparation started exists; then all start together at `barrier`.
    ready = threading.Barrier(n + 1)
    barrier = threading.Barrier(n + 1)
    frames, times, errors = [0] * n, [0.0] * n, [None] * n
    sched, tids, cores = [(0.0, 0.0)] * n, [None] * n, [None] * n
    # The threads' states (decoders) are kept here until the clock has stopped: closing a decoder takes tens of
    # ms, which is no part of decoding (the Rust bench drops its decoders after its clock stops too).
    kept = [None] * n

    def worker(i):
        if PIN_CORES:
            try:
                # On Linux pid 0 is the calling thread.
                os.sched_setaffinity(0, {PIN_CORES[i % len(PIN_CORES)]})
            except OSError as e:
                print(f"benchmark thread {i}: could not pin it: {e}", file=sys.stderr)
        tids[i] = threading.get_native_id()
        state, ok = None, True
        try:
            state = prepare(i)
            kept[i] = state
        except BaseException:  # noqa: BLE001 - reported below
            ok, errors[i] = False, traceback.format_exc(limit=3)
        ready.wait()
        barrier.wait()
        if not ok:
            return
        try:
            t = time.perf_counter()
            s0 = sched_stat()
            frames[i] = timed(i, state)
            sync()
            times[i] = time.perf_counter() - t
            s1 = sched_stat()
            sched[i] = ((s1[0] - s0[0]) / 1e6, (s1[1] - s0[1]) / 1e6)
            cores[i] = this_core()
        except BaseException:  # noqa: BLE001
            errors[i] = traceback.format_exc(limit=3)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    ready.wait()
    # The pause first, so that the other threads' work during it is not counted as part of the timed run.
    if SETTLE_S:
        time.sleep(SETTLE_S)
    before = process_threads()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    secs = time.perf_counter() - start
    others = other_threads_summary(before, process_threads(), set(tids) | {threading.get_native_id()})
    kept.clear()
    for e in errors:
        if e:
            raise ThreadFailure(short_traceback(e))
    return (sum(frames), secs, sum(f / t for f, t in zip(frames, times) if t > 0), times, sched, others,
            cores)


def sync():
    if torch is not None:
        torch.cuda.synchronize()


_primary_ctx = None


def primary_context():
    """The handle of GPU 0's primary context (the one torch uses), from the driver API; 0 (PyNvVideoCodec's
    default) if the driver cannot be asked."""
    global _primary_ctx
    if _primary_ctx is None:
        _primary_ctx = 0
        try:
            cuda = ctypes.CDLL("libcuda.so.1")
            ctx, dev = ctypes.c_void_p(), ctypes.c_int()
            if (cuda.cuInit(0) == 0 and cuda.cuDeviceGet(ctypes.byref(dev), 0) == 0
                    and cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0):
                _primary_ctx = ctx.value or 0
        except OSError:
            pass
    return _primary_ctx


def context_and_stream():
    """(context, stream, keep-alive) for a decoder: the primary context and a new stream per thread, as
    cached_decoder_benchmark.py does with pycuda; (0, 0, None) without torch."""
    if torch is None:
        return 0, 0, None
    s = torch.cuda.Stream(device=0)
    return primary_context(), s.cuda_stream, s


# ---------------------------------------------------------------------------------------------------------------
# Scenarios

class Bench:
    def __init__(self, args):
        self.data = args.data
        self.only = [o for o in args.only.split(",") if o]
        self.clips = args.clips
        self.passes = args.passes
        self.repeats = max(1, args.repeats)
        self.min_seconds = max(0.0, args.min_seconds)
        self.clip_min_seconds = max(self.min_seconds, args.clip_min_seconds)
        self.max_repeats = max(1, args.max_repeats)
        self.clip_threads = max(1, args.clip_threads)
        self.repeat = 0
        self.budget = args.budget
        self.start = time.perf_counter()
        self.tmp = tempfile.mkdtemp(prefix="pynvc-bench-", dir=args.tmp)
        self.truncated = False

    def over_budget(self):
        return bool(self.budget) and time.perf_counter() - self.start > self.budget

    def stop_early(self):
        """In a long scenario's timed loop: stop taking work once the budget is spent (the line then covers the
        work done so far and says "truncated")."""
        if self.over_budget():
            self.truncated = True
        return self.truncated

    def run(self, scenario, file, threads, fn, min_seconds=None, **extra):
        """Runs a scenario `repeats` times, and again until its timed runs add up to `min_seconds` (by default
        the --min-seconds option; at most `max_repeats` runs; clip scenarios on fresh names each time), and prints
        the median run, with every run's fps in "fps_runs" and (max - min) / median in "spread_pct"."""
        if self.only and not any(scenario.startswith(o) for o in self.only):
            return
        if self.over_budget():
            emit(scenario, file, threads, skipped=f"time budget of {self.budget} s spent", **extra)
            return
        runs = []
        truncated = False
        timed = 0.0
        min_seconds = self.min_seconds if min_seconds is None else min_seconds
        for r in range(max(self.repeats, self.max_repeats)):
            if r > 0 and self.over_budget():
                break
            if r >= self.repeats and timed >= min_seconds:
                break
            self.repeat = r
            self.truncated = False
            try:
                runs.append(fn())
                timed += runs[-1][1]
                if len(runs[-1]) > 6 and len(runs[-1][3]) > 1:
                    # Not JSON (benches/compare.py skips it): per thread, in thread order, its seconds from the
                    # common start to its end and the scheduler's account; then the process's other threads.
                    _, _, _, secs, sched, others, cores = runs[-1]
                    each = ", ".join(f"{t:.3f}" for t in secs)
                    on_cpu = ", ".join(f"{c:.0f}" for c, _ in sched)
                    waiting = ", ".join(f"{w:.1f}" for _, w in sched)
                    print(f"  {scenario} {file} run {r}: {runs[-1][0]} frames in {runs[-1][1]:.3f} s; "
                          f"threads' seconds [{each}]; on a CPU ms [{on_cpu}]; waiting for a CPU ms [{waiting}]; "
                          f"last core [{', '.join('?' if c is None else str(c) for c in cores)}]; "
                          f"other threads: {others}")
            except Exception as e:  # noqa: BLE001 - one failure must not stop the run
                emit(scenario, file, threads, error=describe(e), **extra)
                return
            truncated = truncated or self.truncated
        fps = sorted((res[0] / max(res[1], 1e-9), k) for k, res in enumerate(runs))
        median_fps, median_run = fps[len(fps) // 2]
        extra["fps_runs"] = [round(f, 1) for f, _ in fps]
        extra["spread_pct"] = round((fps[-1][0] - fps[0][0]) / max(median_fps, 1e-9) * 100, 1)
        if truncated:
            extra["truncated"] = True
        emit(scenario, file, threads, result=runs[median_run], **extra)

    def replicate(self, clip_set, tag, count):
        src = os.path.join(self.data, clip_set)
        distinct = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".mp4"))
        if not distinct:
            raise RuntimeError(f"no .mp4 in {src}")
        d = os.path.join(self.tmp, f"{clip_set}-{tag}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        names = []
        for j in range(count):
            dst = os.path.join(d, f"{tag}_{j:03d}.mp4")
            try:
                os.link(distinct[j % len(distinct)], dst)
            except OSError:
                shutil.copyfile(distinct[j % len(distinct)], dst)
            names.append(dst)
        return distinct, names, d

    # --- SimpleDecoder sampling (frame_sampling_benchmark.py)

    def rgbp_decoder(self, path):
        return nvc.SimpleDecoder(path, gpu_id=0, use_device_memory=True,
                                 output_color_type=nvc.OutputColorType.RGBP)

    def sampling(self):
        for file in SAMPLE_FILES:
            path = os.path.join(self.data, file)
            for threads in SAMPLE_THREADS:
                for scenario, batch in (("seq100_b5", 5), ("seq100_b100", 100)):
                    self.run(scenario, file, threads, lambda: self.sequential(path, threads, 100, batch),
                             batch=batch)
                self.run("uniform30", file, threads,
                         lambda: self.by_index(path, threads, lambda n: uniform_indices(n, 30)))
                self.run("random30", file, threads,
                         lambda: self.by_index(path, threads, lambda n: random_indices(n, 30, RANDOM_SEED)),
                         seed=RANDOM_SEED)

    @staticmethod
    def read_first(dec, n, batch):
        got = 0
        while got < n:
            frames = dec.get_batch_frames(min(batch, n - got))
            if not frames:
                break
            got += len(frames)
        return got

    def sequential(self, path, threads, n, batch):
        def prepare(_):
            dec = self.rgbp_decoder(path)
            self.read_first(dec, n, batch)
            dec.reconfigure_decoder(path)  # back to frame 0, as the PyNvVideoCodec script does between runs
            return dec

        return run_threads(threads, prepare, lambda _, dec: self.read_first(dec, n, batch))

    def by_index(self, path, threads, pattern):
        def prepare(_):
            dec = self.rgbp_decoder(path)
            idx = pattern(len(dec))
            dec.get_batch_frames_by_index(idx)
            return dec, idx

        return run_threads(threads, prepare, lambda _, s: len(s[0].get_batch_frames_by_index(s[1])))

    # --- Short clips (cached_decoder_benchmark.py)

    def clip_scenarios(self):
        for clip_set in CLIP_SETS:
            for scenario, reuse, batch in (("clips_new", False, False), ("clips_reused", True, False),
                                           ("clips_reused_batch", True, True)):
                self.run(scenario, clip_set, self.clip_threads,
                         lambda: self.clips_run(clip_set, scenario, reuse, batch),
                         min_seconds=self.clip_min_seconds, color="native", access="batch" if batch else "frame",
                         clips=self.clips)

    def clips_run(self, clip_set, tag, reuse, batch):
        distinct, names, d = self.replicate(clip_set, f"{tag}_r{self.repeat}", self.clips)
        warm, chunks = split_list(distinct, self.clip_threads), split_list(names, self.clip_threads)
        try:
            def prepare(i):
                # (context, stream, keep) and a holder of the thread's decoder: the warm-up's decoder goes on into
                # the timed part (reconfigured when reusing, as the Rust bench does) and is closed after the clock
                # stops.
                state = (context_and_stream(), [None])
                self.decode_clips(warm[i], reuse, batch, state, timed=False)
                return state

            return run_threads(self.clip_threads, prepare,
                               lambda i, state: self.decode_clips(chunks[i], reuse, batch, state, timed=True))
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def decode_clips(self, clips, reuse, batch, state, timed):
        (context, stream, keep), holder = state
        dec, frames = holder[0], 0
        for clip in clips:
            if timed and self.stop_early():
                break
            if dec is not None and reuse:
                dec.reconfigure_decoder(clip)
            elif reuse:
                dec = nvc.SimpleDecoder(clip, gpu_id=0, cuda_context=context, cuda_stream=stream,
                                        use_device_memory=True, max_width=3840, max_height=2160)
            else:
                dec = nvc.SimpleDecoder(clip, gpu_id=0, cuda_context=context, cuda_stream=stream,
                                        use_device_memory=True)
            n = dec.get_stream_metadata().num_frames
            if batch:
                frames += len(dec.get_batch_frames(n))
            else:
                for i in range(n):
                    _ = dec[i]
                frames += n
        holder[0] = dec
        if keep is not None:
            keep.synchronize()
        return frames

    # --- Low-level decoder, NV12 (decode_perf.py)

    def nv12(self):
        for file in NV12_FILES:
            path = os.path.join(self.data, file)
            for threads in NV12_THREADS:
                self.run("nv12_x4", file, threads, lambda: self.nv12_run(path, threads), passes=self.passes)

    @staticmethod
    def decode_file(path, dec):
        frames = 0
        for packet in nvc.CreateDemuxer(filename=path):
            frames += sum(1 for _ in dec.Decode(packet))
        return frames

    def nv12_run(self, path, threads):
        def prepare(_):
            codec = nvc.CreateDemuxer(filename=path).GetNvCodecId()
            dec = nvc.CreateDecoder(gpuid=0, codec=codec, usedevicememory=True)
            self.decode_file(path, dec)
            return dec

        return run_threads(threads, prepare,
                           lambda _, dec: sum(self.decode_file(path, dec) for _ in range(self.passes)))


def main():
    global nvc, torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("VIDLOADER_BENCH_DATA", ".benchdata"))
    ap.add_argument("--only", default=os.environ.get("VIDLOADER_BENCH_ONLY", ""),
                    help="comma-separated scenario prefixes (default: all)")
    ap.add_argument("--clips", type=int, default=int(os.environ.get("VIDLOADER_BENCH_CLIPS", "210")))
    ap.add_argument("--passes", type=int, default=int(os.environ.get("VIDLOADER_BENCH_PASSES", "4")))
    ap.add_argument("--repeats", type=int, default=int(os.environ.get("VIDLOADER_BENCH_REPEATS", "3")),
                    help="runs of each scenario at least; the median run is reported")
    ap.add_argument("--min-seconds", type=float, default=float(os.environ.get("VIDLOADER_BENCH_MIN_S", "1.0")),
                    help="run a scenario again until its timed runs add up to this many seconds")
    ap.add_argument("--clip-min-seconds", type=float,
                    default=float(os.environ.get("VIDLOADER_BENCH_CLIP_MIN_S", "5.0")),
                    help="the same for the clip scenarios (used when larger than --min-seconds)")
    ap.add_argument("--max-repeats", type=int, default=int(os.environ.get("VIDLOADER_BENCH_MAX_REPEATS", "25")),
                    help="at most this many runs of a scenario")
    ap.add_argument("--clip-threads", type=int, default=int(os.environ.get("VIDLOADER_BENCH_CLIP_THREADS", "7")),
                    help="threads of the clip scenarios")
    ap.add_argument("--budget", type=float, default=float(os.environ.get("VIDLOADER_BENCH_BUDGET_S", "0")),
                    help="skip the scenarios left after this many seconds (0 = no limit)")
    ap.add_argument("--tmp", default=os.environ.get("VIDLOADER_BENCH_TMP") or None)
    args = ap.parse_args()

    if not os.path.isfile(os.path.join(args.data, SAMPLE_FILES[0])):
        print(f"skipped: no benchmark data in {args.data} (datasets/make-gpu-bench.sh makes it)")
        return 0
    try:
        import PyNvVideoCodec
        nvc = PyNvVideoCodec
    except Exception as e:  # noqa: BLE001
        print(f"skipped: PyNvVideoCodec does not import ({type(e).__name__}: {e})")
        print(json.dumps({"impl": IMPL, "scenario": "import", "file": "", "threads": 0,
                          "error": f"{type(e).__name__}: {e}"}))
        return 0
    try:
        import torch as _torch
        if _torch.cuda.is_available():
            torch = _torch
            torch.cuda.init()
    except Exception:  # noqa: BLE001 - torch only adds the final synchronisation
        pass
    gpu = torch.cuda.get_device_name(0) if torch is not None else "GPU 0"
    print(f"PyNvVideoCodec {getattr(nvc, '__version__', '?')} benchmark on {gpu}: data {args.data}, "
          f"{args.clips} clips, budget {args.budget} s")
    b = Bench(args)
    try:
        b.sampling()
        b.nv12()
        b.clip_scenarios()
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)
    print(f"PyNvVideoCodec benchmark done in {time.perf_counter() - b.start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
