// nvcuvid_trace.c: a stand-in libnvcuvid.so.1 that forwards every call to the real library and records when each
// NVDEC call started and returned, per thread. A diagnostic for comparing how two programs drive NVDEC (vidloader and
// PyNvVideoCodec both load the library by name, so neither needs changing); it is not part of vidloader.
//
//     gcc -O2 -shared -fPIC -o libnvcuvid.so.1 nvcuvid_trace.c -ldl -lpthread      (here; carry the .so)
//     export NVCUVID_REAL=$(ldconfig -p | awk '/libnvcuvid.so.1 /{print $NF; exit}')   (the real library)
//     NVCUVID_TRACE=/tmp/trace LD_LIBRARY_PATH=<folder of this .so>:$LD_LIBRARY_PATH  PROGRAM ...
//     python3 scripts/nvcuvid-trace/timeline.py /tmp/trace.<pid>
//
// Each line of the trace: call id, thread id, start and end (CLOCK_MONOTONIC, ns), one argument (ids and arguments
// are listed above the forwarders below). Every function is forwarded with eight integer arguments, which is
// correct for the nvcuvid API on x86-64 (all arguments are integers or pointers).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <pthread.h>

typedef long (*fn8)(long, long, long, long, long, long, long, long);
struct ev { uint64_t t0, t1; int64_t arg; uint32_t what, tid; };
#define MAXEV 2000000
static struct ev *evs;
static long nev;
static void *real;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
static void init_once(void) {
    const char *p = getenv("NVCUVID_REAL");
    real = dlopen(p ? p : "/usr/lib/x86_64-linux-gnu/libnvcuvid.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!real) { fprintf(stderr, "nvcuvid_trace: %s\n", dlerror()); abort(); }
    evs = calloc(MAXEV, sizeof *evs);
}
static void *sym(const char *name) {
    pthread_once(&once, init_once);
    return dlsym(real, name);
}
static void rec(uint32_t what, uint64_t t0, uint64_t t1, int64_t arg) {
    long i = __atomic_fetch_add(&nev, 1, __ATOMIC_RELAXED);
    if (i < MAXEV) {
        evs[i].t0 = t0; evs[i].t1 = t1; evs[i].arg = arg; evs[i].what = what;
        evs[i].tid = (uint32_t)syscall(SYS_gettid);
    }
}
__attribute__((destructor)) static void dump(void) {
    const char *out = getenv("NVCUVID_TRACE");
    if (!out || !evs) return;
    char path[512];
    snprintf(path, sizeof path, "%s.%d", out, (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f) return;
    long n = nev < MAXEV ? nev : MAXEV;
    for (long i = 0; i < n; i++)
        fprintf(f, "%u %u %llu %llu %lld\n", evs[i].what, evs[i].tid, (unsigned long long)evs[i].t0,
                (unsigned long long)evs[i].t1, (long long)evs[i].arg);
    fclose(f);
}

#define FWD(name, id, argexpr)                                                              \
    long name(long a, long b, long c, long d, long e, long f, long g, long h) {             \
        static fn8 p;                                                                       \
        if (!p) p = (fn8)sym(#name);                                                        \
        uint64_t t0 = now();                                                                \
        long r = p(a, b, c, d, e, f, g, h);                                                 \
        if (id) rec(id, t0, now(), (argexpr));                                              \
        return r;                                                                           \
    }

// ids: 1 DecodePicture (arg CurrPicIdx), 2 Map (arg picture index), 3 Unmap, 4 ParseVideoData (arg payload
// size), 5 GetDecodeStatus, 6 CreateDecoder, 7 DestroyDecoder, 8 Reconfigure, 9 CreateParser, 10 DestroyParser
FWD(cuvidDecodePicture, 1, b ? ((int *)b)[2] : -1)
FWD(cuvidMapVideoFrame64, 2, b)
FWD(cuvidMapVideoFrame, 2, b)
FWD(cuvidUnmapVideoFrame64, 3, 0)
FWD(cuvidUnmapVideoFrame, 3, 0)
FWD(cuvidParseVideoData, 4, b ? (long)((unsigned long *)b)[1] : -1)
FWD(cuvidGetDecodeStatus, 5, b)
FWD(cuvidCreateDecoder, 6, 0)
FWD(cuvidDestroyDecoder, 7, 0)
FWD(cuvidReconfigureDecoder, 8, 0)
FWD(cuvidCreateVideoParser, 9, 0)
FWD(cuvidDestroyVideoParser, 10, 0)
FWD(cuvidGetDecoderCaps, 0, 0)
FWD(cuvidCtxLockCreate, 0, 0)
FWD(cuvidCtxLockDestroy, 0, 0)
FWD(cuvidCtxLock, 0, 0)
FWD(cuvidCtxUnlock, 0, 0)
FWD(cuvidCreateVideoSource, 0, 0)
FWD(cuvidCreateVideoSourceW, 0, 0)
FWD(cuvidDestroyVideoSource, 0, 0)
FWD(cuvidSetVideoSourceState, 0, 0)
FWD(cuvidGetVideoSourceState, 0, 0)
FWD(cuvidGetSourceVideoFormat, 0, 0)
FWD(cuvidGetSourceAudioFormat, 0, 0)
