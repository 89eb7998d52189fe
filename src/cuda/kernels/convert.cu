// vidloader conversion kernels. The RGB maths uses explicit round-to-nearest intrinsics (and the module is
// compiled with --fmad=false) so that it is bit-identical to the CPU formula in vidloader's color.rs.
typedef unsigned long long u64;
typedef long long i64;

struct Src {
    u64 luma;      // Y at the visible origin
    u64 chroma;    // 4:2:0: interleaved CbCr at the visible origin; 4:4:4: U plane
    u64 chroma2;   // 4:4:4: V plane
    int pitch;     // bytes per row, all planes
    int width;     // visible width
    int height;    // visible height
    int format;    // 0 NV12, 1 P016, 2 YUV444, 3 YUV444_16Bit
    int shift;     // right shift of 16-bit containers (16 - bit depth), 0 for 8-bit
    int pad_;
};
struct Color { float y_off, y_scale, c_off, c_scale, cr_r, cb_g, cr_g, cb_b; };
struct Dst { u64 ptr; i64 sc, sy, sx; int width; int height; };
struct Norm { int enabled; float scale; float mean[3]; float stdv[3]; };

static_assert(sizeof(Src) == 48, "Src layout");
static_assert(sizeof(Color) == 32, "Color layout");
static_assert(sizeof(Dst) == 40, "Dst layout");
static_assert(sizeof(Norm) == 32, "Norm layout");

__device__ __forceinline__ void load_yuv(const Src& s, int x, int y, float& Y, float& U, float& V) {
    const unsigned char* l = (const unsigned char*)s.luma + (i64)y * s.pitch;
    switch (s.format) {
    case 0: {
        const unsigned char* c = (const unsigned char*)s.chroma + (i64)(y >> 1) * s.pitch + (i64)(x >> 1) * 2;
        Y = (float)l[x]; U = (float)c[0]; V = (float)c[1];
        break;
    }
    case 1: {
        const unsigned short* c =
            (const unsigned short*)((const unsigned char*)s.chroma + (i64)(y >> 1) * s.pitch) + (i64)(x >> 1) * 2;
        Y = (float)(((const unsigned short*)l)[x] >> s.shift);
        U = (float)(c[0] >> s.shift); V = (float)(c[1] >> s.shift);
        break;
    }
    case 2: {
        const unsigned char* u = (const unsigned char*)s.chroma + (i64)y * s.pitch;
        const unsigned char* v = (const unsigned char*)s.chroma2 + (i64)y * s.pitch;
        Y = (float)l[x]; U = (float)u[x]; V = (float)v[x];
        break;
    }
    default: {
        const unsigned short* u = (const unsigned short*)((const unsigned char*)s.chroma + (i64)y * s.pitch);
        const unsigned short* v = (const unsigned short*)((const unsigned char*)s.chroma2 + (i64)y * s.pitch);
        Y = (float)(((const unsigned short*)l)[x] >> s.shift);
        U = (float)(u[x] >> s.shift); V = (float)(v[x] >> s.shift);
        break;
    }
    }
}

// round half up, clamp to 0..255 (the CPU does (v + 0.5).clamp(0, 255) as u8: the same value)
__device__ __forceinline__ float q8(float v) { return fminf(fmaxf(floorf(__fadd_rn(v, 0.5f)), 0.0f), 255.0f); }

__device__ __forceinline__ void yuv_rgb(const Color& k, float Y, float U, float V, float& r, float& g, float& b) {
    float y = __fmul_rn(__fsub_rn(Y, k.y_off), k.y_scale);
    float cb = __fmul_rn(__fsub_rn(U, k.c_off), k.c_scale);
    float cr = __fmul_rn(__fsub_rn(V, k.c_off), k.c_scale);
    r = q8(__fadd_rn(y, __fmul_rn(k.cr_r, cr)));
    g = q8(__fsub_rn(__fsub_rn(y, __fmul_rn(k.cb_g, cb)), __fmul_rn(k.cr_g, cr)));
    b = q8(__fadd_rn(y, __fmul_rn(k.cb_b, cb)));
}

__device__ __forceinline__ void rgb_at(const Src& s, const Color& k, int x, int y, float& r, float& g, float& b) {
    float Y, U, V;
    load_yuv(s, x, y, Y, U, V);
    yuv_rgb(k, Y, U, V, r, g, b);
}

struct OutU8 {
    typedef unsigned char T;
    static __device__ __forceinline__ T cvt(float v) { return (unsigned char)q8(v); }
};
struct OutF16 {
    typedef unsigned short T;
    static __device__ __forceinline__ T cvt(float v) {
        unsigned short h;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
        return h;
    }
};
struct OutBF16 {
    typedef unsigned short T;
    static __device__ __forceinline__ T cvt(float v) {
        unsigned int u = __float_as_uint(v);
        if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // quiet NaN
        u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
        return (unsigned short)(u >> 16);
    }
};
struct OutF32 {
    typedef float T;
    static __device__ __forceinline__ T cvt(float v) { return v; }
};

