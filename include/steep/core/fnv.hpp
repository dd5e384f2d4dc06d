#pragma once
// fnv1a: a 64-bit FNV-1a hash (Fowler, Noll, Vo), fed piece by piece: the structural hash of a
// rule's type (checkpoints record it), and the hashes ranks compare to agree on a rule, a layout
// and a shard plan (dist/).
//
//   steep::fnv1a h;
//   h.add(std::string_view("W1"));   // its length, then its bytes: "a"+"bc" differs from "ab"+"c"
//   h.add(std::uint64_t{ 784 });     // a trivially copyable value, by its bytes
//   h.value();
//
// Not a cryptographic hash: it tells accidental differences apart, no more.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace steep {

struct fnv1a {
  static constexpr std::uint64_t offset_basis = 14695981039346656037ull;
  static constexpr std::uint64_t prime = 1099511628211ull;

  std::uint64_t h = offset_basis;

  constexpr fnv1a() = default;
  // Another starting value (rule_hash keeps the one its recorded checkpoints were written with).
  constexpr explicit fnv1a(std::uint64_t basis)
    : h(basis) {}

  void add_bytes(const void* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      h = (h ^ static_cast<const unsigned char*>(p)[i]) * prime;
  }
  void add(std::string_view s) {
    add(static_cast<std::uint64_t>(s.size()));
    add_bytes(s.data(), s.size());
  }
  template <class X>
  requires std::is_trivially_copyable_v<X> &&(!std::is_pointer_v<X>)void add(const X& x) {
    add_bytes(&x, sizeof(X));
  }

  std::uint64_t value() const noexcept { return h; }
};

} // namespace steep
