// The pybind11 module sparsecpu._core. Each concept binds itself in its own file.
#include <pybind11/pybind11.h>

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "kernels/peak/peak.h"

namespace py = pybind11;

namespace sparsecpu::bindings {
void bind_cpu(py::module_& m);
void bind_linear(py::module_& m);
void bind_linear_s8(py::module_& m);
void bind_linear_bf16(py::module_& m);
void bind_plan(py::module_& m);
void bind_ops(py::module_& m);
}  // namespace sparsecpu::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "sparsecpu compiled core";
  // Resolve the ISA level and thread default now, so a bad SPARSECPU_ISA,
  // SPARSECPU_NUM_THREADS or SPARSECPU_BF16_PRODUCTS fails the import instead
  // of a later call.
  sparsecpu::active_isa();
  sparsecpu::default_num_threads();
  sparsecpu::bf16_products_setting();
  sparsecpu::bindings::bind_cpu(m);
  sparsecpu::bindings::bind_linear(m);
  sparsecpu::bindings::bind_linear_s8(m);
  sparsecpu::bindings::bind_linear_bf16(m);
  sparsecpu::bindings::bind_ops(m);
  sparsecpu::bindings::bind_plan(m);
}
