#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "kernels/spmm_f32/spmm_f32.h"
#include "bindings/checks.h"
#include "runtime/linear_f32.h"

namespace py = pybind11;

namespace sparsecpu::bindings {
namespace {

using FloatArray = py::array_t<float, py::array::c_style>;

}  // namespace

void bind_linear(py::module_& m) {
  py::class_<SpmmF32Kernel>(m, "SpmmF32Kernel")
      .def_property_readonly("name", [](const SpmmF32Kernel& k) { return std::string(k.name); })
      .def_property_readonly("isa", [](const SpmmF32Kernel& k) { return std::string(isa_name(k.isa)); })
      .def_property_readonly("dense", [](const SpmmF32Kernel& k) { return k.dense; })
      .def_property_readonly("semi24", [](const SpmmF32Kernel& k) { return k.semi24; })
      .def_property_readonly("block_rows", [](const SpmmF32Kernel& k) {
        std::vector<int> rows;
        for (int r : k.block_rows)
          if (r) rows.push_back(r);
        return rows;
      })
      .def_property_readonly("usable", [](const SpmmF32Kernel& k) { return isa_usable(k.isa); });

  m.def("spmm_f32_kernels", [] {
    py::list out;
    for (const SpmmF32Kernel& k : spmm_f32_kernels()) out.append(py::cast(&k, py::return_value_policy::reference));
    return out;
  }, "The fp32 kernel registry, highest ISA level first.");

  py::class_<LinearF32, std::shared_ptr<LinearF32>>(m, "LinearF32")
      .def(py::init([](FloatArray w, std::optional<FloatArray> bias, const std::string& layout, int block_rows, int block_cols,
                       const std::string& activation, const std::string& kernel) {
             require(w.ndim() == 2, "weight must be 2-D (out_features, in_features), got shape " + shape_text(w));
             const int64_t n = w.shape(0), k = w.shape(1);
             if (bias) {
               require(bias->ndim() == 1 && bias->shape(0) == n,
                       "bias must have shape (" + std::to_string(n) + ",), got " + shape_text(*bias));
             }
             const Activation act = activation_from_name(activation);
             const WeightLayout weight_layout = weight_layout_from_name(layout);
             py::gil_scoped_release release;
             return new LinearF32(w.data(), n, k, bias ? bias->data() : nullptr, weight_layout,
                                  BlockShape{block_rows, block_cols}, act, kernel);
           }),
           py::arg("weight"), py::arg("bias"), py::arg("layout"), py::arg("block_rows"), py::arg("block_cols"),
           py::arg("activation"), py::arg("kernel") = "")
      .def("forward", &forward_f32<LinearF32>, py::arg("x"), py::arg("residual") = py::none(), py::arg("threads") = 0)
      .def_property_readonly("kernel", [](const LinearF32& self) { return std::string(self.kernel().name); })
      .def_property_readonly("out_features", &LinearF32::out_features)
      .def_property_readonly("in_features", &LinearF32::in_features)
      .def_property_readonly("nonzeros", &LinearF32::nonzeros)
      .def_property_readonly("stored_blocks", [](const LinearF32& self) { return self.weight().stored_blocks(); })
      .def_property_readonly("total_blocks",
                             [](const LinearF32& self) { return self.weight().block_rows * self.weight().block_cols; })
      .def_property_readonly("packed_bytes", &LinearF32::packed_bytes);
}

}  // namespace sparsecpu::bindings
