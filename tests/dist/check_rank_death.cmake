# A rank that dies takes the job down with a message naming it, and leaves no half-written
# checkpoint (docs/distributed.md, "A rank that dies"). Runs steep-dist-probe under mpirun for 5
# steps, saving a checkpoint after each, with one rank dying at step 3 (ARGS say how), and checks:
#   - mpirun exits with a non-zero status, within the test's time (no rank left waiting);
#   - its output matches each regular expression of EXPECT (the rank, named) and none of REJECT;
#   - the checkpoint holds the last complete save: it loads, at step STEP;
#   - with TEMP set (rank 0 killed inside the save, its temporary file half written): the
#     temporary file lies beside the checkpoint, shorter, and the next save removes it.
#
#   cmake -DMPIEXEC=mpiexec "-DLAUNCH=-n;3;--oversubscribe" -DPROBE=steep-dist-probe -DDIR=out
#         "-DARGS=--die-rank;1;--die-at;3;--die-how;kill" "-DEXPECT=process rank 1 .*signal 9" -DSTEP=3
#         -P check_rank_death.cmake
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
set(ckpt "${DIR}/run.ckpt")
execute_process(COMMAND ${MPIEXEC} ${LAUNCH} ${PROBE} --steps 5 --checkpoint ${ckpt} ${ARGS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 90)
set(all "${out}\n${err}")
if(NOT rc MATCHES "^[0-9]+$" OR rc EQUAL 0)
  message(FATAL_ERROR "mpirun did not end with a non-zero status: '${rc}'\n${all}")
endif()
foreach(e IN LISTS EXPECT)
  if(NOT all MATCHES "${e}")
    message(FATAL_ERROR "mpirun's output does not match '${e}':\n${all}")
  endif()
endforeach()
foreach(e IN LISTS REJECT)
  if(all MATCHES "${e}")
    message(FATAL_ERROR "mpirun's output matches '${e}':\n${all}")
  endif()
endforeach()
execute_process(COMMAND ${PROBE} --verify ${ckpt} RESULT_VARIABLE vrc OUTPUT_VARIABLE vout ERROR_VARIABLE verr)
if(NOT vrc EQUAL 0 OR NOT vout MATCHES "checkpoint step ${STEP}\n")
  message(FATAL_ERROR "the checkpoint is not the complete save of step ${STEP}: ${vrc}\n${vout}${verr}")
endif()
file(GLOB temps "${ckpt}.tmp.*")
if(TEMP)
  list(LENGTH temps n)
  file(SIZE "${ckpt}" whole)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "expected the dead save's one temporary file beside the checkpoint, found: ${temps}")
  endif()
  file(SIZE "${temps}" part)
  if(NOT part LESS whole)
    message(FATAL_ERROR "the dead save's temporary file (${part} bytes) is not shorter than the checkpoint (${whole})")
  endif()
  # The next save (one process) removes the temporary files of dead processes.
  execute_process(COMMAND ${PROBE} --steps 1 --checkpoint ${ckpt} RESULT_VARIABLE src ERROR_VARIABLE serr)
  file(GLOB left "${ckpt}.tmp.*")
  if(NOT src EQUAL 0 OR left)
    message(FATAL_ERROR "the next save (${src}) left: ${left}\n${serr}")
  endif()
  message(STATUS "the dead save's temporary file: ${part} of ${whole} bytes, removed by the next save")
elseif(temps)
  message(FATAL_ERROR "temporary files beside the checkpoint: ${temps}")
endif()
message(STATUS "mpirun exited with ${rc}; the checkpoint holds step ${STEP}\n${all}")
