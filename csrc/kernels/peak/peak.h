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

// kind: "fp32" (fused multiply-add) or "int8" (u8 x s8 dot products).
PeakProbe measure_peak(const std::string& kind, double seconds);

// Per-ISA loops: `iterations` rounds of 12 independent instructions; return a checksum.
float peak_fp32_avx2(long iterations);
float peak_fp32_avx512(long iterations);
int peak_int8_avx2(long iterations);
int peak_int8_avx2_vnni(long iterations);
int peak_int8_avx512_vnni(long iterations);

}  // namespace sparsecpu
