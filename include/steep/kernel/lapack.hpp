#pragma once
// The LAPACK routines steep calls, on row-major buffers, float and double.
//
//   namespace lapack = steep::kernel::lapack;
//   lapack::syevd(n, a, w);                      // symmetric A -> w ascending, row j of a = eigenvector j
//   lapack::potrf(n, a);                         // SPD A -> L in a's lower triangle, A = L L^T
//   lapack::geqrf_orgqr(m, n, a, q, r);          // A (m x n, m >= n) = Q R, Q^T Q = I (thin)
//   lapack::gesdd('S', rows, cols, a, s, u, vt); // A = U diag(s) V^T (thin), s descending
//
// Every wrapper takes row-major buffers and says how its output is laid out. LAPACK is
// column-major: a row-major buffer, read column-major, is the transpose of its matrix. A symmetric
// matrix is its own transpose, so syevd and potrf need no copy; only which triangle they read
// flips (`triangle` below names the row-major one). gesdd factors the transpose and swaps its
// outputs (no copy either); QR copies A into a column-major buffer and Q back, O(m n) next to
// the factorization's O(m n^2). Workspace sizes are queried (lwork = -1) and allocated here.
// A routine's failure (info != 0) throws steep::lapack_error naming the routine (with its s/d
// prefix), info, the matrix's shape and what info means (core/error.hpp).
//
// The routines are declared here, under their Fortran symbols, instead of through xtensor-blas's
// linalg or LAPACKE: xt::linalg adds about a second to every translation unit that includes it
// (docs/compile-time.md). Each declaration's C++ name is steep's own, overloaded on float and
// double (an asm label picks the symbol), so it cannot clash with FLENS's or LAPACKE's
// declarations of the same routine in a unit that includes those too. Character arguments are
// followed by their hidden lengths, as gfortran-compiled LAPACK (Debian's OpenBLAS) expects.
// The symbols come from the LAPACK that CMake found (OpenBLAS bundles it).

#include "steep/core/error.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace steep::kernel::lapack {

template <class T>
concept lapack_scalar = std::is_same_v<T, float> || std::is_same_v<T, double>;

// A triangle of a row-major square buffer (the column-major view sees the other one).
enum class triangle { upper, lower };

namespace detail::fortran {
using len = std::size_t; // a character argument's hidden length (gfortran >= 8)

void gesdd(const char* jobz, const int* m, const int* n, float* a, const int* lda, float* s, float* u,
           const int* ldu, float* vt, const int* ldvt, float* work, const int* lwork, int* iwork, int* info,
           len jobz_len) __asm__("sgesdd_");
void gesdd(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s, double* u,
           const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* iwork, int* info,
           len jobz_len) __asm__("dgesdd_");
void syevd(const char* jobz, const char* uplo, const int* n, float* a, const int* lda, float* w, float* work,
           const int* lwork, int* iwork, const int* liwork, int* info, len jobz_len,
           len uplo_len) __asm__("ssyevd_");
void syevd(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
           double* work, const int* lwork, int* iwork, const int* liwork, int* info, len jobz_len,
           len uplo_len) __asm__("dsyevd_");
void geqrf(const int* m, const int* n, float* a, const int* lda, float* tau, float* work, const int* lwork,
           int* info) __asm__("sgeqrf_");
void geqrf(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
           int* info) __asm__("dgeqrf_");
void orgqr(const int* m, const int* n, const int* k, float* a, const int* lda, const float* tau, float* work,
           const int* lwork, int* info) __asm__("sorgqr_");
void orgqr(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau,
           double* work, const int* lwork, int* info) __asm__("dorgqr_");
void potrf(const char* uplo, const int* n, float* a, const int* lda, int* info,
           len uplo_len) __asm__("spotrf_");
void potrf(const char* uplo, const int* n, double* a, const int* lda, int* info,
           len uplo_len) __asm__("dpotrf_");
} // namespace detail::fortran

