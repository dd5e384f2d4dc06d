// Catch2 v2's main, alone in its translation unit: it takes ~19 s to compile.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
