#include <algorithm>

#include "../cpu/fma_peak.h"
#include "../cpu/gemm.h"
#include "binding.h"
#ifdef LRFACE_WITH_CUDA
#include "../cuda/libs/dispatch.h"
#endif

namespace lrface {

// matmul(out, oOff, a, aOff, b, bOff, bias|null, biasOff, [M, N, K], transA, transB, aOffsets, bOffsets)
// out[batch] (M x N, contiguous) = op(a at aOff + aOffsets[batch]) @ op(b at bOff + bOffsets[batch]) + bias[N].
// op(a) = a^T when transA (a stored K x M); op(b) = b^T when transB (b stored N x K).
LRFACE_BINDING(matmul) {
  auto dims = a.ints(8);
  LR_CHECK(dims.size() == 3 && dims[0] >= 0 && dims[1] >= 0 && dims[2] >= 0, Range, "matmul: bad [M, N, K]");
  const int64_t m = dims[0], n = dims[1], k = dims[2];
  int64_t mk, kn, mn;
  LR_CHECK(!__builtin_mul_overflow(m, k, &mk) && !__builtin_mul_overflow(k, n, &kn) && !__builtin_mul_overflow(m, n, &mn),
           Range, "matmul: sizes overflow");
  const bool ta = a.boolean(9), tb = a.boolean(10);
  auto aoffs = a.ints(11), boffs = a.ints(12);
  LR_CHECK(aoffs.size() == boffs.size(), Range, "matmul: batch offset lists differ in length");
  const int64_t batch = static_cast<int64_t>(aoffs.size());
  int64_t amax = 0, bmax = 0;
  for (int64_t i = 0; i < batch; ++i) {
    int64_t aend, bend;
    LR_CHECK(aoffs[i] >= 0 && boffs[i] >= 0, Range, "matmul: negative batch offset");
    LR_CHECK(!__builtin_add_overflow(aoffs[i], mk, &aend) && !__builtin_add_overflow(boffs[i], kn, &bend), Range,
             "matmul: batch offset overflows");
    amax = std::max(amax, aend);
    bmax = std::max(bmax, bend);
  }
  int64_t out_numel;
  LR_CHECK(!__builtin_mul_overflow(batch, mn, &out_numel), Range, "matmul: sizes overflow");
#ifdef LRFACE_WITH_CUDA
  if (int dev = a.device_of(0); dev != Storage::kHost)
    return cuda::matmul(dev, ta, tb, m, n, k, a.dev_f32(2, amax, dev), aoffs.data(), a.dev_f32(4, bmax, dev),
                        boffs.data(), a.is_null(6) ? nullptr : a.dev_f32(6, n, dev), a.dev_f32(0, out_numel, dev),
                        batch);
#endif
  float* out = a.f32(0, out_numel);
  const float* pa = a.f32(2, amax);
  const float* pb = a.f32(4, bmax);
  const float* bias = a.is_null(6) ? nullptr : a.f32(6, n);
  if (bias)
    for (int64_t i = 0; i < batch * m; ++i) std::copy(bias, bias + n, out + i * n);
  const float beta = bias ? 1.0f : 0.0f;
  if (batch == 1)
    cpu::sgemm(ta, tb, m, n, k, 1.0f, pa + aoffs[0], ta ? m : k, pb + boffs[0], tb ? k : n, beta, out, n);
  else
    cpu::sgemm_batched(ta, tb, m, n, k, 1.0f, pa, ta ? m : k, aoffs.data(), pb, tb ? k : n, boffs.data(), beta, out, n,
                       mn, batch);
}

// gemm_isa() -> "avx512" | "avx2" | "scalar": the micro-kernel in use.
LRFACE_QUERY(gemm_isa) { return Napi::String::New(info.Env(), cpu::gemm_isa()); }

// gemm_stored_a_count() -> how many products have run with A read in place, unpacked (tests).
LRFACE_COUNTER_QUERY(gemm_stored_a_count)

// gemm_use_isa(name) -> whether this CPU has it; switches every GEMM and conv kernel (tests).
LRFACE_QUERY(gemm_use_isa) {
  const std::string name = a.str(0);
  LR_CHECK(name == "avx512" || name == "avx2" || name == "scalar" || name == "auto", Range,
           "gemm_use_isa: unknown instruction set ", name);
  return Napi::Boolean::New(info.Env(), cpu::gemm_use_isa(name.c_str()));
}

// fma_peak(threads, seconds) -> {isa, lanes, chains, flopsPerThread: number[]}: measured FMA
// throughput of `threads` pool threads running at once (see cpu/fma_peak.h).
LRFACE_QUERY(fma_peak) {
  const cpu::FmaPeak p = cpu::measure_fma_peak(static_cast<int>(a.i64(0)), a.f64(1));
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("isa", p.isa);
  out.Set("lanes", p.lanes);
  out.Set("chains", p.chains);
  Napi::Array per = Napi::Array::New(env, p.flops_per_thread.size());
  for (size_t i = 0; i < p.flops_per_thread.size(); ++i) per.Set(static_cast<uint32_t>(i), p.flops_per_thread[i]);
  out.Set("flopsPerThread", per);
  return out;
}

}  // namespace lrface
