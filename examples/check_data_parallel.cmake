# Runs the main job in one process (RUN_1, --json OUT_1) and data-parallel over RANKS ranks (RUN_W,
# --json OUT_W) with the same --shards, then checks that every optimizer ended at the same bits
# (theta_fnv1a, the hash of its final parameters) with the same trajectory, margins, KKT
# certificates, loss and block norms, digit for digit (JSON numbers round-trip doubles): the
# shards' gradients are added in shard order on every rank (dist/sharded_full_batch.hpp).
#
#   cmake "-DRUN_1=implicit_bias;--shards;4;--json;a.json" "-DRUN_W=mpiexec;-n;2;implicit_bias;...;--json;b.json"
#         -DOUT_1=a.json -DOUT_W=b.json -DRANKS=2 -P check_data_parallel.cmake
include(${CMAKE_CURRENT_LIST_DIR}/same_runs.cmake)
run_each(RUN_1 RUN_W)
file(READ ${OUT_1} one)
file(READ ${OUT_W} many)
string(JSON ranks GET "${many}" settings ranks)
if(NOT ranks EQUAL RANKS)
  message(FATAL_ERROR "the data-parallel run ran on ${ranks} rank(s), not ${RANKS}")
endif()
require_same_optimizers("${one}" "${many}" "" "over ${RANKS} ranks" theta_fnv1a trajectory kkt l2 linf spectral
                        hybrid log10_loss errors blocks)
string(JSON count LENGTH "${one}" optimizers)
message(STATUS "${count} optimizers: the same bits in one process and over ${RANKS} ranks")
