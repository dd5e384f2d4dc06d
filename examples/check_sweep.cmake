# Runs a sweep in one process (RUN_1, into DIR_1) and over W ranks (RUN_W, into DIR_W), then checks
# that every cell's record has the same final margins in every norm, and the same KKT alignment,
# for every optimizer, to the last printed digit (JSON numbers round-trip doubles): the grid's runs
# do not depend on how many ranks share them (examples/implicit_bias.cpp, the sweep).
#
#   cmake "-DRUN_1=implicit_bias;--preset;smoke;--sweep;a" "-DRUN_W=mpiexec;-n;2;implicit_bias;...;--sweep;b"
#         -DDIR_1=a -DDIR_W=b -DCELLS=4 "-DOPTIMIZERS=gd;signum" -P check_sweep.cmake
foreach(run RUN_1 RUN_W)
  execute_process(COMMAND ${${run}} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "'${${run}}' failed (${rc}):\n${out}\n${err}")
  endif()
endforeach()
math(EXPR last "${CELLS} - 1")
foreach(k RANGE ${last})
  file(READ ${DIR_1}/cell-${k}.json one)
  file(READ ${DIR_W}/cell-${k}.json many)
  string(JSON ranks GET "${many}" sweep ranks)
  if(NOT ranks EQUAL 2)
    message(FATAL_ERROR "cell ${k}: the sweep ran on ${ranks} rank(s), not 2")
  endif()
  foreach(opt ${OPTIMIZERS})
    foreach(norm l2 linf spectral hybrid)
      foreach(key "${norm}" "kkt;${norm};rho")
        string(JSON a GET "${one}" optimizers ${opt} ${key})
        string(JSON b GET "${many}" optimizers ${opt} ${key})
        if(NOT a STREQUAL b)
          message(FATAL_ERROR "cell ${k}, ${opt}, ${key}: ${a} in one process, ${b} over 2 ranks")
        endif()
      endforeach()
    endforeach()
  endforeach()
endforeach()
message(STATUS "${CELLS} cells: every margin the same in one process and over 2 ranks")
