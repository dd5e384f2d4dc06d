#pragma once
// A refactor's proof by bits: with STEEP_PRINT_BITS set in the environment, a test prints the
// CRC-32 (zlib) of what it computed, one line per run, so the lines of a build before a change
// and of one after it compare with diff (steep-golden --bits does the same for the golden set).
//
//   steep_test::bits b;
//   b.add(store.block_at(0).param, n * sizeof(double));
//   b.print("adam/1 thread");   // "bits 1a2b3c4d adam/1 thread"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <zlib.h>

namespace steep_test {

struct bits {
  uLong crc = crc32(0L, Z_NULL, 0);
  void add(const void* data, std::size_t bytes) {
    if (bytes > 0) // (zlib's crc32 of a null buffer is its initial value, not crc)
      crc = crc32(crc, static_cast<const Bytef*>(data), static_cast<uInt>(bytes));
  }
  void print(const std::string& label) const {
    if (std::getenv("STEEP_PRINT_BITS"))
      std::printf("bits %08lx %s\n", static_cast<unsigned long>(crc), label.c_str());
  }
};

} // namespace steep_test
