#pragma once
// Includes xsimd (and with it <immintrin.h>) inside a diagnostic fence. Every steep header that
// touches xsimd or xtensor includes this first, so the fence sees <immintrin.h> before anything
// else does.
//
// Why: GCC 12 reports -Wmaybe-uninitialized / -Wuninitialized inside the AVX-512 intrinsics
// (`__m512 __Y = __Y;` in _mm512_undefined_ps, GCC PR105593) wherever a sqrt or a masked op is
// inlined; diagnostics are attributed to the header's lines, so silencing them where the header
// is first read fixes -Werror builds.

// (clang has no -Wmaybe-uninitialized and warns about the pragma that names it.)
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop
