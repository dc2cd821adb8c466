// Argument checks at the binding boundary: bad input becomes a Python
// ValueError naming what was expected and what came.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
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

// y = layer.forward(x, residual) for any linear layer with float32 output: inputs checked,
// the GIL released while the kernel runs.
template <class Layer>
pybind11::array_t<float> forward_f32(const Layer& self, const pybind11::array_t<float, pybind11::array::c_style>& x,
                                     const std::optional<pybind11::array_t<float, pybind11::array::c_style>>& residual,
                                     int threads) {
  check_input(x, self.in_features(), residual, self.out_features());
  require(threads >= 0, "threads must be >= 0");
  const int64_t m = x.shape(0);
  pybind11::array_t<float> y({m, static_cast<int64_t>(self.out_features())});
  const float* res = residual ? residual->data() : nullptr;
  float* out = y.mutable_data();
  {
    pybind11::gil_scoped_release release;
    self.forward(x.data(), m, self.in_features(), res, out, threads);
  }
  return y;
}

}  // namespace sparsecpu::bindings
