#pragma once
// Named tensors in the safetensors layout: an 8-byte little-endian header length N, N bytes of
// JSON, then the raw little-endian data. Readable by any safetensors reader.
//
//   steep::io::tensor_file f;
//   f.metadata["step"] = "12";
//   f.add("W1/exp_avg", "F32", {64, 32}, bytes);          // bytes: a std::span<const std::byte>
//   steep::io::save_atomic(f, "run.ckpt");                 // temp file, fsync, rename
//   steep::io::tensor_file g = steep::io::load("run.ckpt"); // every check before anything is used
//
// The JSON header maps each name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the data section) and carries "__metadata__", a map of strings. steep adds
// "format" = "steep", "format_version" and "crc32" (zlib's CRC-32 of the data section) there.
// Loading refuses, with the file name and the problem: a header length past the end of the file
// or above 100 MB, JSON that does not parse, an entry whose dtype is unknown, whose shape or
// offsets are not lists of whole numbers >= 0, whose offsets fall
// outside the data or overlap another's or do not match its shape, a data section with bytes no
// tensor owns, a CRC that does not match, a newer format version. Knows nothing of optimizers.

#include "steep/core/error.hpp"
#include "steep/core/shape.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>
#include <zlib.h>

namespace steep::io {

inline constexpr int tensor_file_version = 1;

struct tensor_entry {
  std::string dtype; // "F32", "F64", "BF16", ...
  std::vector<std::size_t> shape;
  std::vector<std::byte> data;
};

struct tensor_file {
  std::map<std::string, std::string> metadata;
  std::map<std::string, tensor_entry> tensors; // by name: files are matched by name, never by position

  void add(const std::string& name, std::string dtype, std::vector<std::size_t> shape,
           std::span<const std::byte> bytes) {
    tensors[name] = tensor_entry{ std::move(dtype), std::move(shape), { bytes.begin(), bytes.end() } };
  }
};

// Bytes per element of a safetensors dtype name; 0 if steep does not know it.
inline std::size_t dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64")
    return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32")
    return 4;
  if (dtype == "BF16" || dtype == "F16" || dtype == "I16" || dtype == "U16")
    return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL")
    return 1;
  return 0;
}

inline std::uint32_t crc32_of(std::span<const std::byte> data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  std::size_t at = 0;
  while (at < data.size()) { // zlib takes uInt lengths
    const auto n = static_cast<uInt>(std::min<std::size_t>(data.size() - at, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + at), n);
    at += n;
  }
  return static_cast<std::uint32_t>(crc);
}

// The file's bytes: header length, header, data (tensors in name order, back to back).
inline std::vector<std::byte> serialize(const tensor_file& f) {
  std::vector<std::byte> data;
  nlohmann::json header = nlohmann::json::object();
  for (const auto& [name, t] : f.tensors) {
    header[name] = { { "dtype", t.dtype },
                     { "shape", t.shape },
                     { "data_offsets", { data.size(), data.size() + t.data.size() } } };
    data.insert(data.end(), t.data.begin(), t.data.end());
  }
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& [k, v] : f.metadata)
    meta[k] = v;
  meta["format"] = "steep";
  meta["format_version"] = std::to_string(tensor_file_version);
  meta["crc32"] = std::to_string(crc32_of(data));
  header["__metadata__"] = meta;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' '); // the data starts 8-byte aligned, as the format advises
  std::vector<std::byte> out(8);
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  for (char c : text)
    out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// A metadata count ("step", "format_version"): all digits, no sign, fits in int64; else nullopt.
inline std::optional<std::int64_t> parse_count(const std::string& text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || text[0] == '-')
    return std::nullopt;
  return v;
}

