#include "cpu/cpu_features.h"

#include <cpuid.h>
#include <sched.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <utility>

namespace sparsecpu {
namespace {

const char* const kIsaNames[] = {"ref", "avx2", "avx2_vnni", "avx512", "avx512_vnni", "avx512_bf16"};

struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

bool bit(uint32_t value, int index) { return (value >> index) & 1u; }

uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  // xgetbv by opcode so the baseline build needs no -mxsave.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

int count_physical_cores(int fallback) {
  // Distinct (physical id, core id) pairs of the CPUs in /proc/cpuinfo.
  std::ifstream in("/proc/cpuinfo");
  if (!in) return fallback;
  std::set<std::pair<int, int>> cores;
  int physical = 0;
  std::string line;
  while (std::getline(in, line)) {
    auto value_of = [&](const char* key) -> const char* {
      if (line.compare(0, std::strlen(key), key) != 0) return nullptr;
      auto colon = line.find(':');
      return colon == std::string::npos ? nullptr : line.c_str() + colon + 1;
    };
    if (const char* v = value_of("physical id")) physical = std::atoi(v);
    if (const char* v = value_of("core id")) cores.emplace(physical, std::atoi(v));
  }
  return cores.empty() ? fallback : static_cast<int>(cores.size());
}

CpuFeatures detect() {
  CpuFeatures f;
  Regs leaf0 = cpuid(0, 0);
  char vendor[13] = {};
  std::memcpy(vendor + 0, &leaf0.ebx, 4);
  std::memcpy(vendor + 4, &leaf0.edx, 4);
  std::memcpy(vendor + 8, &leaf0.ecx, 4);
  f.vendor = vendor;

  if (cpuid(0x80000000u, 0).eax >= 0x80000004u) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      Regs r = cpuid(0x80000002u + i, 0);
      std::memcpy(brand + 16 * i + 0, &r.eax, 4);
      std::memcpy(brand + 16 * i + 4, &r.ebx, 4);
      std::memcpy(brand + 16 * i + 8, &r.ecx, 4);
      std::memcpy(brand + 16 * i + 12, &r.edx, 4);
    }
    f.model = brand;
    auto first = f.model.find_first_not_of(' ');
    f.model = first == std::string::npos ? "" : f.model.substr(first);
  }

  const uint32_t max_leaf = leaf0.eax;
  Regs l1 = max_leaf >= 1 ? cpuid(1, 0) : Regs{};
  Regs l7 = max_leaf >= 7 ? cpuid(7, 0) : Regs{};
  Regs l7s1 = (max_leaf >= 7 && l7.eax >= 1) ? cpuid(7, 1) : Regs{};

  const bool osxsave = bit(l1.ecx, 27);
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;             // XMM and YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;     // XTILECFG, XTILEDATA

  struct Flag {
    const char* name;
    bool present;
  };
  const Flag flags[] = {
      {"sse4_2", bit(l1.ecx, 20)},
      {"avx", os_avx && bit(l1.ecx, 28)},
      {"fma", os_avx && bit(l1.ecx, 12)},
      {"f16c", os_avx && bit(l1.ecx, 29)},
      {"avx2", os_avx && bit(l7.ebx, 5)},
      {"avx_vnni", os_avx && bit(l7s1.eax, 4)},
      {"avx512f", os_avx512 && bit(l7.ebx, 16)},
      {"avx512dq", os_avx512 && bit(l7.ebx, 17)},
      {"avx512cd", os_avx512 && bit(l7.ebx, 28)},
      {"avx512bw", os_avx512 && bit(l7.ebx, 30)},
      {"avx512vl", os_avx512 && bit(l7.ebx, 31)},
      {"avx512_vnni", os_avx512 && bit(l7.ecx, 11)},
      {"avx512_bf16", os_avx512 && bit(l7s1.eax, 5)},
      {"avx512_fp16", os_avx512 && bit(l7.edx, 23)},
      {"amx_bf16", os_amx && bit(l7.edx, 22)},
      {"amx_tile", os_amx && bit(l7.edx, 24)},
      {"amx_int8", os_amx && bit(l7.edx, 25)},
  };
  std::set<std::string> have;
  for (const Flag& flag : flags) {
    if (flag.present) {
      f.flags.emplace_back(flag.name);
      have.insert(flag.name);
    }
  }
  auto has = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (!have.count(n)) return false;
    return true;
  };
  auto level = [&](Isa isa) -> bool& { return f.available[static_cast<int>(isa)]; };
  level(Isa::ref) = true;
  level(Isa::avx2) = has({"avx", "avx2", "fma", "f16c"});
  level(Isa::avx2_vnni) = level(Isa::avx2) && has({"avx_vnni"});
  level(Isa::avx512) = level(Isa::avx2) && has({"avx512f", "avx512bw", "avx512dq", "avx512vl"});
  level(Isa::avx512_vnni) = level(Isa::avx512) && has({"avx512_vnni"});
  level(Isa::avx512_bf16) = level(Isa::avx512_vnni) && has({"avx512_bf16"});
