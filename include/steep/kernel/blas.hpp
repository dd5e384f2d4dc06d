#pragma once
// The level-3 BLAS products steep's matrix maps need, on row-major raw pointers.
//
//   steep::kernel::blas::syrk(n, k, alpha, A, lda, beta, C, ldc, trans);   // C = a A A^T + b C (upper)
//   steep::kernel::blas::symm_left(m, n, alpha, S, lds, B, ldb, beta, C, ldc);  // C = a S B + b C
//   steep::kernel::blas::gemm(...);                                          // C = a op(A) op(B) + b C
//   steep::kernel::blas::thread_limit one(1);   // this scope: BLAS runs on the calling thread
//
// The calls go to the CBLAS of the BLAS that CMake found (OpenBLAS, BLA_VENDOR=OpenBLAS, the
// library xtensor-blas links). The three routines are declared here, under steep's own C++ names
// with an asm label for the CBLAS symbol, as kernel/lapack.hpp declares LAPACK's routines:
// xtensor-blas's bundled FLENS cxxblas, which steep included before, is 805 headers and 0.3 s of
// the parsing of every translation unit that includes the engine, and <cblas.h> declares the same
// enums as cxxblas, so a unit that also uses xtensor-blas's linalg would not compile
// (docs/compile-time.md, "Include only what a translation unit uses"). CBLAS's enums are passed
// as int, their C ABI; the values are the CBLAS standard's.
//
// thread_limit exists because OpenBLAS keeps its own thread pool. When steep runs many
// same-shape blocks in parallel over TBB ("batch same-shape blocks across layers"),
// each block's products must stay on the TBB worker, or 2 cores would run 2 x n BLAS threads.
// openblas_set_num_threads is looked up as a weak symbol, so another BLAS still links (the
// limit is then a no-op).

#include <cstddef>
#include <mutex>
#include <type_traits>

extern "C" {
void openblas_set_num_threads(int) __attribute__((weak));
int openblas_get_num_threads() __attribute__((weak));
}

namespace steep::kernel::blas {

using index = int;

inline index as_index(std::size_t n) { return static_cast<index>(n); }

// CBLAS, overloaded on the scalar type (float: cblas_s*, double: cblas_d*).
namespace detail::cblas {
enum : int { row_major = 101, no_trans = 111, trans = 112, upper = 121, left = 141, right = 142 };

void gemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) __asm__("cblas_sgemm");
void gemm(int order, int trans_a, int trans_b, int m, int n, int k, double alpha, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) __asm__("cblas_dgemm");
void syrk(int order, int uplo, int trans, int n, int k, float alpha, const float* a, int lda, float beta,
          float* c, int ldc) __asm__("cblas_ssyrk");
void syrk(int order, int uplo, int trans, int n, int k, double alpha, const double* a, int lda, double beta,
          double* c, int ldc) __asm__("cblas_dsyrk");
void symm(int order, int side, int uplo, int m, int n, float alpha, const float* a, int lda, const float* b,
          int ldb, float beta, float* c, int ldc) __asm__("cblas_ssymm");
void symm(int order, int side, int uplo, int m, int n, double alpha, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) __asm__("cblas_dsymm");

inline int op(bool transpose) { return transpose ? trans : no_trans; }
} // namespace detail::cblas

template <class T>
concept blas_scalar = std::is_same_v<T, float> || std::is_same_v<T, double>;

// C (n x n, upper triangle) = alpha * op(A) op(A)^T + beta * C, op(A) = A (n x k) or A^T (A: k x n).
template <class T>
void syrk(std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, T beta, T* c, std::size_t ldc,
          bool transpose_a = false) {
  static_assert(blas_scalar<T>, "steep's BLAS products take float or double");
  namespace cb = detail::cblas;
  cb::syrk(cb::row_major, cb::upper, cb::op(transpose_a), as_index(n), as_index(k), alpha, a, as_index(lda),
           beta, c, as_index(ldc));
}

// C (m x n) = alpha * S B + beta * C, S symmetric m x m (upper triangle read).
template <class T>
void symm_left(std::size_t m, std::size_t n, T alpha, const T* s, std::size_t lds, const T* b,
               std::size_t ldb, T beta, T* c, std::size_t ldc) {
  static_assert(blas_scalar<T>, "steep's BLAS products take float or double");
  namespace cb = detail::cblas;
  cb::symm(cb::row_major, cb::left, cb::upper, as_index(m), as_index(n), alpha, s, as_index(lds), b,
           as_index(ldb), beta, c, as_index(ldc));
}

// C (m x n) = alpha * B S + beta * C, S symmetric n x n (upper triangle read).
template <class T>
void symm_right(std::size_t m, std::size_t n, T alpha, const T* s, std::size_t lds, const T* b,
                std::size_t ldb, T beta, T* c, std::size_t ldc) {
  static_assert(blas_scalar<T>, "steep's BLAS products take float or double");
  namespace cb = detail::cblas;
  cb::symm(cb::row_major, cb::right, cb::upper, as_index(m), as_index(n), alpha, s, as_index(lds), b,
           as_index(ldb), beta, c, as_index(ldc));
}

// C (m x n) = alpha * op(A) op(B) + beta * C.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  static_assert(blas_scalar<T>, "steep's BLAS products take float or double");
  namespace cb = detail::cblas;
  cb::gemm(cb::row_major, cb::op(trans_a), cb::op(trans_b), as_index(m), as_index(n), as_index(k), alpha, a,
           as_index(lda), b, as_index(ldb), beta, c, as_index(ldc));
}

// Limits OpenBLAS's own threads for the life of the object (process-wide: OpenBLAS has no
// per-call setting). Limits may overlap — nested on one thread, or two optimizers' matrix
// phases on two threads — so the count found by the first is restored by the last to end, and
// one that ends while others run restores the count it found only if its own is still in
// force (nested: the outer's count comes back; overlapping: a count another limit set since
// is left alone). Saving and restoring per object alone restored the wrong count when two
// overlapped (A saves 2, sets 1; B saves 1, sets 2; A restores 2; B restores 1). While two with
// different counts overlap, the later one's count holds for both.
class thread_limit {
  struct shared_state {
    std::mutex m;
    int active = 0;
    int baseline = 0;
  };
  static shared_state& state() {
    static shared_state s;
    return s;
  }
  static bool available() {
    return openblas_set_num_threads != nullptr && openblas_get_num_threads != nullptr;
  }

public:
  explicit thread_limit(int n) {
    if (!available())
      return;
    auto& s = state();
    const std::lock_guard<std::mutex> lock(s.m);
    previous_ = openblas_get_num_threads();
    if (s.active++ == 0)
      s.baseline = previous_;
    if (previous_ != n)
      openblas_set_num_threads(n);
    n_ = n;
  }
  ~thread_limit() {
    if (!available())
      return;
    auto& s = state();
    const std::lock_guard<std::mutex> lock(s.m);
    const int now = openblas_get_num_threads();
    const int restore = --s.active == 0 ? s.baseline : (now == n_ ? previous_ : now);
    if (restore != now)
      openblas_set_num_threads(restore);
  }
  thread_limit(const thread_limit&) = delete;
  thread_limit& operator=(const thread_limit&) = delete;

private:
  int previous_ = 0, n_ = 0;
};

} // namespace steep::kernel::blas
