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
// and normal forever (denormals would slow some cores down). C chains of VW lanes; inlined into
// each ISA's wrapper, where the multiply-add is one FMA (AVX-512, AVX2) or a multiply and an add
// (baseline SSE has no FMA: 2 FLOP per lane all the same).
template <int VW, int C>
LR_INLINE float rounds(int64_t iterations, float m, float a) {
  using V = typename kernel::Vec<VW>::V;
  V acc[C];
#pragma GCC unroll 32
  for (int c = 0; c < C; ++c) acc[c] = V{} + float(c);
  const V vm = V{} + m, va = V{} + a;
  for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 32
    for (int c = 0; c < C; ++c) {
      acc[c] = acc[c] * vm + va;
      asm("" : "+v"(acc[c]));  // in registers, chain after chain (no loop interchange through memory)
    }
  V s = acc[0];
#pragma GCC unroll 32
  for (int c = 1; c < C; ++c) s += acc[c];
  float r = 0.0f;
  for (int l = 0; l < VW; ++l) r += s[l];
  return r;
}

// Lanes and chains per ISA: accumulators + 2 operands fill the register file (32 zmm, 16 ymm/xmm).
constexpr int kLanesAvx512 = 16, kChainsAvx512 = 24;
constexpr int kLanesAvx2 = 8, kChainsAvx2 = 12;
constexpr int kLanesSse = 4, kChainsSse = 12;
LR_AVX512 float rounds_avx512(int64_t iterations, float m, float a) {
  return rounds<kLanesAvx512, kChainsAvx512>(iterations, m, a);
}
LR_AVX2 float rounds_avx2(int64_t iterations, float m, float a) { return rounds<kLanesAvx2, kChainsAvx2>(iterations, m, a); }
float rounds_sse(int64_t iterations, float m, float a) { return rounds<kLanesSse, kChainsSse>(iterations, m, a); }

}  // namespace

FmaPeak measure_fma_peak(int threads, double seconds) {
  LR_CHECK(threads >= 1 && threads <= num_threads(), Range, "measureFmaPeak: 'threads' must be in [1, ", num_threads(),
           "] (the pool's size), got ", threads);
  LR_CHECK(seconds > 0.0 && seconds <= 60.0, Range, "measureFmaPeak: the duration must be in (0, 60] s, got ", seconds);
  const std::string isa = gemm_isa();
  using RoundFn = float (*)(int64_t, float, float);
  RoundFn round = rounds_sse;
  FmaPeak out{"scalar", kLanesSse, kChainsSse, {}};
  if (isa == "avx512") {
    round = rounds_avx512;
    out = FmaPeak{"avx512", kLanesAvx512, kChainsAvx512, {}};
  } else if (isa == "avx2") {
    round = rounds_avx2;
    out = FmaPeak{"avx2", kLanesAvx2, kChainsAvx2, {}};
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
