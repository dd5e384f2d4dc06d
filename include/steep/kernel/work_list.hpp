#pragma once
// work_list: every parameter block cut into chunks of at most `chunk_elements`, in block order —
// the one list of tasks a compiled rule's passes run over, whatever the number of tensors.
//
//   steep::kernel::work_list wl({1000003, 40, 0}, 16384);
//   wl.size();                 // 62 chunks for the first block, 1 for the second, none for the empty one
//   wl[0].block, wl[0].begin, wl[0].end;
//
// Why one list across blocks: 200 small tensors then parallelise as well as one big one (the
// "foreach" problem of torch.optim). Why fixed chunk boundaries: a reduction sums each
// chunk in a fixed order and then the chunks in list order, so its result does not depend on
// how many threads ran (bitwise identical for 1, 2 and N threads). Chunk starts are
// multiples of chunk_elements inside a block, hence of every SIMD width; only a block's last
// chunk has a scalar tail.

#include "steep/core/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace steep::kernel {

struct chunk {
  std::size_t block;
  std::size_t begin;
  std::size_t end;
};

class work_list {
public:
  static constexpr std::size_t default_chunk_elements = 16384;

  // The chunk size chunk_elements = 0 asks for (optimizer_options' default): 16384 entries, or
  // fewer for a small model, so that the list has about 16 chunks (a multiple of 64, at least
  // 1024). With 16384 a 50K-parameter model is 3 full chunks and one of 848, which two threads
  // split 2:2, so they could never beat 1.53x; with 3136 they split 8:8
  // (steep-bench-dispatch). It depends on the sizes only, never on the thread count, so results
  // stay bitwise the same for any thread count.
  static std::size_t auto_chunk_elements(const std::vector<std::size_t>& block_sizes) {
    std::size_t total = 0;
    for (std::size_t n : block_sizes)
      total += n;
    return std::clamp<std::size_t>((total / 16 + 63) / 64 * 64, 1024, default_chunk_elements);
  }

  explicit work_list(const std::vector<std::size_t>& block_sizes, std::size_t chunk_elements = 0)
    : chunk_elements_(chunk_elements == 0 ? auto_chunk_elements(block_sizes) : chunk_elements) {
    chunk_elements = chunk_elements_;
    if (chunk_elements % 64 != 0)
      throw usage_error("optimizer_options::chunk_elements is " + std::to_string(chunk_elements) +
                        ": it must be 0 (automatic) or a positive multiple of 64 (a whole number of SIMD "
                        "batches of every width)");
    first_.reserve(block_sizes.size() + 1);
    for (std::size_t b = 0; b < block_sizes.size(); ++b) {
      first_.push_back(chunks_.size());
      elements_ += block_sizes[b];
      for (std::size_t i = 0; i < block_sizes[b]; i += chunk_elements)
        chunks_.push_back(
          { b, i, i + chunk_elements < block_sizes[b] ? i + chunk_elements : block_sizes[b] });
    }
    first_.push_back(chunks_.size());
  }

  std::size_t size() const noexcept { return chunks_.size(); }
  const chunk& operator[](std::size_t i) const noexcept { return chunks_[i]; }
  std::size_t blocks() const noexcept { return first_.size() - 1; }
  // Chunks of block b are [first_chunk(b), first_chunk(b + 1)).
  std::size_t first_chunk(std::size_t b) const noexcept { return first_[b]; }
  std::size_t chunk_elements() const noexcept { return chunk_elements_; }
  // Entries over all chunks.
  std::size_t elements() const noexcept { return elements_; }

private:
  std::size_t chunk_elements_;
  std::size_t elements_ = 0;
  std::vector<chunk> chunks_;
  std::vector<std::size_t> first_;
};

} // namespace steep::kernel
