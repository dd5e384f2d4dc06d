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
// "format" = "steep", "format_version" = "2" and a checksum over the whole file there.
//
// The checksum (format version 2). The header always begins, at byte 8, with
//     {"__metadata__":{"checksum":"crc32:XXXXXXXX",
// where XXXXXXXX are 8 lowercase hex digits: zlib's CRC-32 of every byte of the file, the length
// field, header and data alike, computed with those 8 digits replaced by "00000000". So a
// flipped bit anywhere is caught (CRC-32 finds every error of up to 3 bits in files this
// size), whatever the header says: the reader finds the checksum by its fixed place, not by
// the "format" field a flip could change. A file without it (another program's, or steep's
// format 1, whose "crc32" covered the data only) is read with `checksummed` false, and
// engine/checkpoint.hpp decides what such a file may load (docs/robustness.md).
//
// Loading refuses, with the file name and the problem: anything but a regular file (a
// directory, a FIFO — without blocking on it —, a device), a header length past the end of the
// file or above 100 MB, a checksum that does not match, JSON that does not parse, an entry whose
// dtype is unknown, whose shape or offsets are not lists of whole numbers >= 0, whose offsets
// fall outside the data or overlap another's or do not match its shape, a data section with
// bytes no tensor owns, a newer format version. Reads are bounded by the file's size as fstat
// gives it; any other exception (out of memory, the JSON library's) comes back as a
// steep::usage_error naming the file. Saving refuses names that are not UTF-8 (JSON's
// encoding) before anything is written. Knows nothing of optimizers.

#include "steep/core/error.hpp"
#include "steep/core/shape.hpp"
#include "steep/io/file_bytes.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>
#include <zlib.h>

namespace steep::io {

inline constexpr int tensor_file_version = 2;

struct tensor_entry {
  std::string dtype; // "F32", "F64", "BF16", ...
  std::vector<std::size_t> shape;
  std::vector<std::byte> data;
};

struct tensor_file {
  std::map<std::string, std::string> metadata;
  std::map<std::string, tensor_entry> tensors; // by name: files are matched by name, never by position
  // Set by parse(): the whole file's checksum (above) was there and matched. False for a file
  // another program wrote, or one of steep's format 1 (whose data CRC parse() checked).
  bool checksummed = false;

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

// zlib's CRC-32 of `data`, continuing from `crc` (a whole buffer: start from crc32_of({})).
inline std::uint32_t crc32_of(std::span<const std::byte> data, std::uint32_t crc = 0) {
  uLong c = crc;
  std::size_t at = 0;
  while (at < data.size()) { // zlib takes uInt lengths
    const auto n = static_cast<uInt>(std::min<std::size_t>(data.size() - at, 1u << 30));
    c = crc32(c, reinterpret_cast<const Bytef*>(data.data() + at), n);
    at += n;
  }
  return static_cast<std::uint32_t>(c);
}

// Where the checksum lives (see the top of this file): the header's first bytes, then 8 digits.
inline constexpr std::string_view checksum_prefix = R"({"__metadata__":{"checksum":"crc32:)";
inline constexpr std::size_t checksum_at = 8 + checksum_prefix.size(); // the digits' offset in the file
inline constexpr std::string_view checksum_placeholder = "00000000";

// The file's checksum as its 8 lowercase hex digits, the digits themselves read as the placeholder.
inline std::string file_checksum(std::span<const std::byte> file) {
  std::uint32_t c = crc32_of(file.first(checksum_at));
  c = crc32_of(std::as_bytes(std::span(checksum_placeholder)), c);
  c = crc32_of(file.subspan(checksum_at + checksum_placeholder.size()), c);
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", c);
  return hex;
}

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF),
// which JSON text, and so a safetensors header, must be.
inline bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xbf; // the allowed range of the second byte
    if (c < 0x80)
      n = 0;
    else if (c >= 0xc2 && c <= 0xdf)
      n = 1;
    else if (c >= 0xe0 && c <= 0xef)
      n = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
      n = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
      return false;
    if (s.size() - i - 1 < n)
      return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xbf))
        return false;
    }
    i += n + 1;
  }
  return true;
}

