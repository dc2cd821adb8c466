#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "kernels/peak/peak.h"

namespace py = pybind11;

namespace sparsecpu::bindings {

void bind_cpu(py::module_& m) {
  m.def("cpu_info", [] {
    const CpuFeatures& f = cpu_features();
    py::list available;
    for (int i = 0; i < static_cast<int>(Isa::count); ++i)
      if (f.available[i]) available.append(isa_name(static_cast<Isa>(i)));
    py::dict info;
    info["vendor"] = f.vendor;
    info["model"] = f.model;
    info["flags"] = f.flags;
    info["isa"] = isa_name(active_isa());
    info["isa_available"] = available;
    info["physical_cores"] = f.physical_cores;
    info["num_threads"] = default_num_threads();
    return info;
  }, "CPU vendor, model, flags, ISA level in use and available, cores and threads.");
  m.def("isa_levels", [] {
    std::vector<std::string> names;
    for (int i = 0; i < static_cast<int>(Isa::count); ++i) names.emplace_back(isa_name(static_cast<Isa>(i)));
    return names;
  }, "All ISA level names, lowest first.");
  m.def("measure_peak", [](const std::string& kind, double seconds) {
    PeakProbe probe;
    {
      py::gil_scoped_release release;
      probe = measure_peak(kind, seconds);
    }
    py::dict out;
    out["gops"] = probe.gops;
    out["instruction"] = probe.instruction;
    return out;
  }, py::arg("kind"), py::arg("seconds") = 0.2,
     "Measured single-core peak of 'fp32' FMA, 'int8' or 'bf16' dot products (GOP/s) at the active ISA level.");
  m.def("bf16_products", [] {
    const Bf16Products* choice;
    {
      py::gil_scoped_release release;  // the first call may probe for a few ms
      choice = &bf16_products();
    }
    py::dict out;
    out["use"] = choice->use;
    out["bf16_gflops"] = choice->bf16_gflops;
    out["fp32_gflops"] = choice->fp32_gflops;
    out["reason"] = choice->reason;
    return out;
  }, "Whether kernels with bf16 products (int8 and bf16 models' attention, dense and 2:4 bf16 layers) run, and why.");
  m.def("set_num_threads", &set_default_num_threads, py::arg("n"));
  m.def("get_num_threads", &default_num_threads);
}

}  // namespace sparsecpu::bindings
