// Throughput probes: how many multiply-adds per second one core sustains with
// the widest instructions this CPU and SPARSECPU_ISA allow. Benchmarks report
// their results as a share of these measured peaks.
#pragma once

#include <string>

namespace sparsecpu {

struct PeakProbe {
  double gops;            // 2 * multiply-adds per second / 1e9
  std::string instruction;
};

// kind: "fp32" (fused multiply-add), "int8" (u8 x s8 dot products) or "bf16"
// (bf16 pair dot products; 0 where the ISA level lacks them).
PeakProbe measure_peak(const std::string& kind, double seconds);

// Whether the kernels whose products are bf16 (the attention of int8 and bf16
// models, dense and 2:4 bf16 layers) run, or their fp32 counterparts. AVX512-BF16 is
// not enough: `vdpbf16ps` did 2x the multiply-adds per second of
// `vfmadd231ps` on Zen 5 but 0.45x on a Sapphire Rapids-class core, where the
// fp32 attention then ran 1.66x the bf16 one. SPARSECPU_BF16_PRODUCTS:
// "auto" (default: at the first use, a few ms of both instructions; bf16 when
// it does at least kBf16ProductsMinRatio times the fp32 rate), "on" (wherever
// the ISA level has AVX512-BF16), "off".
struct Bf16Products {
  bool use = false;
  double bf16_gflops = 0.0, fp32_gflops = 0.0;  // measured ("auto" at a level with AVX512-BF16), else 0
  std::string reason;
};
constexpr double kBf16ProductsMinRatio = 1.25;
const Bf16Products& bf16_products();
// SPARSECPU_BF16_PRODUCTS, checked: throws std::runtime_error naming a value
// other than auto, on or off (the import calls it, so a typo fails early).
std::string bf16_products_setting();

// Per-ISA loops: `iterations` rounds of 12 independent instructions; return a checksum.
float peak_fp32_avx2(long iterations);
float peak_fp32_avx512(long iterations);
int peak_int8_avx2(long iterations);
int peak_int8_avx2_vnni(long iterations);
int peak_int8_avx512_vnni(long iterations);
float peak_bf16_avx512_bf16(long iterations);

}  // namespace sparsecpu