namespace detail {
// The routine's name as LAPACK spells it: "dsyevd" for double, "ssyevd" for float.
template <class T>
std::string name(const char* routine) {
  return (std::is_same_v<T, float> ? "s" : "d") + std::string(routine);
}

inline std::string shape(std::size_t m, std::size_t n) {
  return std::to_string(m) + " x " + std::to_string(n);
}

// LAPACK indexes with int: a dimension above INT_MAX would wrap.
template <class T>
int dim(std::size_t n, const char* routine) {
  if (n > static_cast<std::size_t>(INT_MAX))
    throw usage_error(name<T>(routine) + ": dimension " + std::to_string(n) + " exceeds LAPACK's int");
  return static_cast<int>(n);
}

// A workspace query's answer comes back as a T: above 2^24 a float may round it down, so round
// it up again.
template <class T>
std::size_t work_size(T query) {
  const double size =
    static_cast<double>(query) * (1 + 4 * static_cast<double>(std::numeric_limits<T>::epsilon()));
  return std::max<std::size_t>(1, static_cast<std::size_t>(size) + 1);
}

// info < 0: argument -info was illegal, which is a bug in the call below, not in the matrix.
template <class T>
[[noreturn, gnu::cold]] void fail(const char* routine, int info, const std::string& problem) {
  throw lapack_error(name<T>(routine), info,
                     info < 0 ? "argument " + std::to_string(-info) + " had an illegal value (a bug in steep)"
                              : problem);
}

// A NaN or an infinity in a routine's input is refused before the call, as the caller's input:
// LAPACK would answer with an illegal argument (gesdd's info -4 for a NaN) or a meaningless
// failure. The usual source is a run whose parameters diverged (the main job names the run).
// Only the entries the routine reads: row-major (i, j) with j >= i (upper), j <= i (lower), or all.
template <class T>
void require_finite(const char* routine, const T* a, std::size_t rows, std::size_t cols, int part = 0) {
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = part > 0 ? i : 0; j < (part < 0 ? i + 1 : cols); ++j)
      if (!std::isfinite(a[i * cols + j]))
        throw usage_error(name<T>(routine) + ": the " + shape(rows, cols) +
                          " matrix has a non-finite entry (" + std::to_string(a[i * cols + j]) + " at row " +
                          std::to_string(i) + ", column " + std::to_string(j) + "): did the run diverge?");
}
inline int read_part(triangle t) { return t == triangle::upper ? 1 : -1; }

// LAPACK's uplo for a row-major triangle: the column-major view sees the transpose.
inline char uplo(triangle t) { return t == triangle::upper ? 'L' : 'U'; }
} // namespace detail

// Thin SVD of the row-major rows x cols matrix A in `a` (destroyed): A = U diag(s) V^T, s the
// k = min(rows, cols) singular values, descending. jobz 'S': also u (rows x k) and vt (k x cols),
// both row-major; jobz 'N': s alone (u and vt are left empty).
//
// How: the buffer, read column-major, is A^T (cols x rows). LAPACK factors A^T = U' S V'^T
// (U': cols x k, V'^T: k x rows, column-major), so A = V' S U'^T. As row-major buffers, V'^T
// (k x rows, column-major) holds V' = U (rows x k) and U' (cols x k, column-major) holds
// U'^T = V^T (k x cols): LAPACK writes our vt where it writes its u and our u where it writes its
// vt, and nothing is transposed.
template <class T>
void gesdd(char jobz, std::size_t rows, std::size_t cols, T* a, std::vector<T>& s, std::vector<T>& u,
           std::vector<T>& vt) {
  static_assert(lapack_scalar<T>, "LAPACK's gesdd takes float or double");
  detail::require_finite<T>("gesdd", a, rows, cols);
  const std::size_t k = std::min(rows, cols);
  const int m = detail::dim<T>(cols, "gesdd"), n = detail::dim<T>(rows, "gesdd"), ik = static_cast<int>(k);
  const int lda = std::max(m, 1), ldu = std::max(m, 1), ldvt = std::max(ik, 1);
  s.assign(k, T(0));
  T dummy[1] = { T(0) }; // LAPACK's u and vt when jobz is 'N' (never written)
  T *lapack_u = dummy, *lapack_vt = dummy;
  if (jobz == 'S') {
    u.assign(rows * k, T(0));
    vt.assign(k * cols, T(0));
    lapack_u = vt.data(); // cols x k column-major = V^T, k x cols row-major
    lapack_vt = u.data(); // k x rows column-major = U, rows x k row-major
  } else {
    u.clear();
    vt.clear();
  }
  std::vector<int> iwork(8 * k);
  auto call = [&](T* work, int lwork) {
    int info = 0;
    detail::fortran::gesdd(&jobz, &m, &n, a, &lda, s.data(), lapack_u, &ldu, lapack_vt, &ldvt, work, &lwork,
                           iwork.data(), &info, 1);
    return info;
  };
  T query = 0;
  int info = call(&query, -1);
  if (info == 0) {
    std::vector<T> work(detail::work_size(query));
    info = call(work.data(), static_cast<int>(work.size()));
  }
  if (info != 0)
    detail::fail<T>("gesdd", info, "the SVD of a " + detail::shape(rows, cols) + " matrix did not converge");
}