// `s` with every byte outside printable ASCII (and the backslash) written as \xHH: a name that
// is not UTF-8 can still be shown in an error message.
inline std::string hex_escaped(std::string_view s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += ch;
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

// The file's bytes: header length, header (the checksum first), data (tensors in name order,
// back to back). Refuses, before anything is written, a name or metadata string that is not UTF-8.
inline std::vector<std::byte> serialize(const tensor_file& f) {
  auto utf8 = [](const std::string& s, const char* what) {
    if (!is_utf8(s))
      throw usage_error(std::string("checkpoint: ") + what + " '" + hex_escaped(s) +
                        "' is not UTF-8, which a safetensors header (JSON) must be; nothing was written");
  };
  std::vector<std::byte> data;
  nlohmann::json tensors = nlohmann::json::object();
  for (const auto& [name, t] : f.tensors) {
    utf8(name, "the tensor name");
    utf8(t.dtype, "the dtype");
    if (name == "__metadata__")
      throw usage_error("checkpoint: a tensor cannot be named '__metadata__'; nothing was written");
    tensors[name] = { { "dtype", t.dtype },
                      { "shape", t.shape },
                      { "data_offsets", { data.size(), data.size() + t.data.size() } } };
    data.insert(data.end(), t.data.begin(), t.data.end());
  }
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& [k, v] : f.metadata) {
    utf8(k, "the metadata key"), utf8(v, "the metadata value");
    meta[k] = v;
  }
  meta.erase("checksum"); // steep's own, at its fixed place
  meta["format"] = "steep";
  meta["format_version"] = std::to_string(tensor_file_version);
  // nlohmann writes an object's members in key order; the checksum must come first, so the
  // header is spliced from the checksum and the dumps' members (each dump is "{...}").
  const std::string meta_text = meta.dump(), tensor_text = tensors.dump();
  std::string text = std::string(checksum_prefix) + std::string(checksum_placeholder) + "\"";
  text += "," + meta_text.substr(1, meta_text.size() - 2) + "}"; // meta has "format" at least
  if (tensor_text.size() > 2)
    text += "," + tensor_text.substr(1, tensor_text.size() - 2);
  text += "}";
  text.append((8 - text.size() % 8) % 8, ' '); // the data starts 8-byte aligned, as the format advises
  std::vector<std::byte> out(8);
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  for (char c : text)
    out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), data.begin(), data.end());
  const std::string sum = file_checksum(out);
  for (std::size_t i = 0; i < sum.size(); ++i)
    out[checksum_at + i] = static_cast<std::byte>(sum[i]);
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

namespace detail {
// Runs f(); an exception that is not steep's (out of memory, the JSON or standard library's)
// comes back as a steep::usage_error naming the file and what was being done, so callers catch
// steep's two types only (docs/robustness.md).
template <class F>
auto foreign_as_usage(const std::string& path, const char* doing, F&& f) -> decltype(f()) {
  auto wrap = [&](const std::string& why) {
    return usage_error("checkpoint '" + path + "': " + doing + ": " + why);
  };
  try {
    return f();
  } catch (const error&) {
    throw;
  } catch (const usage_error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw wrap("out of memory (std::bad_alloc)");
  } catch (const std::length_error& e) {
    throw wrap(std::string("too large (") + e.what() + ")");
  } catch (const nlohmann::json::exception& e) {
    throw wrap(std::string("the JSON library refused it (") + e.what() + ")");
  } catch (const std::system_error& e) { // std::filesystem_error and iostream failures among them
    throw wrap(std::string("a system call failed (") + e.what() + ")");
  }
}
} // namespace detail

