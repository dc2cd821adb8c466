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
     "Measured single-core peak of 'fp32' FMA or 'int8' dot products (GOP/s) at the active ISA level.");
  m.def("set_num_threads", &set_default_num_threads, py::arg("n"));
  m.def("get_num_threads", &default_num_threads);
}

}  // namespace sparsecpu::bindings
