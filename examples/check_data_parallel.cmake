# Runs the main job in one process (RUN_1, --json OUT_1) and data-parallel over RANKS ranks (RUN_W,
# --json OUT_W) with the same --shards, then checks that every optimizer ended at the same bits
# (theta_fnv1a, the hash of its final parameters) with the same trajectory, margins, KKT
# certificates, loss and block norms, digit for digit (JSON numbers round-trip doubles): the
# shards' gradients are added in shard order on every rank (dist/sharded_full_batch.hpp).
#
#   cmake "-DRUN_1=implicit_bias;--shards;4;--json;a.json" "-DRUN_W=mpiexec;-n;2;implicit_bias;...;--json;b.json"
#         -DOUT_1=a.json -DOUT_W=b.json -DRANKS=2 -P check_data_parallel.cmake
foreach(run RUN_1 RUN_W)
  execute_process(COMMAND ${${run}} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "'${${run}}' failed (${rc}):\n${out}\n${err}")
  endif()
endforeach()
file(READ ${OUT_1} one)
file(READ ${OUT_W} many)
string(JSON ranks GET "${many}" settings ranks)
if(NOT ranks EQUAL RANKS)
  message(FATAL_ERROR "the data-parallel run ran on ${ranks} rank(s), not ${RANKS}")
endif()
string(JSON count LENGTH "${one}" optimizers)
math(EXPR last "${count} - 1")
foreach(k RANGE ${last})
  string(JSON opt MEMBER "${one}" optimizers ${k})
  foreach(key theta_fnv1a trajectory kkt l2 linf spectral hybrid log10_loss errors blocks)
    string(JSON a GET "${one}" optimizers ${opt} ${key})
    string(JSON b GET "${many}" optimizers ${opt} ${key})
    if(NOT a STREQUAL b)
      message(FATAL_ERROR "${opt}, ${key}: ${a} in one process, ${b} over ${RANKS} ranks")
    endif()
  endforeach()
endforeach()
message(STATUS "${count} optimizers: the same bits in one process and over ${RANKS} ranks")
