// int8 kernels for AVX512-VNNI (vpdpbusd on 512-bit vectors). Built with
// -mavx512* -mavx512vnni; reached only through the registry.
#include "kernels/spmm_s8/spmm_s8_avx512_common.h"

namespace sparsecpu {

void spmm_s8_dense_avx512_vnni(const SpmmS8Problem& p) { run_dense_avx512(p); }
void spmm_s8_quads_avx512_vnni(const SpmmS8Problem& p) { run_quads_avx512(p); }
void spmm_s8_semi24_avx512_vnni(const SpmmS8Problem& p) { run_semi24_avx512(p); }

}  // namespace sparsecpu
