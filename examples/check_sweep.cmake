# Runs a sweep in one process (RUN_1, into DIR_1) and over 2 ranks (RUN_W, into DIR_W), then checks
# that every cell's record has, for every optimizer, the same final parameters (theta_fnv1a), margins
# in every norm and KKT certificates, to the last digit (JSON numbers round-trip doubles): the grid's
# runs do not depend on how many ranks share them (examples/implicit_bias.cpp, the sweep).
#
#   cmake "-DRUN_1=implicit_bias;--preset;smoke;--sweep;a" "-DRUN_W=mpiexec;-n;2;implicit_bias;...;--sweep;b"
#         -DDIR_1=a -DDIR_W=b -DCELLS=4 -P check_sweep.cmake
include(${CMAKE_CURRENT_LIST_DIR}/same_runs.cmake)
run_each(RUN_1 RUN_W)
math(EXPR last "${CELLS} - 1")
foreach(k RANGE ${last})
  file(READ ${DIR_1}/cell-${k}.json one)
  file(READ ${DIR_W}/cell-${k}.json many)
  string(JSON ranks GET "${many}" sweep ranks)
  if(NOT ranks EQUAL 2)
    message(FATAL_ERROR "cell ${k}: the sweep ran on ${ranks} rank(s), not 2")
  endif()
  require_same_optimizers("${one}" "${many}" "cell ${k}, " "over 2 ranks" theta_fnv1a l2 linf spectral hybrid kkt)
endforeach()
message(STATUS "${CELLS} cells: every margin the same in one process and over 2 ranks")
