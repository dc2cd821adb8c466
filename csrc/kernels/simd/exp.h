// exp over any fp32 SIMD traits type S (see avx2.h, avx512.h).
#pragma once

namespace sparsecpu {
namespace {

// exp(x) = 2^n · exp(r), n = round(x / ln 2), |r| <= ln 2 / 2, exp(r) by a
// degree-6 Taylor polynomial (relative error < 2e-7 before rounding).
// Inputs are clamped to [-87.3, 88.3]: below, the result is ~1e-38, not 0.
// NaN stays NaN (max/min return their second operand when either is NaN).
template <class S>
inline typename S::V exp(typename S::V x) {
  using V = typename S::V;
  x = S::min(S::set1(88.3f), S::max(S::set1(-87.3f), x));
  const V n = S::round(S::mul(x, S::set1(1.44269504088896341f)));
  // r = x - n ln 2, with ln 2 split so n · ln2_hi is exact.
  V r = S::fma(n, S::set1(-0.693145751953125f), x);
  r = S::fma(n, S::set1(-1.428606765330187e-06f), r);
  V p = S::set1(1.0f / 720.0f);
  p = S::fma(p, r, S::set1(1.0f / 120.0f));
  p = S::fma(p, r, S::set1(1.0f / 24.0f));
  p = S::fma(p, r, S::set1(1.0f / 6.0f));
  p = S::fma(p, r, S::set1(0.5f));
  p = S::fma(p, r, S::set1(1.0f));
  p = S::fma(p, r, S::set1(1.0f));
  return S::scale_pow2(p, n);
}

}  // namespace
}  // namespace sparsecpu
