// How a linear layer's weights are packed: blocks that hold a nonzero
// (BlockShape), every weight (dense), or 2:4 semi-structured.
#pragma once

#include <stdexcept>
#include <string>

namespace sparsecpu {

enum class WeightLayout : int { blocks = 0, dense, semi24 };

inline WeightLayout weight_layout_from_name(const std::string& name) {
  if (name == "blocks") return WeightLayout::blocks;
  if (name == "dense") return WeightLayout::dense;
  if (name == "2:4") return WeightLayout::semi24;
  throw std::invalid_argument("weight layout '" + name + "': expected 'blocks', 'dense' or '2:4'");
}

}  // namespace sparsecpu
