// Measured fp32 FMA throughput of this machine, for reporting kernel speed as a share of
// what the cores can really do (the advertised instruction set says nothing about how wide
// the FMA units are: Zen 4 runs AVX-512 on 256-bit units, Intel server cores on 512-bit ones).
#pragma once
#include <vector>

namespace lrface::cpu {

struct FmaPeak {
  const char* isa;    // the instruction set of the loop: the GEMM's ("avx512", "avx2", "scalar")
  int lanes;          // fp32 lanes per FMA instruction (scalar: 4-lane SSE multiply + add)
  int chains;         // independent accumulator chains per thread
  std::vector<double> flops_per_thread;  // FLOP/s of each thread's fastest round
};

// Runs `threads` pool threads at once (threads <= num_threads()), each repeating rounds of
// independent FMA chains at the GEMM's instruction set for about `seconds`, and reports each
// thread's fastest round (the one least disturbed by other processes). 2 FLOP per lane per FMA.
FmaPeak measure_fma_peak(int threads, double seconds);

}  // namespace lrface::cpu
