#pragma once
#include <algorithm>
#include <cstdint>

#include "../core/thread_pool.h"
#include "host_device.h"

// The generator's functions are shared with the CUDA kernels (dropout on the device draws
// the same numbers as on the CPU).
namespace lrface::cpu {

// Independent counter spaces for one seed. The global generator (manualSeed) draws from
// Generator; a dropout call given its own seed uses Dropout, so it never replays the numbers
// that rand()/randn() produce after manualSeed with the same value.
enum class RandomStream : uint32_t { Generator = 0, Dropout = 1 };

struct Block128 {
  uint32_t w[4];
};

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): 128 random
// bits as a pure function of (counter, key), so any block can be computed by any thread.
LR_HOST_DEVICE inline Block128 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
  }
  return {{c0, c1, c2, c3}};
}

// The generator's stream is a sequence of 32-bit words: word k is word k % 4 of the Philox block
// with counter k / 4 (counter words: block index low, block index high, stream, 0; key: the seed).
// A draw takes 1 word per value (rand, dropout) or 2 (randint, randperm, randn) and starts at a
// multiple of 4 (the front-end aligns its counter), so value i of a draw lives in a known block.
LR_HOST_DEVICE inline Block128 random_block(uint64_t seed, RandomStream stream, uint64_t block) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), static_cast<uint32_t>(stream), 0,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Words (lo, hi) as 64 bits.
LR_HOST_DEVICE inline uint64_t join64(uint32_t lo, uint32_t hi) { return (static_cast<uint64_t>(hi) << 32) | lo; }

// A double in [0, 1) from 32 or from the top 53 of 64 bits (exact in double).
LR_HOST_DEVICE inline double unit32(uint32_t w) { return static_cast<double>(w) * 0x1.0p-32; }
LR_HOST_DEVICE inline double unit64(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// Calls fill(block, first, count) for each block of a draw of n values starting at word `offset`
// (a multiple of 4), `per_block` values per block: values first .. first+count-1 come from `block`.
template <class Fill>
void for_random_blocks(int64_t n, int per_block, uint64_t seed, RandomStream stream, uint64_t offset, Fill&& fill) {
  const int64_t blocks = (n + per_block - 1) / per_block;
  const uint64_t base = offset / 4;
  parallel_for(blocks, std::max<int64_t>(1, 2048 / per_block), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const int64_t first = b * per_block;
      fill(random_block(seed, stream, base + static_cast<uint64_t>(b)), first, std::min<int64_t>(per_block, n - first));
    }
  });
}

// Each kernel fills out[0, n) from the generator stream of `seed`, starting at word `offset`
// (a multiple of 4). Value i depends only on (seed, offset, i): never on the thread count.
// Uniform float32 in [low, high) from 1 word each (high itself never appears, even after rounding).
void random_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, double low, double high);
// Normal float32 from 2 words each: values 2j and 2j+1 are the cos and sin branch of Box-Muller
// on the two 64-bit halves of one block.
void random_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
// Uniform int32 in [low, high) by multiply-shift of 64 random bits (2 words; bias below 2^-32).
void random_int(int32_t* out, int64_t n, uint64_t seed, uint64_t offset, int64_t low, int64_t high);
// A uniform random permutation of 0..n-1: indices ordered by a 64-bit random key each (2 words; ties by index).
void random_permutation(int32_t* out, int64_t n, uint64_t seed, uint64_t offset);

}  // namespace lrface::cpu
