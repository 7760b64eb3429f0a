#pragma once
// Pieces shared by the CPU kernels that are written once with GCC vector extensions and
// compiled per instruction set (AVX-512, AVX2, baseline): fixed-width vectors, shuffle masks,
// an in-register transposition, and aligned scratch buffers kept between calls.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

// Vector values are passed only between always-inlined functions inside one target-attributed
// kernel (an includer's too), so no call crosses the ABI that -Wpsabi warns about.
#pragma GCC diagnostic ignored "-Wpsabi"

#define LR_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define LR_AVX2 __attribute__((target("avx2,fma")))
#define LR_INLINE inline __attribute__((always_inline))

namespace lrface::cpu::kernel {

// c ? a : b by bit masks. Written with ?: a choice between values that are then multiplied or
// summed compiles to a branch (GCC may neither run the unchosen arm's arithmetic, which could
// trap, nor drop a multiply by 1, which NaN makes observable), mispredicted on data with random
// signs, and the loop does not vectorise.
template <typename T>
inline T pick(bool c, T a, T b) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "float or double");
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U ua, ub;
  std::memcpy(&ua, &a, sizeof(T));
  std::memcpy(&ub, &b, sizeof(T));
  const U mask = U(0) - static_cast<U>(c), bits = (ua & mask) | (ub & ~mask);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

struct Scratch {
  float* data = nullptr;
  size_t size = 0;
  // zero: clear newly allocated memory (kept across calls, so only the first time).
  float* get(size_t n, bool zero = false) {
    if (n > size) {
      std::free(data);
      data = static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
      size = data ? n : 0;
      if (!data) throw std::bad_alloc();
      if (zero) std::memset(data, 0, n * sizeof(float));
    }
    return data;
  }
  // Frees a buffer above max floats, so one large problem does not pin its memory.
  void trim(size_t max) {
    if (size > max) {
      std::free(data);
      data = nullptr;
      size = 0;
    }
  }
  ~Scratch() { std::free(data); }
};

template <int VW>
struct Vec {
  typedef float V __attribute__((vector_size(VW * sizeof(float))));
  typedef int32_t I __attribute__((vector_size(VW * sizeof(float))));
};

template <int VW>
LR_INLINE typename Vec<VW>::V vload(const float* p) {
  typename Vec<VW>::V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <int VW>
LR_INLINE void vstore(float* p, typename Vec<VW>::V v) {
  std::memcpy(p, &v, sizeof(v));
}
// The first n (0..VW) floats at p, the other lanes zero: reads nothing past p + n.
template <int VW>
LR_INLINE typename Vec<VW>::V vload_partial(const float* p, int64_t n) {
  typename Vec<VW>::V v{};
  std::memcpy(&v, p, sizeof(float) * n);
  return v;
}
// The first n (0..VW) lanes of v to p: writes nothing past p + n.
template <int VW>
LR_INLINE void vstore_partial(float* p, typename Vec<VW>::V v, int64_t n) {
  std::memcpy(p, &v, sizeof(float) * n);
}

// Shuffle masks over two concatenated vectors (indices 0..2VW-1).
template <int VW>
LR_INLINE typename Vec<VW>::I strided_mask(int start) {  // start, start + 2, ...
  typename Vec<VW>::I m;
  for (int i = 0; i < VW; ++i) m[i] = start + 2 * i;
  return m;
}
template <int VW>
LR_INLINE typename Vec<VW>::I zip_mask(int half) {  // a[h], b[h], a[h+1], b[h+1], ... from lane h = half*VW/2
  typename Vec<VW>::I m;
  for (int i = 0; i < VW / 2; ++i) {
    m[2 * i] = half * VW / 2 + i;
    m[2 * i + 1] = VW + half * VW / 2 + i;
  }
  return m;
}

// v[p] <- column p of the VW x VW matrix whose rows are v[0..VW): log2(VW) rounds of
// interleaving row i with row i + VW/2 (each round rotates the bits of (row, column) by one).
template <int VW>
LR_INLINE void transpose_square(typename Vec<VW>::V* v) {
  using V = typename Vec<VW>::V;
  const auto lo = zip_mask<VW>(0), hi = zip_mask<VW>(1);
  for (int round = 1; round < VW; round *= 2) {
    V t[VW];
    for (int i = 0; i < VW / 2; ++i) {
      t[2 * i] = __builtin_shuffle(v[i], v[i + VW / 2], lo);
      t[2 * i + 1] = __builtin_shuffle(v[i], v[i + VW / 2], hi);
    }
    for (int i = 0; i < VW; ++i) v[i] = t[i];
  }
}

}  // namespace lrface::cpu::kernel
