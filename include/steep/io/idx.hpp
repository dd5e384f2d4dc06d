#pragma once
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed, read through zlib.
//
//   auto a = steep::io::read_idx("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
//   a.dims;   // {60000, 28, 28}
//   a.data;   // 47,040,000 unsigned bytes, row-major
//
// Format (LeCun et al., "THE MNIST DATABASE"): a big-endian header of two zero bytes, a type code
// (0x08 = unsigned byte, the only type these datasets use) and the number of dimensions, then one
// big-endian uint32 per dimension, then the data. gzopen reads plain files unchanged, so both
// forms go through one path. A short, oversized or malformed file is an error naming the file and
// the problem; nothing is returned half-read.

#include "steep/core/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include <zlib.h>

namespace steep::io {

struct idx_array {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> data;
  std::size_t count() const { return dims.empty() ? 0 : dims[0]; }
  std::size_t row_size() const {
    std::size_t n = 1;
    for (std::size_t i = 1; i < dims.size(); ++i)
      n *= dims[i];
    return n;
  }
};

namespace detail {
class gz_file {
public:
  explicit gz_file(const std::string& path)
    : path_(path)
    , f_(gzopen(path.c_str(), "rb")) {
    if (!f_)
      throw usage_error("read_idx: cannot open '" + path + "'");
  }
  ~gz_file() {
    if (f_)
      gzclose(f_);
  }
  gz_file(const gz_file&) = delete;
  gz_file& operator=(const gz_file&) = delete;

  void read(void* dst, std::size_t n, const char* what) {
    auto* p = static_cast<unsigned char*>(dst);
    while (n > 0) {
      const unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
      const int got = gzread(f_, p, chunk);
      if (got <= 0)
        throw usage_error("read_idx: '" + path_ + "' ends early while reading the " + what);
      p += got;
      n -= static_cast<std::size_t>(got);
    }
  }
  bool at_end() {
    unsigned char c;
    const int got = gzread(f_, &c, 1);
    if (got < 0)
      throw usage_error("read_idx: '" + path_ + "' is corrupt (zlib: " + gzerror(f_, nullptr) + ")");
    return got == 0;
  }

private:
  std::string path_;
  gzFile f_;
};
} // namespace detail

inline idx_array read_idx(const std::string& path, std::size_t max_bytes = std::size_t{ 1 } << 32) {
  detail::gz_file f(path);
  unsigned char magic[4];
  f.read(magic, 4, "header");
  if (magic[0] != 0 || magic[1] != 0)
    throw usage_error("read_idx: '" + path + "' is not an IDX file (bad magic number)");
  if (magic[2] != 0x08)
    throw usage_error("read_idx: '" + path + "' has element type " + std::to_string(magic[2]) +
                      "; only unsigned bytes (0x08) are supported");
  if (magic[3] == 0 || magic[3] > 4)
    throw usage_error("read_idx: '" + path + "' declares " + std::to_string(magic[3]) + " dimensions");
  idx_array a;
  std::size_t total = 1;
  for (int d = 0; d < magic[3]; ++d) {
    unsigned char b[4];
    f.read(b, 4, "dimensions");
    const std::size_t n =
      (std::size_t{ b[0] } << 24) | (std::size_t{ b[1] } << 16) | (std::size_t{ b[2] } << 8) | b[3];
    a.dims.push_back(n);
    total *= n;
    if (total > max_bytes)
      throw usage_error("read_idx: '" + path + "' declares more than " + std::to_string(max_bytes) +
                        " bytes");
  }
  a.data.resize(total);
  f.read(a.data.data(), total, "data");
  if (!f.at_end())
    throw usage_error("read_idx: '" + path + "' has bytes after the declared data");
  return a;
}

} // namespace steep::io
