// Host emulation of vidloader's CUDA conversion kernels (src/cuda/kernels/convert.cu), used by a unit test
// on machines without a GPU: the kernel source is compiled as plain C++ with the CUDA built-ins below, run over a
// simulated grid, and compared with straightforward CPU implementations (independent indexing) of the documented
// maths. Built with -ffp-contract=off so float operations round like the kernels' _rn intrinsics.
#include <cstdint>
#include <cstring>
#include <cmath>
#include <algorithm>
#define __device__
#define __global__
#define __forceinline__ inline
struct dim3_ { int x, y, z; };
static dim3_ blockIdx, threadIdx, blockDim;
static inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
static inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
static inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
static inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
static inline unsigned int __float_as_uint(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }
// Software f32 -> f16, round to nearest even (stands in for the kernel's cvt.rn.f16.f32).
static inline unsigned short host_f16(float f) {
    unsigned int x = __float_as_uint(f), sign = (x >> 16) & 0x8000, man = x & 0x7fffff;
    int e8 = (x >> 23) & 0xff, exp = e8 - 127 + 15;
    if (e8 == 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
    if (exp >= 31) return sign | 0x7c00;
    if (exp <= 0) {
        if (exp < -10) return sign;
        man |= 0x800000;
        int shift = 14 - exp;
        unsigned int r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return sign | r;
    }
    unsigned int r = ((unsigned int)exp << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return sign | r;
}
#include "kernels.inc"
#include <cstdio>
#include <vector>
#include <random>
#include <cassert>

template <class F> void run(int w, int h, F f) {
    blockDim = {32, 8, 1};
    for (int by = 0; by < (h + 7) / 8; ++by) for (int bx = 0; bx < (w + 31) / 32; ++bx)
        for (int ty = 0; ty < 8; ++ty) for (int tx = 0; tx < 32; ++tx) {
            blockIdx = {bx, by, 0}; threadIdx = {tx, ty, 0}; f();
        }
}

// reference: planar yuv (420 or 444), samples as ints
struct Planar { int w, h, cw, ch; std::vector<int> y, u, v; };
static Planar from_raw(const uint8_t* d, int w, int h, bool sub, bool wide) {
    Planar p{w, h, sub ? (w + 1) / 2 : w, sub ? (h + 1) / 2 : h};
    auto rd = [&](size_t i) { return wide ? (int)(d[2 * i] | (d[2 * i + 1] << 8)) : (int)d[i]; };
    size_t ys = (size_t)w * h, cs = (size_t)p.cw * p.ch;
    for (size_t i = 0; i < ys; ++i) p.y.push_back(rd(i));
    for (size_t i = 0; i < cs; ++i) p.u.push_back(rd(ys + i));
    for (size_t i = 0; i < cs; ++i) p.v.push_back(rd(ys + cs + i));
    return p;
}
// Build an NVDEC-layout surface (format 0..3) with the picture at (left, top) inside sw x sh, pitch.
static std::vector<uint8_t> surface(const Planar& p, int fmt, int shift, int sw, int sh, int pitch, int left, int top) {
    int hr = (sh + 1) & ~1; bool sub = fmt <= 1; int bps = (fmt == 1 || fmt == 3) ? 2 : 1;
    size_t total = sub ? (size_t)pitch * hr * 3 / 2 : (size_t)pitch * hr * 3;
    std::vector<uint8_t> s(total, 0xAB);
    auto put = [&](size_t off, int v) { if (bps == 1) s[off] = (uint8_t)v; else { int c = v << shift; s[off] = c & 255; s[off + 1] = c >> 8; } };
    for (int y = 0; y < p.h; ++y) for (int x = 0; x < p.w; ++x) put((size_t)(top + y) * pitch + (left + x) * bps, p.y[y * p.w + x]);
    size_t plane = (size_t)pitch * hr;
    for (int y = 0; y < p.ch; ++y) for (int x = 0; x < p.cw; ++x) {
        int u = p.u[y * p.cw + x], v = p.v[y * p.cw + x];
        if (sub) { size_t o = plane + (size_t)(top / 2 + y) * pitch + (left / 2 + x) * 2 * bps; put(o, u); put(o + bps, v); }
        else { size_t o = (size_t)(top + y) * pitch + (left + x) * bps; put(plane + o, u); put(2 * plane + o, v); }
    }
    return s;
}
static Src make_src(const std::vector<uint8_t>& s, int fmt, int bitdepth, int sh, int pitch, int left, int top, int w, int h) {
    bool sub = fmt <= 1; int bps = (fmt == 1 || fmt == 3) ? 2 : 1;
    u64 base = (u64)s.data(); u64 plane = (u64)pitch * ((sh + 1) & ~1);
    Src r{};
    r.luma = base + (u64)top * pitch + (u64)left * bps;
    if (sub) { r.chroma = base + plane + (u64)(top / 2) * pitch + (u64)(left / 2) * 2 * bps; r.chroma2 = 0; }
    else { r.chroma = base + plane + (u64)top * pitch + (u64)left * bps; r.chroma2 = base + 2 * plane + (u64)top * pitch + (u64)left * bps; }
    r.pitch = pitch; r.width = w; r.height = h; r.format = fmt; r.shift = bps == 2 ? 16 - bitdepth : 0;
    return r;
}
static void cpu_rgb(const Planar& p, bool sub, const Color& k, int x, int y, float out[3]) {
    int ci = sub ? (y / 2) * p.cw + x / 2 : y * p.cw + x;
    float Y = p.y[y * p.w + x], U = p.u[ci], V = p.v[ci];
    float yy = (Y - k.y_off) * k.y_scale, cb = (U - k.c_off) * k.c_scale, cr = (V - k.c_off) * k.c_scale;
    float r = yy + k.cr_r * cr, g = yy - k.cb_g * cb - k.cr_g * cr, b = yy + k.cb_b * cb;
    float v3[3] = {r, g, b};
    for (int i = 0; i < 3; ++i) out[i] = std::min(std::max(std::floor(v3[i] + 0.5f), 0.f), 255.f);
}
static Color color(int bd, bool full, double kr, double kb) {
    double s = 1 << (bd - 8), kg = 1 - kr - kb;
    Color c;
    if (full) { double m = (1 << bd) - 1; c.y_off = 0; c.y_scale = 255 / m; c.c_scale = 255 / m; }
    else { c.y_off = 16 * s; c.y_scale = 255 / (219 * s); c.c_scale = 255 / (224 * s); }
    c.c_off = 128 * s; c.cr_r = 2 * (1 - kr); c.cb_g = 2 * kb * (1 - kb) / kg; c.cr_g = 2 * kr * (1 - kr) / kg; c.cb_b = 2 * (1 - kb);
    return c;
}

static int check_case(const char* name, const Planar& p, int fmt, int bd, const std::vector<uint8_t>& want_native) {
    int fails = 0; bool sub = fmt <= 1; int bps = (fmt == 1 || fmt == 3) ? 2 : 1;
    int left = 2, top = 4, sw = p.w + 6, sh = p.h + 10, pitch = ((sw * bps) + 255) / 256 * 256;
    auto surf = surface(p, fmt, bps == 2 ? 16 - bd : 0, sw, sh, pitch, left, top);
    Src s = make_src(surf, fmt, bd, sh, pitch, left, top, p.w, p.h);
    // native
    std::vector<uint8_t> out(want_native.size() + 16, 0xEE);
    run(p.w, p.h, [&] { vl_native(s, (u64)out.data()); });
    if (memcmp(out.data(), want_native.data(), want_native.size()) != 0) { printf("%s: NATIVE mismatch\n", name); fails++; }
    for (size_t i = want_native.size(); i < out.size(); ++i) if (out[i] != 0xEE) { printf("%s: NATIVE wrote past the end\n", name); fails++; break; }
    // rgb u8, HWC and CHW with padding strides
    Color k = color(bd, false, 0.2126, 0.0722);
    for (int planar = 0; planar < 2; ++planar) {
        int W = p.w, H = p.h; int rowpad = 8;
        std::vector<uint8_t> o(3 * (W + rowpad) * H + 64, 0xEE);
        Dst d; d.ptr = (u64)o.data(); d.width = W; d.height = H;
        if (planar) { d.sc = (i64)(W + rowpad) * H; d.sy = W + rowpad; d.sx = 1; } else { d.sc = 1; d.sy = 3 * (W + rowpad); d.sx = 3; }
        Norm n{0, 1.f, {0, 0, 0}, {1, 1, 1}};
        run(W, H, [&] { vl_rgb_u8(s, k, d, n); });
        int bad = 0;
        for (int y = 0; y < H; ++y) for (int x = 0; x < W; ++x) { float ref[3]; cpu_rgb(p, sub, k, x, y, ref);
            for (int c = 0; c < 3; ++c) if (o[c * d.sc + y * d.sy + x * d.sx] != (uint8_t)ref[c]) bad++; }
        if (bad) { printf("%s: RGB %s mismatches %d\n", name, planar ? "CHW" : "HWC", bad); fails++; }
    }
    // resize to 0.7x and 1.3x, f32 normalized, against a direct bilinear on the CPU RGB
    for (double f : {0.7, 1.3}) {
        int W = (int)(p.w * f), H = (int)(p.h * f);
        std::vector<float> o(3 * W * H);
        Dst d{(u64)o.data(), (i64)W * H, W, 1, W, H};
        Norm n{1, 1.f / 255, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
        run(W, H, [&] { vl_rgb_f32(s, k, d, n); });
        auto idx = [](int dst, int in, int out, int& i0, int& i1, float& l0, float& l1) {
            float scale = (float)in / out; float src = scale * (dst + 0.5f) - 0.5f; if (src < 0) src = 0;
            i0 = std::min((int)src, in - 1); i1 = i0 + (i0 < in - 1); l1 = src - i0; l0 = 1 - l1; };
        double worst = 0;
        for (int y = 0; y < H; ++y) for (int x = 0; x < W; ++x) {
            int x0, x1, y0, y1; float wx0, wx1, wy0, wy1;
            idx(x, p.w, W, x0, x1, wx0, wx1); idx(y, p.h, H, y0, y1, wy0, wy1);
            float a[3], b[3], c[3], e[3];
            cpu_rgb(p, sub, k, x0, y0, a); cpu_rgb(p, sub, k, x1, y0, b); cpu_rgb(p, sub, k, x0, y1, c); cpu_rgb(p, sub, k, x1, y1, e);
            for (int ch = 0; ch < 3; ++ch) {
                float v = wy0 * (wx0 * a[ch] + wx1 * b[ch]) + wy1 * (wx0 * c[ch] + wx1 * e[ch]);
                float want = (v * n.scale - n.mean[ch]) / n.stdv[ch];
                worst = std::max(worst, (double)std::fabs(o[ch * W * H + y * W + x] - want));
            }
        }
        if (worst > 1e-4) { printf("%s: resize %.1f worst %g\n", name, f, worst); fails++; }
    }
    printf("%s: %s\n", name, fails ? "FAIL" : "ok");
    return fails;
}

int main() {
    int fails = 0;
    std::mt19937 rng(1);
    for (int fmt : {0, 1, 2, 3}) for (auto wh : {std::pair<int,int>{33, 17}, {64, 48}, {320, 180}}) {
        int w = wh.first, h = wh.second; bool sub = fmt <= 1; bool wide = fmt == 1 || fmt == 3;
        for (int bd : {8, 10, 12}) {
            if (!wide && bd != 8) continue;
            if (wide && bd == 8) continue;
            int cw = sub ? (w + 1) / 2 : w, ch = sub ? (h + 1) / 2 : h; size_t cnt = (size_t)w * h + 2 * cw * ch;
            std::vector<uint8_t> raw(cnt * (wide ? 2 : 1));
            for (size_t i = 0; i < cnt; ++i) {
                int v = rng() % (1 << bd);
                if (wide) { raw[2 * i] = v & 255; raw[2 * i + 1] = v >> 8; } else raw[i] = v;
            }
            char name[64]; snprintf(name, 64, "format %d %dx%d %d-bit", fmt, w, h, bd);
            fails += check_case(name, from_raw(raw.data(), w, h, sub, wide), fmt, bd, raw);
        }
    }
    // bf16 rounding is kernel code: ties go to even.
    unsigned short b1 = OutBF16::cvt(1.0f), b2 = OutBF16::cvt(-2.5f), b3 = OutBF16::cvt(1.00390625f),
                   b4 = OutBF16::cvt(1.01171875f), h1 = OutF16::cvt(-0.1f);
    if (b1 != 0x3F80 || b2 != 0xC020 || b3 != 0x3F80 || b4 != 0x3F82 || h1 != 0xAE66) {
        printf("half conversions wrong %x %x %x %x %x\n", b1, b2, b3, b4, h1);
        fails++;
    }
    printf(fails ? "FAILED\n" : "ALL OK\n");
    return fails != 0;
}
