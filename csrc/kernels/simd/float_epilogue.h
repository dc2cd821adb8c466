// The float epilogue on vectors of channels, over any fp32 SIMD traits type S
// (see avx2.h, avx512.h): the last step of the fp32 and bf16 kernel families,
// which both write a FloatOutput (kernels/epilogue.h).
#pragma once

#include <cstdint>

#include "kernels/epilogue.h"
#include "kernels/simd/activation.h"

namespace sparsecpu {
namespace {

// The bias of `lanes` channels from c0; zero without one.
template <class S>
[[gnu::always_inline]] inline typename S::V load_bias(const Epilogue& e, int64_t c0, int lanes) {
  return e.bias ? S::load_partial(e.bias + c0, lanes) : S::zero();
}

// `lanes` channels from c0 of one token, bias and activation already applied:
// + residual -> y.
template <class S>
[[gnu::always_inline]] inline void store_float_channels(const FloatOutput& out, typename S::V v, int64_t token,
                                                        int64_t c0, int lanes) {
  const Epilogue& e = out.epilogue;
  if (e.residual) v = S::add(v, S::load_partial(e.residual + token * e.ld_residual + c0, lanes));
  S::store_partial(out.y + token * out.ldy + c0, v, lanes);
}

}  // namespace
}  // namespace sparsecpu
