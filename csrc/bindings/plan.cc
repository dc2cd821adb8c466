#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>

#include "bindings/checks.h"
#include "runtime/plan.h"

namespace py = pybind11;

namespace sparsecpu::bindings {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IdArray = py::array_t<int64_t, py::array::c_style>;
using MaskArray = py::array_t<int32_t, py::array::c_style>;

std::vector<float> table(const FloatArray& a, int64_t width, const char* what) {
  require(a.ndim() == 2 && a.shape(1) == width,
          std::string(what) + " must have shape (rows, " + std::to_string(width) + "), got " + shape_text(a));
  return std::vector<float>(a.data(), a.data() + a.size());
}

std::vector<float> vector_of(const FloatArray& a, const char* what) {
  require(a.ndim() == 1, std::string(what) + " must be 1-D, got shape " + shape_text(a));
  return std::vector<float>(a.data(), a.data() + a.size());
}

const char* kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::embedding: return "embedding";
    case OpKind::linear: return "linear";
    case OpKind::attention: return "attention";
    case OpKind::layernorm: return "layernorm";
  }
  return "";
}

}  // namespace

void bind_plan(py::module_& m) {
  py::class_<Plan>(m, "Plan")
      .def(py::init<>())
      .def("add_buffer", &Plan::add_buffer, py::arg("width"))
      .def(
          "set_embedding",
          [](Plan& self, FloatArray word, FloatArray position, std::optional<FloatArray> token_type,
             const std::string& position_ids, int64_t padding_idx, int output) {
            require(word.ndim() == 2, "word embeddings must be 2-D, got shape " + shape_text(word));
            EmbeddingTables t;
            t.width = word.shape(1);
            t.vocab = word.shape(0);
            t.word = table(word, t.width, "word embeddings");
            t.position = table(position, t.width, "position embeddings");
            t.positions = position.shape(0);
            if (token_type) {
              t.token_type = table(*token_type, t.width, "token type embeddings");
              t.token_types = token_type->shape(0);
            }
            require(position_ids == "absolute" || position_ids == "after_padding",
                    "position_ids must be 'absolute' or 'after_padding', got '" + position_ids + "'");
            t.position_ids = position_ids == "absolute" ? PositionIds::absolute : PositionIds::after_padding;
            t.padding_idx = padding_idx;
            self.set_embedding(std::move(t), output);
          },
          py::arg("word"), py::arg("position"), py::arg("token_type"), py::arg("position_ids"),
          py::arg("padding_idx"), py::arg("output"))
      .def("add_linear",
           [](Plan& self, const std::string& name, std::shared_ptr<LinearF32> linear, int input, int output,
              int residual) { self.add_linear(name, std::shared_ptr<const LinearF32>(linear), input, output, residual); },
           py::arg("name"), py::arg("linear"), py::arg("input"), py::arg("output"), py::arg("residual") = -1)
      .def("add_linear",
           [](Plan& self, const std::string& name, std::shared_ptr<LinearS8> linear, int input, int output,
              int residual) { self.add_linear(name, std::shared_ptr<const LinearS8>(linear), input, output, residual); },
           py::arg("name"), py::arg("linear"), py::arg("input"), py::arg("output"), py::arg("residual") = -1)
      .def("add_linear",
           [](Plan& self, const std::string& name, std::shared_ptr<LinearBF16> linear, int input, int output,
              int residual) { self.add_linear(name, std::shared_ptr<const LinearBF16>(linear), input, output, residual); },
           py::arg("name"), py::arg("linear"), py::arg("input"), py::arg("output"), py::arg("residual") = -1)
      .def(
          "add_attention",
          [](Plan& self, const std::string& name, int qkv, int64_t q_offset, int64_t k_offset, int64_t v_offset,
             int64_t heads, int64_t head_dim, float scale, int output, const std::string& all_masked,
             const std::string& products) {
            self.add_attention(name, qkv, q_offset, k_offset, v_offset, heads, head_dim, scale, output,
                               all_masked_from_name(all_masked), attention_products_from_name(products));
          },
          py::arg("name"), py::arg("qkv"), py::arg("q_offset"), py::arg("k_offset"), py::arg("v_offset"),
          py::arg("heads"), py::arg("head_dim"), py::arg("scale"), py::arg("output"), py::arg("all_masked") = "average",
          py::arg("products") = "fp32",
          "all_masked: the context of a sequence with no unmasked key: 'average' (equal weights), 'all_keys' "
          "(softmax over all keys) or 'zeros'. products: 'fp32', or 'bf16' to allow a kernel that rounds Q, K, "
          "the softmax weights and V to bf16 where the CPU has one (AVX512-BF16).")
      .def(
          "add_layernorm",
          [](Plan& self, const std::string& name, int input, int output, FloatArray gamma, FloatArray beta,
             float eps) {
            self.add_layernorm(name, input, output, vector_of(gamma, "gamma"), vector_of(beta, "beta"), eps);
          },
          py::arg("name"), py::arg("input"), py::arg("output"), py::arg("gamma"), py::arg("beta"), py::arg("eps"))
      .def("set_output", &Plan::set_output, py::arg("buffer"))
      .def(
          "run",
          [](Plan& self, IdArray ids, std::optional<IdArray> token_types, std::optional<MaskArray> mask,
             int threads) {
            require(ids.ndim() == 2, "input_ids must be 2-D (batch, sequence), got shape " + shape_text(ids));
            const int64_t batch = ids.shape(0), seq = ids.shape(1);
            auto same_shape = [&](const py::array& a, const char* what) {
              require(a.ndim() == 2 && a.shape(0) == batch && a.shape(1) == seq,
                      std::string(what) + " must have the shape of input_ids " + shape_text(ids) + ", got " +
                          shape_text(a));
            };
            if (token_types) same_shape(*token_types, "token_type_ids");
            if (mask) same_shape(*mask, "attention_mask");
            require(threads >= 0, "threads must be >= 0");
            py::array_t<float> out({batch, seq, self.output_width()});
            const int64_t* types = token_types ? token_types->data() : nullptr;
            const int32_t* key_mask = mask ? mask->data() : nullptr;
            float* y = out.mutable_data();
            {
              py::gil_scoped_release release;
              self.run(ids.data(), types, key_mask, batch, seq, y, threads);
            }
            return out;
          },
          py::arg("input_ids"), py::arg("token_type_ids") = py::none(), py::arg("attention_mask") = py::none(),
          py::arg("threads") = 0)
      .def("ops",
           [](const Plan& self) {
             py::list out;
             const std::vector<bool> bf16_qkv = self.bf16_qkv_ops();
             for (size_t i = 0; i < self.ops().size(); ++i) {
               const PlanOp& op = self.ops()[i];
               py::dict d;
               d["name"] = op.name;
               d["kind"] = kind_name(op.kind);
               d["kernel"] = self.kernel_of(op);
               d["seconds"] = op.seconds;
               d["calls"] = op.calls;
               d["bf16_qkv"] = static_cast<bool>(bf16_qkv[i]);  // writes (linear) or reads (attention) bf16 Q, K, V
               d["input_square_sums"] =
                   py::array_t<double>(static_cast<py::ssize_t>(op.input_square_sums.size()), op.input_square_sums.data());
               out.append(d);
             }
             return out;
           })
      .def("reset_statistics", &Plan::reset_statistics)
      .def("collect_input_square_sums", &Plan::collect_input_square_sums, py::arg("on"))
      .def_property("tokens_per_pass", &Plan::tokens_per_pass, &Plan::set_tokens_per_pass)
      .def_property("bf16_attention_inputs", &Plan::bf16_attention_inputs, &Plan::set_bf16_attention_inputs)
      .def_property_readonly("output_width", &Plan::output_width);
}

}  // namespace sparsecpu::bindings
