#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings/checks.h"
#include "kernels/gemm_bf16/gemm_bf16.h"
#include "runtime/linear_bf16.h"

namespace py = pybind11;

namespace sparsecpu::bindings {
namespace {

using FloatArray = py::array_t<float, py::array::c_style>;

}  // namespace

void bind_linear_bf16(py::module_& m) {
  const auto listing = [](bool semi24) {
    py::list out;
    for (const GemmBf16Kernel& k : gemm_bf16_kernels())
      if (k.semi24 == semi24) out.append(py::make_tuple(k.name, isa_name(k.isa), isa_usable(k.isa)));
    return out;
  };
  m.def("gemm_bf16_kernels", [listing] { return listing(false); },
        "(name, isa, usable) of every dense bf16 kernel, highest ISA level first.");
  m.def("gemm_bf16_semi24_kernels", [listing] { return listing(true); },
        "(name, isa, usable) of every 2:4 bf16 kernel, highest ISA level first.");

  py::class_<LinearBF16, std::shared_ptr<LinearBF16>>(m, "LinearBF16")
      .def(py::init([](FloatArray w, std::optional<FloatArray> bias, const std::string& layout, int block_rows, int block_cols,
                       const std::string& activation, const std::string& kernel) {
             require(w.ndim() == 2, "weight must be 2-D (out_features, in_features), got shape " + shape_text(w));
             const int64_t n = w.shape(0), k = w.shape(1);
             if (bias)
               require(bias->ndim() == 1 && bias->shape(0) == n,
                       "bias must have shape (" + std::to_string(n) + ",), got " + shape_text(*bias));
             const Activation act = activation_from_name(activation);
             const WeightLayout weight_layout = weight_layout_from_name(layout);
             py::gil_scoped_release release;
             return new LinearBF16(w.data(), n, k, bias ? bias->data() : nullptr, weight_layout,
                                   BlockShape{block_rows, block_cols}, act, kernel);
           }),
           py::arg("weight"), py::arg("bias"), py::arg("layout"), py::arg("block_rows"), py::arg("block_cols"),
           py::arg("activation"), py::arg("kernel") = "")
      .def("forward", &forward_f32<LinearBF16>, py::arg("x"), py::arg("residual") = py::none(), py::arg("threads") = 0)
      .def_property_readonly("kernel", &LinearBF16::kernel_name)
      .def_property_readonly("out_features", &LinearBF16::out_features)
      .def_property_readonly("in_features", &LinearBF16::in_features)
      .def_property_readonly("nonzeros", &LinearBF16::nonzeros)
      .def_property_readonly("packed_bytes", &LinearBF16::packed_bytes);
}

}  // namespace sparsecpu::bindings
