// Direct calls of the encoder op kernels (attention, layer norm) by name:
// what the tests use to check every registered kernel against the reference.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "bindings/checks.h"
#include "kernels/attention/attention.h"
#include "kernels/layernorm/layernorm.h"

namespace py = pybind11;

namespace sparsecpu::bindings {
namespace {

using FloatArray = py::array_t<float, py::array::c_style>;

template <class Kernel>
py::list describe(const std::vector<Kernel>& kernels) {
  py::list out;
  for (const Kernel& k : kernels) out.append(py::make_tuple(k.name, isa_name(k.isa), isa_usable(k.isa)));
  return out;
}

}  // namespace

void bind_ops(py::module_& m) {
  m.def("attention_kernels", [] { return describe(attention_kernels()); },
        "(name, isa, usable) of every attention kernel, highest ISA level first.");
  m.def(
      "attention_kernel_for",
      [](const std::string& products) {
        return std::string(select_attention_kernel(attention_products_from_name(products)).name);
      },
      py::arg("products"),
      "The attention kernel a plan runs for products 'fp32' (fp32 models) or 'bf16' (int8 and bf16 models allow it).");
  m.def("layernorm_kernels", [] { return describe(layernorm_kernels()); },
        "(name, isa, usable) of every layer-norm kernel, highest ISA level first.");

  m.def(
      "attention",
      [](py::array qkv_in, int64_t batch, int64_t heads, int64_t head_dim,
         std::optional<py::array_t<int32_t, py::array::c_style>> mask, float scale, const std::string& kernel,
         int threads, const std::string& all_masked) {
        // uint16: bf16 bit patterns (kernels that take them); anything else converts to float32.
        const bool bf16 = qkv_in.dtype().is(py::dtype::of<uint16_t>());
        using Bf16Array = py::array_t<uint16_t, py::array::c_style>;
        const py::array qkv = bf16 ? py::array(Bf16Array::ensure(qkv_in)) : py::array(FloatArray::ensure(qkv_in));
        require(static_cast<bool>(qkv), "qkv must be a float32 or uint16 (bf16) array");
        require(qkv.ndim() == 2, "qkv must be 2-D (tokens, 3 * heads * head_dim), got " + shape_text(qkv));
        const int64_t width = heads * head_dim;
        require(heads > 0 && head_dim > 0 && batch > 0 && qkv.shape(1) == 3 * width && qkv.shape(0) % batch == 0,
                "qkv shape " + shape_text(qkv) + " does not fit batch, heads and head_dim");
        const int64_t seq = qkv.shape(0) / batch;
        if (mask)
          require(mask->ndim() == 2 && mask->shape(0) == batch && mask->shape(1) == seq,
                  "mask must have shape (batch, seq), got " + shape_text(*mask));
        const AttentionKernel& k = kernel.empty() ? select_attention_kernel() : attention_kernel_by_name(kernel);
        FloatArray out({qkv.shape(0), static_cast<py::ssize_t>(width)});
        AttentionProblem p;
        if (bf16)
          p.qkv_bf16 = static_cast<const uint16_t*>(qkv.data());
        else
          p.qkv = static_cast<const float*>(qkv.data());
        p.ld_qkv = 3 * width;
        p.q_offset = 0;
        p.k_offset = width;
        p.v_offset = 2 * width;
        p.out = out.mutable_data();
        p.ld_out = width;
        p.batch = batch;
        p.seq = seq;
        p.heads = heads;
        p.head_dim = head_dim;
        p.key_mask = mask ? mask->data() : nullptr;
        p.scale = scale;
        p.all_masked = all_masked_from_name(all_masked);
        p.threads = threads;
        {
          py::gil_scoped_release release;
          k.run(p);
        }
        return out;
      },
      py::arg("qkv"), py::arg("batch"), py::arg("heads"), py::arg("head_dim"), py::arg("mask") = py::none(),
      py::arg("scale") = 1.0f, py::arg("kernel") = "", py::arg("threads") = 0, py::arg("all_masked") = "average",
      "Self-attention of qkv (tokens, [Q | K | V]) for sequences of tokens / batch; qkv float32, or uint16 bf16 bit\n"
      "patterns for a kernel that takes them.");

  m.def(
      "layernorm",
      [](FloatArray x, FloatArray gamma, FloatArray beta, float eps, const std::string& kernel, int threads) {
        require(x.ndim() == 2, "x must be 2-D, got " + shape_text(x));
        require(gamma.ndim() == 1 && gamma.shape(0) == x.shape(1) && beta.ndim() == 1 && beta.shape(0) == x.shape(1),
                "gamma and beta must have shape (" + std::to_string(x.shape(1)) + ",)");
        const LayerNormKernel& k = kernel.empty() ? select_layernorm_kernel() : layernorm_kernel_by_name(kernel);
        FloatArray y({x.shape(0), x.shape(1)});
        LayerNormProblem p;
        p.x = x.data();
        p.ldx = p.ldy = p.width = x.shape(1);
        p.rows = x.shape(0);
        p.gamma = gamma.data();
        p.beta = beta.data();
        p.eps = eps;
        p.y = y.mutable_data();
        p.threads = threads;
        {
          py::gil_scoped_release release;
          k.run(p);
        }
        return y;
      },
      py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps"), py::arg("kernel") = "",
      py::arg("threads") = 0);
}

}  // namespace sparsecpu::bindings
