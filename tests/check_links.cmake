# Every relative link and image in README.md and docs/**.md resolves to a file or folder of the
# repository (web links and in-page anchors are not followed). A moved or renamed document then
# fails the tests instead of leaving a dead link.
#
#   cmake -DROOT=/path/to/steep -P tests/check_links.cmake
cmake_minimum_required(VERSION 3.20)
file(GLOB_RECURSE docs RELATIVE ${ROOT} ${ROOT}/docs/*.md)
set(bad "")
set(count 0)
foreach(doc README.md ${docs})
  get_filename_component(dir ${ROOT}/${doc} DIRECTORY)
  file(READ ${ROOT}/${doc} text)
  # Code spans and fences can hold brackets that are not links: drop them first.
  string(REGEX REPLACE "```[^`]*```" "" text "${text}")
  string(REGEX REPLACE "`[^`\n]*`" "" text "${text}")
  # (A bracket in a list element keeps CMake from splitting the list there: mark links without one.)
  string(REPLACE "](" "%%LINK%%(" text "${text}")
  string(REPLACE "[" "" text "${text}")
  string(REPLACE "]" "" text "${text}")
  string(REGEX MATCHALL "%%LINK%%\\([^)# ]+[^) ]*\\)" links "${text}")
  foreach(link ${links})
    string(REGEX REPLACE "^%%LINK%%\\(([^)# ]+).*\\)$" "\\1" target "${link}")
    if(target MATCHES "^[a-z]+:")
      continue() # http:, https:, mailto:
    endif()
    math(EXPR count "${count} + 1")
    if(NOT EXISTS ${dir}/${target})
      string(APPEND bad "\n  ${doc}: ${target}")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "links that resolve to nothing:${bad}")
endif()
message(STATUS "all ${count} relative links of README.md and docs/ resolve")
