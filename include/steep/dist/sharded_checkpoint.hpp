#pragma once
// Checkpoints of a sharded optimizer that do not depend on the rank count: the file is the one a
// single process would write (engine/checkpoint.hpp: parameters, every slot of every block,
// steps, hyperparameters, the rule's hash, a checksum), so one written at 4 ranks resumes at 1, 2
// or 3, or in a plain steep::optimizer, bitwise.
//
//   steep::dist::save_checkpoint(opt, "run.ckpt");   // collective: rank 0 writes, atomically
//   steep::dist::load_checkpoint(opt, "run.ckpt");   // collective: every rank reads its share
//
// Save: every rank sends its slots (each piece's bytes with its block and slot name) to every
// rank (all_gather_bytes: the communicator's one gather); rank 0 puts them into one process's
// optimizer over the whole model (dist/sharded_optimizer.hpp, make_whole) and writes the file with
// engine::save_checkpoint (written to a temporary, then renamed: a crash leaves the old file).
// Load: every rank reads the file into one process's optimizer over a scratch copy of the model,
// the ranks agree that all of them succeeded, then each takes the parameters and its owned range
// of every slot. Either every rank loads, or none changes anything and every rank throws.
// The cost: one process's state, transiently, on rank 0 (save) or on every rank (load); the
// file's bytes travel to every rank on save (docs/distributed.md).

#include "steep/core/error.hpp"
#include "steep/dist/gather_bytes.hpp"
#include "steep/dist/sharded_optimizer.hpp"
#include "steep/engine/checkpoint.hpp"

#include <cstddef>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <vector>

namespace steep::dist {

namespace detail {

// Where a rank's slot of `block` (`bytes` long) sits in the whole block's slot (`whole` bytes): a
// piece of a split block holds the piece's range of a per-element slot; anything else is whole.
inline std::size_t piece_offset(const shard_plan& plan, int rank, const std::string& block, std::size_t bytes,
                                std::size_t whole) {
  for (const block_piece& p : plan.ranks[static_cast<std::size_t>(rank)].pieces)
    if (plan.blocks[p.block].name == block && bytes != whole)
      return p.begin * (bytes / (p.end - p.begin));
  return 0;
}

// "block/slot" -> that slot's bytes in an optimizer.
template <class Opt>
std::map<std::string, std::span<std::byte>> slot_map(Opt& opt) {
  std::map<std::string, std::span<std::byte>> m;
  opt.visit_slots([&](const engine::slot_bytes& s) { m[s.block + "/" + s.slot] = s.bytes; });
  return m;
}

inline void put_u64(std::vector<std::byte>& out, std::uint64_t x) {
  const auto* p = reinterpret_cast<const std::byte*>(&x);
  out.insert(out.end(), p, p + sizeof x);
}
inline std::uint64_t get_u64(const std::byte*& p) {
  std::uint64_t x;
  std::memcpy(&x, p, sizeof x);
  p += sizeof x;
  return x;
}

template <class T>
std::vector<block_spec<T>> same_blocks(const param_store<T>& store) {
  std::vector<block_spec<T>> specs;
  for (const auto& b : store.blocks()) {
    specs.emplace_back(b.name, b.shape, b.role);
    specs.back().layout = b.layout;
  }
  return specs;
}

} // namespace detail

// Writes `path` (collective: every rank calls it; rank 0 writes). Throws on every rank if rank
// 0 could not write; the old file, if any, is then as it was.
template <class T, class Comm>
void save_checkpoint(sharded_optimizer<T, Comm>& opt, const std::string& path) {
  Comm& comm = opt.communicator();
  std::vector<std::byte> mine;
  if (auto* local = opt.local())
    local->visit_slots([&](const engine::slot_bytes& s) {
      for (const std::string* n : { &s.block, &s.slot }) {
        detail::put_u64(mine, n->size());
        const auto* c = reinterpret_cast<const std::byte*>(n->data());
        mine.insert(mine.end(), c, c + n->size());
      }
      detail::put_u64(mine, s.bytes.size());
      mine.insert(mine.end(), s.bytes.begin(), s.bytes.end());
    });
  const auto all = all_gather_bytes(comm, std::span<const std::byte>(mine));
  std::exception_ptr failed;
  if (comm.rank() == 0) {
    try {
      auto whole = opt.make_whole(opt.store());
      whole->restore_steps(opt.steps(), opt.skipped_steps());
      auto slots = detail::slot_map(*whole);
      for (int q = 0; q < comm.size(); ++q) {
        const std::byte* p = all[static_cast<std::size_t>(q)].data();
        const std::byte* end = p + all[static_cast<std::size_t>(q)].size();
        while (p < end) {
          std::string names[2];
          for (auto& n : names) {
            const std::size_t len = detail::get_u64(p);
            n.assign(reinterpret_cast<const char*>(p), len);
            p += len;
          }
          const std::size_t bytes = detail::get_u64(p);
          const std::span<std::byte> dst = slots.at(names[0] + "/" + names[1]);
          std::memcpy(dst.data() + detail::piece_offset(opt.plan(), q, names[0], bytes, dst.size()), p,
                      bytes);
          p += bytes;
        }
      }
      engine::save_checkpoint(*whole, opt.store(), path);
    } catch (...) {
      failed = std::current_exception();
    }
  }
  detail::agree(comm, failed, "save_checkpoint('" + path + "')");
}

// Loads `path` (collective): the parameters into the store on every rank, each rank's owned range
// of every slot, the step counters and the hyperparameters. Everything is checked (by
// engine::load_checkpoint, on every rank) before anything changes; a failure on any rank throws
// on every rank, nothing changed anywhere.
template <class T, class Comm>
void load_checkpoint(sharded_optimizer<T, Comm>& opt, const std::string& path) {
  Comm& comm = opt.communicator();
  param_store<T> scratch(detail::same_blocks(opt.store()));
  std::unique_ptr<engine::any_optimizer<T>> whole;
  std::exception_ptr failed;
  try {
    whole = opt.make_whole(scratch);
    engine::load_checkpoint(*whole, scratch, path);
  } catch (...) {
    failed = std::current_exception();
  }
  detail::agree(comm, failed, "load_checkpoint('" + path + "')");
  std::memcpy(opt.store().arena_params(), scratch.arena_params(), scratch.arena_size() * sizeof(T));
  if (auto* local = opt.local()) {
    auto slots = detail::slot_map(*whole);
    local->visit_slots([&](const engine::slot_bytes& s) {
      const std::span<std::byte> src = slots.at(s.block + "/" + s.slot);
      std::memcpy(s.bytes.data(),
                  src.data() +
                    detail::piece_offset(opt.plan(), comm.rank(), s.block, s.bytes.size(), src.size()),
                  s.bytes.size());
    });
  }
  opt.restore(whole->steps(), whole->skipped_steps(), whole->hyperparameters());
}

} // namespace steep::dist