// torch's area_pixel_compute_source_index (align_corners = false) and upsample_bilinear2d weights
__device__ __forceinline__ void src_index(float scale, int dst, int in_size, int& i0, int& i1, float& l0, float& l1) {
    float src = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)dst, 0.5f)), 0.5f);
    if (src < 0.0f) src = 0.0f;
    i0 = (int)src;
    if (i0 > in_size - 1) i0 = in_size - 1;
    i1 = i0 + ((i0 < in_size - 1) ? 1 : 0);
    l1 = __fsub_rn(src, (float)i0);
    l0 = __fsub_rn(1.0f, l1);
}

template <class O>
__device__ __forceinline__ void rgb_kernel(const Src& s, const Color& k, const Dst& d, const Norm& n) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= d.width || y >= d.height) return;
    float v[3];
    if (d.width == s.width && d.height == s.height) {
        rgb_at(s, k, x, y, v[0], v[1], v[2]);
    } else {
        int x0, x1, y0, y1;
        float wx0, wx1, wy0, wy1;
        src_index(__fdiv_rn((float)s.width, (float)d.width), x, s.width, x0, x1, wx0, wx1);
        src_index(__fdiv_rn((float)s.height, (float)d.height), y, s.height, y0, y1, wy0, wy1);
        float a[3], b[3], c[3], e[3];
        rgb_at(s, k, x0, y0, a[0], a[1], a[2]);
        rgb_at(s, k, x1, y0, b[0], b[1], b[2]);
        rgb_at(s, k, x0, y1, c[0], c[1], c[2]);
        rgb_at(s, k, x1, y1, e[0], e[1], e[2]);
        for (int i = 0; i < 3; ++i) {
            float top = __fadd_rn(__fmul_rn(wx0, a[i]), __fmul_rn(wx1, b[i]));
            float bot = __fadd_rn(__fmul_rn(wx0, c[i]), __fmul_rn(wx1, e[i]));
            v[i] = __fadd_rn(__fmul_rn(wy0, top), __fmul_rn(wy1, bot));
        }
    }
    typename O::T* out = (typename O::T*)d.ptr;
    for (int i = 0; i < 3; ++i) {
        float o = v[i];
        if (n.enabled) o = __fdiv_rn(__fsub_rn(__fmul_rn(o, n.scale), n.mean[i]), n.stdv[i]);
        out[(i64)i * d.sc + (i64)y * d.sy + (i64)x * d.sx] = O::cvt(o);
    }
}

extern "C" __global__ void vl_rgb_u8(Src s, Color k, Dst d, Norm n) { rgb_kernel<OutU8>(s, k, d, n); }
extern "C" __global__ void vl_rgb_f16(Src s, Color k, Dst d, Norm n) { rgb_kernel<OutF16>(s, k, d, n); }
extern "C" __global__ void vl_rgb_bf16(Src s, Color k, Dst d, Norm n) { rgb_kernel<OutBF16>(s, k, d, n); }
extern "C" __global__ void vl_rgb_f32(Src s, Color k, Dst d, Norm n) { rgb_kernel<OutF32>(s, k, d, n); }

// NATIVE: packed planes Y (W x H), U, V (ceil(W/2) x ceil(H/2) for 4:2:0), 8-bit bytes or 16-bit LE samples
// holding the real value (container >> shift).
extern "C" __global__ void vl_native(Src s, u64 dst) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= s.width || y >= s.height) return;
    bool sub = s.format <= 1;
    bool wide = (s.format == 1) || (s.format == 3);
    i64 W = s.width, H = s.height;
    i64 cw = sub ? (W + 1) / 2 : W;
    i64 ch = sub ? (H + 1) / 2 : H;
    i64 ysz = W * H, csz = cw * ch;
    const unsigned char* l = (const unsigned char*)s.luma + (i64)y * s.pitch;
    bool has_c = x < cw && y < ch;
    if (!wide) {
        unsigned char* o = (unsigned char*)dst;
        o[(i64)y * W + x] = l[x];
        if (has_c) {
            unsigned char u, v;
            if (sub) {
                const unsigned char* c = (const unsigned char*)s.chroma + (i64)y * s.pitch + (i64)x * 2;
                u = c[0]; v = c[1];
            } else {
                u = ((const unsigned char*)s.chroma + (i64)y * s.pitch)[x];
                v = ((const unsigned char*)s.chroma2 + (i64)y * s.pitch)[x];
            }
            o[ysz + (i64)y * cw + x] = u;
            o[ysz + csz + (i64)y * cw + x] = v;
        }
    } else {
        unsigned short* o = (unsigned short*)dst;
        o[(i64)y * W + x] = ((const unsigned short*)l)[x] >> s.shift;
        if (has_c) {
            unsigned short u, v;
            if (sub) {
                const unsigned short* c =
                    (const unsigned short*)((const unsigned char*)s.chroma + (i64)y * s.pitch) + (i64)x * 2;
                u = c[0]; v = c[1];
            } else {
                u = ((const unsigned short*)((const unsigned char*)s.chroma + (i64)y * s.pitch))[x];
                v = ((const unsigned short*)((const unsigned char*)s.chroma2 + (i64)y * s.pitch))[x];
            }
            o[ysz + (i64)y * cw + x] = u >> s.shift;
            o[ysz + csz + (i64)y * cw + x] = v >> s.shift;
        }
    }
}
