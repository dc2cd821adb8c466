// Argument checks at the binding boundary: bad input becomes a Python
// ValueError naming what was expected and what came.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace sparsecpu::bindings {

inline std::string shape_text(const pybind11::array& a) {
  std::string s = "(";
  for (pybind11::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline void require(bool ok, const std::string& message) {
  if (!ok) throw pybind11::value_error(message);
}

// x must be (m, in_features); residual, if given, (m, out_features).
template <class Residual>
void check_input(const pybind11::array& x, int64_t in_features, const Residual& residual, int64_t out_features) {
  require(x.ndim() == 2 && x.shape(1) == in_features,
          "input must have shape (..., " + std::to_string(in_features) + "), got " + shape_text(x));
  if (residual) {
    require(residual->ndim() == 2 && residual->shape(0) == x.shape(0) && residual->shape(1) == out_features,
            "residual must have shape (" + std::to_string(x.shape(0)) + ", " + std::to_string(out_features) +
                "), got " + shape_text(*residual));
  }
}

}  // namespace sparsecpu::bindings
