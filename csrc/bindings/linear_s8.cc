#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>

#include "bindings/checks.h"
#include "kernels/spmm_s8/spmm_s8.h"
#include "runtime/linear_f32.h"
#include "runtime/linear_s8.h"

namespace py = pybind11;

namespace sparsecpu::bindings {
namespace {

using FloatArray = py::array_t<float, py::array::c_style>;

void check_weight(const py::array& w, const std::optional<FloatArray>& bias) {
  require(w.ndim() == 2, "weight must be 2-D (out_features, in_features), got shape " + shape_text(w));
  if (bias)
    require(bias->ndim() == 1 && bias->shape(0) == w.shape(0),
            "bias must have shape (" + std::to_string(w.shape(0)) + ",), got " + shape_text(*bias));
}

}  // namespace

void bind_linear_s8(py::module_& m) {
  py::class_<SpmmS8Kernel>(m, "SpmmS8Kernel")
      .def_property_readonly("name", [](const SpmmS8Kernel& k) { return std::string(k.name); })
      .def_property_readonly("isa", [](const SpmmS8Kernel& k) { return std::string(isa_name(k.isa)); })
      .def_property_readonly("dense", [](const SpmmS8Kernel& k) { return k.dense; })
      .def_property_readonly("semi24", [](const SpmmS8Kernel& k) { return k.semi24; })
      .def_property_readonly("usable", [](const SpmmS8Kernel& k) { return isa_usable(k.isa); });
  m.def("spmm_s8_kernels", [] {
    py::list out;
    for (const SpmmS8Kernel& k : spmm_s8_kernels()) out.append(py::cast(&k, py::return_value_policy::reference));
    return out;
  }, "The int8 kernel registry, highest ISA level first.");

  py::class_<LinearS8, std::shared_ptr<LinearS8>>(m, "LinearS8")
      .def(py::init([](FloatArray w, std::optional<FloatArray> bias, const std::string& layout, int block_rows, int block_cols,
                       const std::string& activation, const std::string& kernel) {
             check_weight(w, bias);
             const Activation act = activation_from_name(activation);
             const WeightLayout weight_layout = weight_layout_from_name(layout);
             py::gil_scoped_release release;
             return new LinearS8(w.data(), w.shape(0), w.shape(1), bias ? bias->data() : nullptr,
                                 weight_layout, BlockShape{block_rows, block_cols}, act, kernel);
           }),
           py::arg("weight"), py::arg("bias"), py::arg("layout"), py::arg("block_rows"), py::arg("block_cols"),
           py::arg("activation"), py::arg("kernel") = "")
      .def_static(
          "from_int8",
          [](py::array_t<int8_t, py::array::c_style> w, const std::string& layout, int block_rows, int block_cols,
             const std::string& kernel) {
            check_weight(w, std::nullopt);
            const WeightLayout weight_layout = weight_layout_from_name(layout);
            py::gil_scoped_release release;
            return new LinearS8(w.data(), nullptr, w.shape(0), w.shape(1), nullptr, weight_layout,
                                BlockShape{block_rows, block_cols}, Activation::none, kernel);
          },
          py::arg("weight"), py::arg("layout"), py::arg("block_rows"), py::arg("block_cols"), py::arg("kernel") = "",
          "Integer weights as given (scale 1): for exact tests of the int32 accumulators.")
      .def_static(
          "from_quantized",
          [](py::array_t<int8_t, py::array::c_style> w, FloatArray scale, std::optional<FloatArray> bias,
             const std::string& layout, int block_rows, int block_cols, const std::string& activation,
             const std::string& kernel) {
            check_weight(w, bias);
            require(scale.ndim() == 1 && scale.shape(0) == w.shape(0),
                    "scale must have shape (" + std::to_string(w.shape(0)) + ",), got " + shape_text(scale));
            for (py::ssize_t i = 0; i < scale.shape(0); ++i)
              require(std::isfinite(scale.data()[i]) && scale.data()[i] > 0.0f,
                      "scale[" + std::to_string(i) + "] must be a positive finite number, got " +
                          std::to_string(scale.data()[i]));
            const Activation act = activation_from_name(activation);
            const WeightLayout weight_layout = weight_layout_from_name(layout);
            py::gil_scoped_release release;
            return new LinearS8(w.data(), scale.data(), w.shape(0), w.shape(1), bias ? bias->data() : nullptr,
                                weight_layout, BlockShape{block_rows, block_cols}, act, kernel);
          },
          py::arg("weight"), py::arg("scale"), py::arg("bias"), py::arg("layout"), py::arg("block_rows"),
          py::arg("block_cols"), py::arg("activation"), py::arg("kernel") = "",
          "int8 weights with their per-channel scales (W ≈ scale[n] * weight[n]), as a compiled model keeps them.")
      .def("forward", &forward_f32<LinearS8>, py::arg("x"), py::arg("residual") = py::none(), py::arg("threads") = 0)
      .def("forward_s8",
           [](const LinearS8& self, FloatArray x, std::optional<FloatArray> residual, float out_scale, int threads) {
             check_input(x, self.in_features(), residual, self.out_features());
             py::array_t<int8_t> y({static_cast<int64_t>(x.shape(0)), self.out_features()});
             const float* res = residual ? residual->data() : nullptr;
             int8_t* out = y.mutable_data();
             py::gil_scoped_release release;
             self.forward_s8(x.data(), x.shape(0), self.in_features(), res, out_scale, out, threads);
             return y;
           },
           py::arg("x"), py::arg("residual"), py::arg("out_scale"), py::arg("threads") = 0)
      .def("forward_bf16",
           [](const LinearS8& self, FloatArray x, std::optional<FloatArray> residual, int threads) {
             check_input(x, self.in_features(), residual, self.out_features());
             py::array_t<uint16_t> y({static_cast<int64_t>(x.shape(0)), self.out_features()});
             const float* res = residual ? residual->data() : nullptr;
             uint16_t* out = y.mutable_data();
             py::gil_scoped_release release;
             self.forward_bf16(x.data(), x.shape(0), self.in_features(), res, out, threads);
             return y;
           },
           py::arg("x"), py::arg("residual") = py::none(), py::arg("threads") = 0,
           "forward's results as bf16 bit patterns (uint16), rounded as vcvtneps2bf16 rounds.")
      .def("forward_s32",
           [](const LinearS8& self, py::array_t<uint8_t, py::array::c_style> x, int threads) {
             require(x.ndim() == 2 && x.shape(1) == self.in_features(),
                     "input must have shape (tokens, " + std::to_string(self.in_features()) + "), got " +
                         shape_text(x));
             py::array_t<int32_t> y({static_cast<int64_t>(x.shape(0)), self.out_features()});
             int32_t* out = y.mutable_data();
             py::gil_scoped_release release;
             self.forward_s32(x.data(), x.shape(0), out, threads);
             return y;
           },
           py::arg("x"), py::arg("threads") = 0)
      .def_property_readonly("kernel", [](const LinearS8& self) { return std::string(self.kernel().name); })
      .def_property_readonly("out_features", &LinearS8::out_features)
      .def_property_readonly("in_features", &LinearS8::in_features)
      .def_property_readonly("nonzeros", &LinearS8::nonzeros)
      .def_property_readonly("packed_bytes", &LinearS8::packed_bytes);
}

}  // namespace sparsecpu::bindings
