# ctest -P script: install steep from the build tree into a scratch prefix, then configure,
# build and run tests/consumer against it (find_package(steep) from the install).
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${STEEP_BUILD_DIR} --prefix ${prefix} --component Unspecified
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "install failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -DCMAKE_BUILD_TYPE=Release
                        -DCMAKE_PREFIX_PATH=${prefix} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer against the installed steep failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed")
endif()
# steep::precompiled must have given the consumer a precompiled header.
file(GLOB_RECURSE pch ${WORK_DIR}/build/*.gch)
if(NOT pch)
  message(FATAL_ERROR "steep::precompiled gave the consumer no precompiled header")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer ran but its result was wrong")
endif()
