# Runs CMD with ARGS (one string, split as a shell would) and passes only when the program refuses:
# it exits with a status that is a plain non-zero number, and its stderr matches EXPECT. A crash is
# no refusal: execute_process reports a signal as its name ("Segmentation fault"), and a number
# above 127 is what a wrapper reports for one.
#
#   cmake -DCMD=prog -DARGS="--steps 0" -DEXPECT="--steps: must be" -P check_refusal.cmake
separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND ${CMD} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc MATCHES "^[0-9]+$" OR rc EQUAL 0 OR rc GREATER 127)
  message(FATAL_ERROR "'${CMD} ${ARGS}' did not refuse with an exit status: got '${rc}'\n"
                      "stdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT err MATCHES "${EXPECT}")
  message(FATAL_ERROR "'${CMD} ${ARGS}' exited with ${rc}, but its stderr does not match '${EXPECT}'\n"
                      "stdout:\n${out}\nstderr:\n${err}")
endif()
message(STATUS "refused with exit status ${rc}: ${err}")