namespace detail {
inline tensor_file parse_checked(std::span<const std::byte> bytes, const std::string& what) {
  auto fail = [&](const std::string& problem) -> usage_error {
    return usage_error("checkpoint '" + what + "': " + problem + "; nothing was loaded");
  };
  if (bytes.size() < 8)
    throw fail("the file is " + std::to_string(bytes.size()) +
               " bytes, shorter than its 8-byte header length");
  // The checksum first, by its fixed place: before the length field or the JSON is trusted.
  const auto text_at = [&](std::size_t at, std::size_t n) {
    return std::string_view(reinterpret_cast<const char*>(bytes.data() + at), n);
  };
  std::optional<std::string> checksum;
  if (bytes.size() >= checksum_at + checksum_placeholder.size() &&
      text_at(8, checksum_prefix.size()) == checksum_prefix) {
    checksum = std::string(text_at(checksum_at, checksum_placeholder.size()));
    if (*checksum != file_checksum(bytes))
      throw fail("its checksum does not match its bytes (crc32:" + hex_escaped(*checksum) +
                 " in the header): the file is corrupt");
  }
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
  std::string field = "__metadata__"; // what is being read, for the error message
  try {
    for (const auto& [name, entry] : header.items()) {
      field = name;
      if (name == "__metadata__") {
        for (const auto& [k, v] : entry.items())
          field = "__metadata__/" + k, f.metadata[k] = v.get<std::string>();
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
    throw fail("the header's entry '" + hex_escaped(field) + "' is malformed (" + e.what() + ")");
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
  const auto meta = [&](const char* key) -> const std::string* {
    const auto it = f.metadata.find(key);
    return it == f.metadata.end() ? nullptr : &it->second;
  };
  // The metadata's copy of the checksum is the one at the fixed place (JSON may repeat a key).
  if (const auto* c = meta("checksum"); c && (!checksum || *c != "crc32:" + *checksum))
    throw fail("its metadata's checksum '" + hex_escaped(*c) + "' is not the one at the start of the header");
  f.checksummed = checksum.has_value();
  const auto* format = meta("format");
  const auto* version_text = meta("format_version");
  if (version_text && (checksum || (format && *format == "steep"))) {
    const auto version = parse_count(*version_text);
    if (!version || *version < 1)
      throw fail("its format_version '" + hex_escaped(*version_text) + "' is not a whole number >= 1");
    if (*version > tensor_file_version)
      throw fail("it was written by a newer steep (format version " + *version_text + ", this one reads " +
                 std::to_string(tensor_file_version) + ")");
    if (*version >= 2 && !checksum)
      throw fail("it says it is steep's format " + *version_text +
                 " but has no checksum: the file is corrupt");
    if (*version == 1) { // before the header had a checksum: the data's CRC-32, in decimal
      const auto* crc = meta("crc32");
      if (!crc || *crc != std::to_string(crc32_of(data)))
        throw fail("the data's CRC-32 does not match the header's: the file is corrupt");
    }
  } else if (format && *format == "steep" && !checksum) {
    throw fail("it says it is a steep file but has no format_version and no checksum: the file is corrupt");
  }
  return f;
}
} // namespace detail

// Parses and checks a whole file image; `what` names it in errors.
inline tensor_file parse(std::span<const std::byte> bytes, const std::string& what) {
  return detail::foreign_as_usage(what, "parsing it", [&] { return detail::parse_checked(bytes, what); });
}

// Reads the file at `path` (io/file_bytes.hpp: regular files only, bounded by their size) and
// parses it.
inline tensor_file load(const std::string& path) {
  return parse(detail::foreign_as_usage(path, "reading it", [&] { return read_regular_file(path); }), path);
}

// Writes `path` so that at any moment it is either the old file or the complete new one
// (io/file_bytes.hpp: a temporary file next to it, fsync'ed and renamed over it).
inline void save_atomic(const tensor_file& f, const std::string& path) {
  write_atomic(detail::foreign_as_usage(path, "serializing it", [&] { return serialize(f); }), path);
}

} // namespace steep::io