// Parses and checks a whole file image; `what` names it in errors.
inline tensor_file parse(std::span<const std::byte> bytes, const std::string& what) {
  auto fail = [&](const std::string& problem) -> usage_error {
    return usage_error("checkpoint '" + what + "': " + problem + "; nothing was loaded");
  };
  if (bytes.size() < 8)
    throw fail("the file is " + std::to_string(bytes.size()) +
               " bytes, shorter than its 8-byte header length");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<std::uint64_t>(std::to_integer<unsigned>(bytes[i])) << (8 * i);
  if (n > 100'000'000 || n > bytes.size() - 8)
    throw fail("the header length (" + std::to_string(n) + " bytes) runs past the end of the file (" +
               std::to_string(bytes.size()) + " bytes)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data() + 8),
                                   reinterpret_cast<const char*>(bytes.data() + 8 + n));
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("the header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object())
    throw fail("the header is not a JSON object");
  const std::span<const std::byte> data = bytes.subspan(8 + n);
  // A shape or offset list holds whole numbers >= 0 only. nlohmann's get<std::size_t> would
  // convert 1e30 (undefined behaviour: a float out of an integer's range) and wrap -1.
  auto whole_numbers = [&](const nlohmann::json& list, const std::string& name, const char* field) {
    if (!list.is_array())
      throw fail("tensor '" + name + "': its " + field + " is not a list");
    std::vector<std::size_t> out;
    for (const auto& x : list) {
      if (!x.is_number_unsigned()) {
        std::string shown = x.dump(); // a bad entry may be a long string or array: show its start
        if (shown.size() > 40)
          shown = shown.substr(0, 37) + "...";
        throw fail("tensor '" + name + "': its " + field + " holds " + shown + ", not a whole number >= 0");
      }
      out.push_back(x.get<std::size_t>());
    }
    return out;
  };
  tensor_file f;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  try {
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        for (const auto& [k, v] : entry.items())
          f.metadata[k] = v.get<std::string>();
        continue;
      }
      const auto dtype = entry.at("dtype").get<std::string>();
      const auto shape = whole_numbers(entry.at("shape"), name, "shape");
      const auto off = whole_numbers(entry.at("data_offsets"), name, "data_offsets");
      const std::size_t size = dtype_size(dtype);
      if (size == 0)
        throw fail("tensor '" + name + "' has dtype '" + dtype + "', which steep does not read");
      const auto counted = element_count_checked(shape);
      if (!counted)
        throw fail("tensor '" + name + "': its shape's element count overflows");
      const std::size_t count = *counted;
      if (off.size() != 2 || off[0] > off[1] || off[1] > data.size())
        throw fail("tensor '" + name + "': its data offsets fall outside the data section (" +
                   std::to_string(data.size()) + " bytes)");
      if (count > SIZE_MAX / size || off[1] - off[0] != count * size)
        throw fail("tensor '" + name + "': its data holds " + std::to_string(off[1] - off[0]) +
                   " bytes, its shape and dtype need " + std::to_string(count * size));
      spans.emplace_back(off[0], off[1]);
      f.tensors[name] = tensor_entry{ dtype,
                                      shape,
                                      { data.begin() + static_cast<std::ptrdiff_t>(off[0]),
                                        data.begin() + static_cast<std::ptrdiff_t>(off[1]) } };
    }
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("an entry of the header is malformed (") + e.what() + ")");
  }
  std::sort(spans.begin(), spans.end());
  std::size_t end = 0;
  for (auto [b, e] : spans) {
    if (b != end)
      throw fail(b < end ? "two tensors' data overlap" : "the data section has bytes no tensor owns");
    end = e;
  }
  if (end != data.size())
    throw fail("the data section has " + std::to_string(data.size() - end) + " bytes past the last tensor");
  if (f.metadata.count("format") && f.metadata["format"] == "steep") {
    const auto version = parse_count(f.metadata["format_version"]);
    if (!version)
      throw fail("its format_version '" + f.metadata["format_version"] + "' is not a whole number");
    if (*version > tensor_file_version)
      throw fail("it was written by a newer steep (format version " + f.metadata["format_version"] +
                 ", this one reads " + std::to_string(tensor_file_version) + ")");
    if (f.metadata["crc32"] != std::to_string(crc32_of(data)))
      throw fail("the data's CRC-32 does not match the header's: the file is corrupt");
  }
  return f;
}

inline tensor_file load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw usage_error("checkpoint '" + path + "': cannot open it for reading");
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse(std::as_bytes(std::span<const char>(raw)), path);
}

// Writes `path` so that at any moment it is either the old file or the complete new one: the
// bytes go to a temporary file next to it, which is flushed, fsync'ed and renamed over `path`.
inline void save_atomic(const tensor_file& f, const std::string& path) {
  const std::vector<std::byte> bytes = serialize(f);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    throw usage_error("checkpoint '" + path + "': cannot create '" + tmp + "'");
  std::size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (w <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw usage_error("checkpoint '" + path + "': writing failed (disk full?); the old file is untouched");
    }
    at += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw usage_error("checkpoint '" + path + "': fsync failed; the old file is untouched");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw usage_error("checkpoint '" + path + "': cannot rename the new file into place");
  }
  const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  if (const int d = ::open(dir.c_str(), O_RDONLY); d >= 0) { // the rename itself reaches the disk
    ::fsync(d);
    ::close(d);
  }
}

} // namespace steep::io
