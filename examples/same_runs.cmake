# What check_sweep.cmake and check_data_parallel.cmake share: running the commands, and comparing
# two JSON records of implicit_bias (docs/main-job-json.md) optimizer by optimizer.
#
#   include(same_runs.cmake)
#   run_each(RUN_1 RUN_W)                    # each variable a command line (a list); fails loudly
#   require_same_optimizers("${one}" "${many}" "cell 3" "2 ranks" theta_fnv1a kkt l2)

# Runs the command held by each named variable; a non-zero exit fails with its output.
function(run_each)
  foreach(run ${ARGN})
    execute_process(COMMAND ${${run}} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "'${${run}}' failed (${rc}):\n${out}\n${err}")
    endif()
  endforeach()
endfunction()

# Every optimizer of record `one` has, under each key after the fourth argument, the same JSON text
# in record `many` (JSON numbers round-trip doubles, so the same text is the same bits); `where`
# and `how` (how `many` ran) name a difference.
function(require_same_optimizers one many where how)
  string(JSON count LENGTH "${one}" optimizers)
  math(EXPR last "${count} - 1")
  foreach(k RANGE ${last})
    string(JSON opt MEMBER "${one}" optimizers ${k})
    foreach(key ${ARGN})
      string(JSON a GET "${one}" optimizers ${opt} ${key})
      string(JSON b GET "${many}" optimizers ${opt} ${key})
      if(NOT a STREQUAL b)
        message(FATAL_ERROR "${where}${opt}, ${key}: ${a} in one process, ${b} ${how}")
      endif()
    endforeach()
  endforeach()
endfunction()