#ifdef SPARSECPU_EMULATE_X86
  // The test build whose kernels above AVX2 run on SIMDe (see kernels/simd/intrinsics.h).
  if (level(Isa::avx2)) {
    for (Isa isa : {Isa::avx2_vnni, Isa::avx512, Isa::avx512_vnni, Isa::avx512_bf16}) level(isa) = true;
    f.flags.emplace_back("emulated");
  }
#endif

  cpu_set_t mask;
  CPU_ZERO(&mask);
  int in_mask = 0;
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) in_mask = CPU_COUNT(&mask);
  if (in_mask <= 0) in_mask = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  f.cores_in_affinity_mask = in_mask > 0 ? in_mask : 1;
  f.physical_cores = count_physical_cores(f.cores_in_affinity_mask);
  return f;
}

Isa best_available_at_or_below(Isa cap) {
  const CpuFeatures& f = cpu_features();
  for (int i = static_cast<int>(cap); i > 0; --i)
    if (f.available[i]) return static_cast<Isa>(i);
  return Isa::ref;
}

Isa resolve_active_isa() {
  const CpuFeatures& f = cpu_features();
  const char* requested = std::getenv("SPARSECPU_ISA");
  if (requested == nullptr || requested[0] == '\0')
    return best_available_at_or_below(static_cast<Isa>(static_cast<int>(Isa::count) - 1));
  Isa cap;
  try {
    cap = isa_from_name(requested);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("SPARSECPU_ISA: ") + e.what());
  }
  if (!f.available[static_cast<int>(cap)]) {
    std::string have;
    for (int i = 0; i < static_cast<int>(Isa::count); ++i)
      if (f.available[i]) have += std::string(have.empty() ? "" : ", ") + kIsaNames[i];
    throw std::runtime_error(std::string("SPARSECPU_ISA='") + requested +
                             "': this CPU lacks that level (it has: " + have + ")");
  }
  return cap;
}

}  // namespace

const char* isa_name(Isa isa) { return kIsaNames[static_cast<int>(isa)]; }

Isa isa_from_name(const std::string& name) {
  for (int i = 0; i < static_cast<int>(Isa::count); ++i)
    if (name == kIsaNames[i]) return static_cast<Isa>(i);
  std::string known;
  for (int i = 0; i < static_cast<int>(Isa::count); ++i)
    known += std::string(i ? ", " : "") + kIsaNames[i];
  throw std::invalid_argument("unknown ISA level '" + name + "' (known, lowest first: " + known + ")");
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

Isa active_isa() {
  static const Isa isa = resolve_active_isa();
  return isa;
}

bool isa_usable(Isa isa) {
  return cpu_features().available[static_cast<int>(isa)] &&
         static_cast<int>(isa) <= static_cast<int>(active_isa());
}

}  // namespace sparsecpu
