// Activations over any fp32 SIMD traits type S (see avx2.h, avx512.h).
#pragma once

#include <type_traits>

#include "kernels/epilogue.h"

namespace sparsecpu {
namespace {

// Polynomial erf of Abramowitz & Stegun 7.1.28 (|error| < 3e-7, no exp):
// erf(z) = 1 - 1 / (1 + a1 z + ... + a6 z^6)^16 for z >= 0. z is capped at 4,
// where erf is 1 in fp32, so the 16th power stays finite for the reciprocal
// (NaN passes through: min returns its second operand).
template <class S>
inline typename S::V gelu(typename S::V x) {
  using V = typename S::V;
  const V z = S::min(S::set1(4.0f), S::mul(S::abs(x), S::set1(0.70710678118654752f)));
  V p = S::set1(0.0000430638f);
  p = S::fma(p, z, S::set1(0.0002765672f));
  p = S::fma(p, z, S::set1(0.0001520143f));
  p = S::fma(p, z, S::set1(0.0092705272f));
  p = S::fma(p, z, S::set1(0.0422820123f));
  p = S::fma(p, z, S::set1(0.0705230784f));
  p = S::fma(p, z, S::set1(1.0f));
  p = S::mul(p, p);
  p = S::mul(p, p);
  p = S::mul(p, p);
  p = S::mul(p, p);
  const V erf_abs = S::sub(S::set1(1.0f), S::recip(p));
  const V erf = S::copysign(erf_abs, x);
  return S::mul(S::mul(S::set1(0.5f), x), S::add(S::set1(1.0f), erf));
}

template <class S>
inline typename S::V activate(typename S::V v, Activation act) {
  switch (act) {
    case Activation::gelu:
      return gelu<S>(v);
    case Activation::relu:
      return S::max(S::zero(), v);  // max(0, NaN) is NaN: the second operand wins
    case Activation::none:
      break;
  }
  return v;
}

// fn(std::integral_constant<Activation, act>()): a loop over vectors inside fn
// activates with a constant, not a branch per vector.
template <class Fn>
inline void with_activation(Activation act, const Fn& fn) {
  switch (act) {
    case Activation::none: return fn(std::integral_constant<Activation, Activation::none>());
    case Activation::gelu: return fn(std::integral_constant<Activation, Activation::gelu>());
    case Activation::relu: return fn(std::integral_constant<Activation, Activation::relu>());
  }
}

}  // namespace
}  // namespace sparsecpu
