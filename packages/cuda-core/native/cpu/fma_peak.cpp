// FMA throughput probe: per thread, rounds of a loop over independent accumulator chains, so
// that the FMA units (not the 4-cycle latency of one chain) set the pace. Enough chains to
// cover latency x units on every current x86 core (4 x 2 = 8 in flight), with the loop
// overhead (one add, compare and branch per round of chains) hidden behind the FMAs.
#include "fma_peak.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>

#include "../core/error.h"
#include "../core/thread_pool.h"
#include "gemm.h"
#include "kernel_util.h"

namespace lrface::cpu {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kIterations = 1 << 14;  // per round: ~0.2-0.4 ms at full speed

// acc = acc * m + a on every chain: m slightly below 1 and a small keep the values bounded
// and normal forever (denormals would slow some cores down).
LR_AVX512 float rounds_avx512(int64_t iterations, float m, float a) {
  constexpr int C = 24;  // 24 accumulators + 2 operands of 32 zmm registers
  __m512 acc[C];
#pragma GCC unroll 32
  for (int c = 0; c < C; ++c) acc[c] = _mm512_set1_ps(float(c));
  const __m512 vm = _mm512_set1_ps(m), va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 32
    for (int c = 0; c < C; ++c) {
      acc[c] = _mm512_fmadd_ps(acc[c], vm, va);
      asm("" : "+v"(acc[c]));  // in registers, chain after chain (no loop interchange through memory)
    }
  __m512 s = acc[0];
#pragma GCC unroll 32
  for (int c = 1; c < C; ++c) s = _mm512_add_ps(s, acc[c]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float r = 0.0f;
  for (float v : lanes) r += v;
  return r;
}

LR_AVX2 float rounds_avx2(int64_t iterations, float m, float a) {
  constexpr int C = 12;  // 12 accumulators + 2 operands of 16 ymm registers
  __m256 acc[C];
#pragma GCC unroll 32
  for (int c = 0; c < C; ++c) acc[c] = _mm256_set1_ps(float(c));
  const __m256 vm = _mm256_set1_ps(m), va = _mm256_set1_ps(a);
  for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 32
    for (int c = 0; c < C; ++c) {
      acc[c] = _mm256_fmadd_ps(acc[c], vm, va);
      asm("" : "+v"(acc[c]));  // in registers, chain after chain (no loop interchange through memory)
    }
  __m256 s = acc[0];
#pragma GCC unroll 32
  for (int c = 1; c < C; ++c) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float r = 0.0f;
  for (float v : lanes) r += v;
  return r;
}

// Baseline x86-64: SSE has no FMA, so a multiply and an add per lane (2 FLOP, as one FMA).
float rounds_sse(int64_t iterations, float m, float a) {
  constexpr int C = 12;
  __m128 acc[C];
#pragma GCC unroll 32
  for (int c = 0; c < C; ++c) acc[c] = _mm_set1_ps(float(c));
  const __m128 vm = _mm_set1_ps(m), va = _mm_set1_ps(a);
  for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 32
    for (int c = 0; c < C; ++c) {
      acc[c] = _mm_add_ps(_mm_mul_ps(acc[c], vm), va);
      asm("" : "+v"(acc[c]));  // in registers, chain after chain (no loop interchange through memory)
    }
  __m128 s = acc[0];
#pragma GCC unroll 32
  for (int c = 1; c < C; ++c) s = _mm_add_ps(s, acc[c]);
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

}  // namespace

FmaPeak measure_fma_peak(int threads, double seconds) {
  LR_CHECK(threads >= 1 && threads <= num_threads(), Range, "measureFmaPeak: 'threads' must be in [1, ", num_threads(),
           "] (the pool's size), got ", threads);
  LR_CHECK(seconds > 0.0 && seconds <= 60.0, Range, "measureFmaPeak: the duration must be in (0, 60] s, got ", seconds);
  const std::string isa = gemm_isa();
  using RoundFn = float (*)(int64_t, float, float);
  RoundFn round = rounds_sse;
  FmaPeak out{"scalar", 4, 12, {}};
  if (isa == "avx512") {
    round = rounds_avx512;
    out = FmaPeak{"avx512", 16, 24, {}};
  } else if (isa == "avx2") {
    round = rounds_avx2;
    out = FmaPeak{"avx2", 8, 12, {}};
  }
  const double flops_per_round = double(kIterations) * out.chains * out.lanes * 2.0;
  out.flops_per_thread.assign(threads, 0.0);
  std::atomic<float> sink{0.0f};
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  // One chunk per thread, held until every chunk has started: a thread that waits for the
  // others cannot claim a second chunk, so `threads` threads run the rounds at once.
  std::atomic<int64_t> started{0};
  parallel_for(threads, 1, [&](int64_t lo, int64_t hi) {
    started.fetch_add(hi - lo);
    while (started.load() < threads) _mm_pause();
    for (int64_t t = lo; t < hi; ++t) {
      double best = 0.0;
      float acc = 0.0f;
      int rounds = 0;
      // At least three rounds: the first warms the core up (AVX-512 licence, clock ramp).
      while (rounds < 3 || Clock::now() < deadline) {
        const auto t0 = Clock::now();
        acc += round(kIterations, 0.999999f, 1e-6f);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (rounds > 0 && s > 0.0) best = std::max(best, flops_per_round / s);
        ++rounds;
      }
      out.flops_per_thread[t] = best;
      sink.store(acc, std::memory_order_relaxed);  // keeps the loops from being optimised away
    }
  });
  return out;
}

}  // namespace lrface::cpu
