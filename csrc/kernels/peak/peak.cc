#include "kernels/peak/peak.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
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
  if (kind == "bf16") {
    if (isa_usable(Isa::avx512_bf16))
      return {rate(peak_bf16_avx512_bf16, seconds) * 12 * 16 * 4 / 1e9, "vdpbf16ps zmm"};
    return {0.0, "none at this ISA level"};
  }
  throw std::invalid_argument("peak kind '" + kind + "': expected 'fp32', 'int8' or 'bf16'");
}

std::string bf16_products_setting() {
  const char* value = std::getenv("SPARSECPU_BF16_PRODUCTS");
  const std::string setting = value && *value ? value : "auto";
  if (setting != "auto" && setting != "on" && setting != "off")
    throw std::runtime_error("SPARSECPU_BF16_PRODUCTS='" + setting + "': expected auto, on or off");
  return setting;
}

namespace {

Bf16Products choose_bf16_products() {
  Bf16Products out;
  const std::string setting = bf16_products_setting();
  if (!isa_usable(Isa::avx512_bf16)) {
    out.reason = "no AVX512-BF16 at this ISA level";
    return out;
  }
  if (setting != "auto") {
    out.use = setting == "on";
    out.reason = "SPARSECPU_BF16_PRODUCTS=" + setting;
    return out;
  }
  // The best of a few short interleaved rounds of each: another job's load
  // slows a round, never speeds one up. The rates measured so far differ 2x
  // either way, far from the threshold, so noise does not flip the choice.
  for (int round = 0; round < 4; ++round) {
    out.fp32_gflops = std::max(out.fp32_gflops, measure_peak("fp32", 2.5e-4).gops);
    out.bf16_gflops = std::max(out.bf16_gflops, measure_peak("bf16", 2.5e-4).gops);
  }
  out.use = out.bf16_gflops >= kBf16ProductsMinRatio * out.fp32_gflops;
  out.reason = std::string("vdpbf16ps measured ") + (out.use ? "at least" : "below") + " 1.25x the vfmadd231ps rate";
  return out;
}

}  // namespace

const Bf16Products& bf16_products() {
  static const Bf16Products choice = choose_bf16_products();
  return choice;
}

}  // namespace sparsecpu
