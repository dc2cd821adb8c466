// The x86 intrinsics the kernels use.
//
// A build with the CMake option SPARSECPU_EMULATE_X86 compiles every kernel
// against SIMDe (libsimde-dev), whose portable code stands in for any
// instruction the build's flags do not enable, and reports every ISA level as
// available: the AVX-512, VNNI and BF16 kernels then run, slowly, on a CPU
// with AVX2 only, so their logic can be tested there (bash .ci/sanitize --emulate).
// Never a build to ship or to time.
#pragma once

#ifdef SPARSECPU_EMULATE_X86
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include "kernels/simd/emulated_extras.h"
#else
#include <immintrin.h>
#endif
