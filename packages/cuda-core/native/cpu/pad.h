#pragma once
#include <cstdint>

namespace lrface::cpu {

enum class PadMode { Constant = 0, Reflect = 1, Replicate = 2 };

// Pads planes [planes, h, w] by (top, bottom, left, right) into [planes, h+pt+pb, w+pl+pr].
// Constant fills with `value` and accepts negative pads (cropping); reflect mirrors without
// repeating the edge (needs every pad < its axis); replicate repeats the edge.
void pad2d(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, PadMode mode,
           float value, const float* x, float* out);
// The adjoint: gx = 0, then every output position adds its gradient to the element it copied.
void pad2d_backward(int64_t planes, int64_t h, int64_t w, int64_t pt, int64_t pb, int64_t pl, int64_t pr, PadMode mode,
                    const float* gy, float* gx);

}  // namespace lrface::cpu
