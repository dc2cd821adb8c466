#include "kernels/epilogue.h"

#include <cmath>

namespace sparsecpu {

float apply_activation_ref(float v, Activation act) {
  switch (act) {
    case Activation::gelu:
      return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
    case Activation::relu:
      return v > 0.0f ? v : (v == v ? 0.0f : v);
    case Activation::none:
      break;
  }
  return v;
}

}  // namespace sparsecpu