// Eigendecomposition of the symmetric n x n matrix A in `a` (row-major; only the triangle `t` is
// read, by default the upper one, which blas::syrk writes): w gets the n eigenvalues, ascending.
// With `vectors`, row j of `a` is then a unit eigenvector of w[j], i.e. the buffer holds V^T
// row-major (A = V diag(w) V^T): LAPACK writes the eigenvectors as the columns of a column-major
// V, and a column of a column-major buffer is a row of the row-major one. Without `vectors`, `a`
// is destroyed. Eigenvectors' signs are LAPACK's (either sign).
template <class T>
void syevd(std::size_t n, T* a, T* w, triangle t = triangle::upper, bool vectors = true) {
  static_assert(lapack_scalar<T>, "LAPACK's syevd takes float or double");
  if (n == 0)
    return;
  detail::require_finite<T>("syevd", a, n, n, detail::read_part(t));
  const char jobz = vectors ? 'V' : 'N', uplo = detail::uplo(t);
  const int in = detail::dim<T>(n, "syevd"), lda = in;
  auto call = [&](T* work, int lwork, int* iwork, int liwork) {
    int info = 0;
    detail::fortran::syevd(&jobz, &uplo, &in, a, &lda, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    return info;
  };
  T query = 0;
  int iquery = 0;
  int info = call(&query, -1, &iquery, -1);
  if (info == 0) {
    std::vector<T> work(detail::work_size(query));
    std::vector<int> iwork(std::max(iquery, 1));
    info = call(work.data(), static_cast<int>(work.size()), iwork.data(), static_cast<int>(iwork.size()));
  }
  if (info != 0)
    detail::fail<T>("syevd", info,
                    "the eigendecomposition of a " + detail::shape(n, n) + " matrix did not converge");
}

// Cholesky factor of the symmetric positive definite n x n matrix A in `a` (row-major). With t
// lower (the default), reads the lower triangle and writes L there, A = L L^T; with t upper,
// reads the upper triangle and writes R = L^T there, A = R^T R. The other triangle is left as
// it was. The factor's diagonal is positive. A matrix that is not positive definite throws
// lapack_error with info k: A's leading minor of order k is not positive.
//
// Why the lower one is LAPACK's 'U': the column-major view of the buffer is A^T = A, LAPACK
// factors it as U^T U with U in its upper triangle, and the column-major upper triangle is the
// row-major lower one, where U reads as U^T = L.
template <class T>
void potrf(std::size_t n, T* a, triangle t = triangle::lower) {
  static_assert(lapack_scalar<T>, "LAPACK's potrf takes float or double");
  if (n == 0)
    return;
  detail::require_finite<T>("potrf", a, n, n, detail::read_part(t));
  const char uplo = detail::uplo(t);
  const int in = detail::dim<T>(n, "potrf"), lda = in;
  int info = 0;
  detail::fortran::potrf(&uplo, &in, a, &lda, &info, 1);
  if (info != 0)
    detail::fail<T>("potrf", info,
                    "the " + detail::shape(n, n) +
                      " matrix is not positive definite: its leading minor of order " + std::to_string(info) +
                      " is not positive");
}

// Thin QR of the row-major m x n matrix A in `a` (m >= n): A = Q R with q (m x n, row-major,
// orthonormal columns) and, unless r is null, r (n x n, row-major, upper triangular, zeros below
// the diagonal). R's diagonal has LAPACK's signs (Householder reflections: either sign; see
// linalg/qr.hpp for the one with a nonnegative diagonal). geqrf factors A in a column-major copy,
// R is read off its upper triangle, orgqr then forms Q's n columns in place, and Q is copied back
// row-major.
template <class T>
void geqrf_orgqr(std::size_t m, std::size_t n, const T* a, T* q, T* r) {
  static_assert(lapack_scalar<T>, "LAPACK's geqrf and orgqr take float or double");
  if (m < n)
    throw usage_error(detail::name<T>("geqrf") + ": thin QR needs rows >= columns, got a " +
                      detail::shape(m, n) + " matrix");
  if (n == 0)
    return;
  detail::require_finite<T>("geqrf", a, m, n);
  const int im = detail::dim<T>(m, "geqrf"), in = detail::dim<T>(n, "geqrf"), lda = im;
  std::vector<T> col(m * n), tau(n);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      col[i + j * m] = a[i * n + j];

  T query = 0;
  int info = 0;
  const int ask = -1; // lwork -1: a workspace query
  detail::fortran::geqrf(&im, &in, col.data(), &lda, tau.data(), &query, &ask, &info);
  std::vector<T> work;
  if (info == 0) {
    work.resize(detail::work_size(query));
    const int lwork = static_cast<int>(work.size());
    detail::fortran::geqrf(&im, &in, col.data(), &lda, tau.data(), work.data(), &lwork, &info);
  }
  if (info != 0)
    detail::fail<T>("geqrf", info, "the QR factorization of a " + detail::shape(m, n) + " matrix failed");

  if (r)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        r[i * n + j] = j >= i ? col[i + j * m] : T(0);

  detail::fortran::orgqr(&im, &in, &in, col.data(), &lda, tau.data(), &query, &ask, &info);
  if (info == 0) {
    work.resize(std::max(work.size(), detail::work_size(query)));
    const int lwork = static_cast<int>(work.size());
    detail::fortran::orgqr(&im, &in, &in, col.data(), &lda, tau.data(), work.data(), &lwork, &info);
  }
  if (info != 0)
    detail::fail<T>("orgqr", info, "forming Q of a " + detail::shape(m, n) + " matrix failed");

  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      q[i * n + j] = col[i + j * m];
}

} // namespace steep::kernel::lapack
