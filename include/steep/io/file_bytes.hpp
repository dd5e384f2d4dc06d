#pragma once
// Whole files as bytes, for checkpoints (io/safetensors.hpp): reading only a regular file, and
// writing one so that a crash leaves either the old file or the new one, never a part.
//
//   std::vector<std::byte> bytes = steep::io::read_regular_file("run.ckpt");
//   steep::io::write_atomic(bytes, "run.ckpt");   // temp file, fsync, rename, fsync the directory
//
// Every failure is a steep::usage_error naming the file and the problem (docs/robustness.md):
// a directory, FIFO or device where a file was expected, a file that shrinks or grows while it
// is read, a full disk, a rename that fails. A failed write leaves the old file untouched and no
// temporary file behind. Knows nothing of the files' format.

#include "steep/core/error.hpp"

#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace steep::io {

namespace detail {
inline std::string errno_text() { return std::strerror(errno); }
} // namespace detail

// The bytes of the regular file at `path`. Anything but a regular file is refused without
// reading it: the open does not block (O_NONBLOCK: a FIFO without a writer would block a plain
// open forever), and fstat on the opened descriptor (not the path, which may change between
// the two) says what it is and how many bytes to read; a file that shrinks or grows meanwhile
// is refused rather than read past its size (/dev/zero never ends, for instance).
inline std::vector<std::byte> read_regular_file(const std::string& path) {
  auto fail = [&](const std::string& problem) {
    return usage_error("checkpoint '" + path + "': " + problem + "; nothing was loaded");
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    throw fail("cannot open it for reading (" + detail::errno_text() + ")");
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } closes{ fd };
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw fail("cannot stat it (" + detail::errno_text() + ")");
  if (!S_ISREG(st.st_mode))
    throw fail(S_ISDIR(st.st_mode)                          ? "it is a directory, not a file"
               : S_ISFIFO(st.st_mode)                       ? "it is a FIFO (named pipe), not a regular file"
               : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "it is a device, not a regular file"
                                                            : "it is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > std::numeric_limits<std::size_t>::max() / 2)
    throw fail("it is " + std::to_string(size) + " bytes, more than this machine can address");
  std::vector<std::byte> raw(static_cast<std::size_t>(size)); // std::bad_alloc: the caller names the file
  std::size_t at = 0;
  while (at < raw.size()) {
    const ssize_t r = ::pread(fd, raw.data() + at, raw.size() - at, static_cast<off_t>(at));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      throw fail("reading it failed (" + detail::errno_text() + ")");
    if (r == 0)
      throw fail("it shrank from " + std::to_string(size) + " to " + std::to_string(at) +
                 " bytes while being read");
    at += static_cast<std::size_t>(r);
  }
  std::byte probe{};
  if (::pread(fd, &probe, 1, static_cast<off_t>(at)) > 0)
    throw fail("it grew past " + std::to_string(size) + " bytes while being read");
  return raw;
}

namespace detail {
// This process's temporary files get distinct names: two saves to one path at once (two
// threads) must not write one file.
inline std::atomic<std::uint64_t> temp_counter{ 0 };

// Whether a temporary file of this path, `<name>.tmp.<pid>[.<n>]`, was left by a process that
// no longer exists: its pid is not ours and kill(pid, 0) says there is no such process. A live
// process's (or one we may not signal: EPERM) is never touched. (A process in another pid
// namespace sharing the directory would look dead; docs/robustness.md.)
inline bool stale_temp(std::string_view entry, std::string_view base) {
  const std::string prefix = std::string(base) + ".tmp.";
  if (entry.substr(0, prefix.size()) != prefix)
    return false;
  const std::string_view rest = entry.substr(prefix.size());
  long long pid = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
  if (ec != std::errc{} || pid <= 0 || pid > std::numeric_limits<pid_t>::max())
    return false;
  const std::string_view tail = rest.substr(static_cast<std::size_t>(end - rest.data()));
  if (!tail.empty() && (tail[0] != '.' || tail.size() == 1 ||
                        tail.substr(1).find_first_not_of("0123456789") != std::string_view::npos))
    return false;
  if (static_cast<pid_t>(pid) == ::getpid())
    return false;
  return ::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH;
}

// Removes the temporary files of `path` that dead processes left (a save killed midway).
inline void remove_stale_temps(const std::string& dir, const std::string& base) {
  DIR* d = ::opendir(dir.c_str());
  if (!d)
    return; // best effort: the save itself reports a directory it cannot write
  while (const dirent* e = ::readdir(d))
    if (stale_temp(e->d_name, base))
      ::unlinkat(::dirfd(d), e->d_name, 0);
  ::closedir(d);
}
} // namespace detail

// Writes `bytes` to `path` so that at any moment it is either the old file or the complete new one: the
// bytes go to a temporary file next to it (`<path>.tmp.<pid>.<n>`, a name no other save uses),
// which is flushed, fsync'ed and renamed over `path`. Temporary files of `path` left by dead
// processes are removed first.
inline void write_atomic(std::span<const std::byte> bytes, const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  detail::remove_stale_temps(dir, base);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(detail::temp_counter.fetch_add(1, std::memory_order_relaxed));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw usage_error("checkpoint '" + path + "': cannot create '" + tmp + "' (" + detail::errno_text() +
                      ")");
  std::size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw usage_error("checkpoint '" + path + "': writing failed (disk full?); the old file is untouched");
    }
    at += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw usage_error("checkpoint '" + path + "': fsync failed; the old file is untouched");
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw usage_error("checkpoint '" + path + "': closing the new file failed; the old file is untouched");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw usage_error("checkpoint '" + path + "': cannot rename the new file into place");
  }
  if (const int d = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC); d >= 0) { // the rename itself reaches the disk
    ::fsync(d);
    ::close(d);
  }
}

} // namespace steep::io
