// A planted data race for scripts/check.sh: two tasks of one executor pass add to one variable.
// ThreadSanitizer must report it, or its "clean" on the real tests would prove nothing (the
// executor's std::thread mode is what makes its hand-offs visible to TSan: kernel/executor.hpp).

#include <cstdio>
#include <steep/kernel/executor.hpp>
#include <vector>

int main() {
  const steep::kernel::executor ex(2);
  const steep::kernel::work_list wl(std::vector<std::size_t>{ std::size_t{ 1 } << 16 }, 1024);
  long shared = 0;
  ex.for_each_chunk(wl, [&](std::size_t c) { shared += static_cast<long>(c); }); // the race
  std::printf("%ld\n", shared);
}
