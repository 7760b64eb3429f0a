// A fork-join pool shared by every CPU kernel. Sized to the machine unless
// LRFACE_NUM_THREADS or setNumThreads() says otherwise.
#pragma once
#include <cstdint>
#include <functional>

namespace lrface {

int num_threads();
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint chunks of [0, n) from the pool; grain is the
// smallest chunk worth a thread. Up to a few chunks per thread, claimed by whichever thread
// is free (so one thread may run several, in any order). Runs inline when the work is small
// or nested.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace lrface
