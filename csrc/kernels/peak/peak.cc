#include "kernels/peak/peak.h"

#include <chrono>
#include <stdexcept>

#include "cpu/cpu_features.h"

namespace sparsecpu {
namespace {

template <class Fn>
double seconds_for(Fn fn, long iterations) {
  const auto start = std::chrono::steady_clock::now();
  volatile auto sink = fn(iterations);
  (void)sink;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs fn long enough to take about `seconds`; returns iterations per second.
template <class Fn>
double rate(Fn fn, double seconds) {
  long iterations = 1000;
  seconds_for(fn, iterations);  // warm up (frequency, caches)
  for (;;) {
    const double t = seconds_for(fn, iterations);
    if (t >= seconds || iterations > (1L << 40)) return iterations / t;
    iterations = static_cast<long>(iterations * std::max(2.0, seconds / std::max(t, 1e-6)));
  }
}

}  // namespace

PeakProbe measure_peak(const std::string& kind, double seconds) {
  // ops per iteration: 12 instructions x lanes x (2 for fp32 FMA, 8 for a 4-way int8 dot product)
  if (kind == "fp32") {
    if (isa_usable(Isa::avx512)) return {rate(peak_fp32_avx512, seconds) * 12 * 16 * 2 / 1e9, "vfmadd231ps zmm"};
    if (isa_usable(Isa::avx2)) return {rate(peak_fp32_avx2, seconds) * 12 * 8 * 2 / 1e9, "vfmadd231ps ymm"};
    return {0.0, "scalar (not measured)"};
  }
  if (kind == "int8") {
    if (isa_usable(Isa::avx512_vnni)) return {rate(peak_int8_avx512_vnni, seconds) * 12 * 16 * 8 / 1e9, "vpdpbusd zmm"};
    if (isa_usable(Isa::avx2_vnni)) return {rate(peak_int8_avx2_vnni, seconds) * 12 * 8 * 8 / 1e9, "vpdpbusd ymm (AVX-VNNI)"};
    if (isa_usable(Isa::avx2))
      return {rate(peak_int8_avx2, seconds) * 12 * 8 * 8 / 1e9, "exact vpmaddwd pairs ymm (AVX2)"};
    return {0.0, "scalar (not measured)"};
  }
  throw std::invalid_argument("peak kind '" + kind + "': expected 'fp32' or 'int8'");
}

}  // namespace sparsecpu
