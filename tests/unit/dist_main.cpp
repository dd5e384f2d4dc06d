// Catch2's main for the MPI tests: MPI starts before any test and ends after all of them (an
// mpi_session around the run), and every rank runs every test case in the same order, so the
// collectives match. A rank's failure is its exit code; mpirun reports the first one.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <steep/dist/mpi.hpp>

int main(int argc, char** argv) {
  steep::dist::mpi_session session(&argc, &argv);
  return Catch::Session().run(argc, argv);
}
