# steep's traffic counters against Open MPI's own monitoring, to the byte (docs/distributed.md,
# "Bytes against Open MPI's monitoring"). Runs steep-dist-probe twice under mpirun with the
# monitoring on (pml_monitoring_enable 2: point-to-point and collective traffic apart; the coll
# monitoring component comes with it), for 1 and for 3 steps, and checks on every rank:
#   1. the "steep" communicator's A2A bytes and messages (coll monitoring: what the collectives
#      were asked to send, whatever the algorithm) equal steep's counters, for the whole run;
#   2. one step's reduce-scatter plus all-gather equals (Psi - c_r) b + c_r (W - 1) b, which is
#      2 (W-1)/W Psi b when the split is even; and the ranks' mean is 2 (W-1)/W Psi b for any split;
#   3. per peer, two steps' coll bytes (the "C" lines, 3 steps minus 1) equal the probe's payload;
#   4. per peer, two steps' wire bytes (the point-to-point "I" lines) equal what Open MPI 4.1's
#      algorithms send (the probe's model: libnbc's binomial-reduce-then-scatter reduce-scatter,
#      linear all-gather, tuned's recursive-doubling all-reduce, forced below).
# Steps are differenced so that MPI_Comm_dup's agreement (on MPI_COMM_WORLD) and the optimizer's
# construction drop out.
#
#   cmake -DMPIEXEC=mpiexec "-DLAUNCH=-n;4;--oversubscribe" -DPROBE=steep-dist-probe -DRULE=adam
#         -DDIR=out -P check_traffic.cmake
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
foreach(steps 1 3)
  file(MAKE_DIRECTORY "${DIR}/s${steps}")
  execute_process(
    COMMAND ${MPIEXEC} ${LAUNCH} --mca pml_monitoring_enable 2 --mca pml_monitoring_enable_output 3
            --mca pml_monitoring_filename ${DIR}/s${steps}/prof
            --mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 3
            ${PROBE} --rule ${RULE} --steps ${steps} --report ${DIR}/s${steps}/steep
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "mpirun (${steps} steps) failed: ${rc}\n${out}\n${err}")
  endif()
endforeach()

# What the regular expression `re` captures in `text` (a newline before its first line), into the
# variables named after `what` (which names it in the error).
function(capture text re what)
  if(NOT "\n${text}" MATCHES "${re}")
    message(FATAL_ERROR "no ${what} in:\n${text}")
  endif()
  set(i 1)
  foreach(var IN LISTS ARGN)
    set(${var} ${CMAKE_MATCH_${i}} PARENT_SCOPE)
    math(EXPR i "${i} + 1")
  endforeach()
endfunction()
# The number after `key` on its line of a probe's report.
function(field text key var)
  capture("${text}" "\n${key} ([0-9]+)" "'${key}'" n)
  set(${var} ${n} PARENT_SCOPE)
endfunction()
set(sent "\t([0-9]+) bytes\t([0-9]+) msgs sent")
# The steep communicator's block: "D\tsteep\tprocs: ..." then O2A, A2O (none), A2A.
set(steep_block "\nD\tsteep\tprocs: [0-9,]+\nO2A\t[0-9]+\t0 bytes\t0 msgs sent\nA2O\t[0-9]+\t0 bytes\t0 msgs sent\nA2A\t[0-9]+${sent}")

file(READ "${DIR}/s1/steep.0.txt" r0)
field("${r0}" ranks w)
field("${r0}" arena psi) # (Psi: the arena, blocks padded to 64 bytes, as the collectives move it)
field("${r0}" bytes_per_element b)
math(EXPR last "${w} - 1")
set(sum_step 0)
set(report "")
foreach(r RANGE ${last})
  file(READ "${DIR}/s1/steep.${r}.txt" s1)
  file(READ "${DIR}/s3/steep.${r}.txt" s3)
  file(READ "${DIR}/s1/prof.${r}.prof" p1)
  file(READ "${DIR}/s3/prof.${r}.prof" p3)
  # 1. the whole run: Open MPI's count of steep's communicator against steep's counters
  foreach(run 1 3)
    field("${s${run}}" bytes steep_bytes)
    field("${s${run}}" messages steep_msgs)
    capture("${p${run}}" "${steep_block}" "'steep' communicator with A2A traffic only" ompi_bytes ompi_msgs)
    if(NOT steep_bytes EQUAL ompi_bytes OR NOT steep_msgs EQUAL ompi_msgs)
      message(FATAL_ERROR "rank ${r}, ${run} step(s): steep counted ${steep_bytes} bytes in ${steep_msgs} "
                          "collectives, Open MPI's coll monitoring ${ompi_bytes} bytes in ${ompi_msgs}")
    endif()
    string(APPEND report "rank ${r}, ${run} step(s): steep ${steep_bytes} B / ${steep_msgs} collectives = "
                         "monitoring A2A ${ompi_bytes} B / ${ompi_msgs}\n")
  endforeach()
  # 2. one step's reduce-scatter + all-gather against the formula
  field("${s1}" my_count c)
  field("${s1}" step_payload_bytes step)
  math(EXPR expect "(${psi} - ${c}) * ${b} + ${c} * (${w} - 1) * ${b}")
  if(NOT step EQUAL expect)
    message(FATAL_ERROR "rank ${r}: one step sent ${step} bytes by steep's counters; (Psi - c_r) b + "
                        "c_r (W-1) b = ${expect}")
  endif()
  math(EXPR sum_step "${sum_step} + ${step}")
  string(APPEND report "rank ${r}: one step's reduce-scatter + all-gather ${step} B = (Psi - c_r) b + c_r (W-1) b\n")
  # 3 and 4. per peer, two steps (3 minus 1)
  foreach(q RANGE ${last})
    if(q EQUAL r)
      continue()
    endif()
    capture("${s1}" "\npeer ${q} payload ([0-9]+) wire ([0-9]+)" "peer ${q}" payload wire)
    foreach(kind C I)
      capture("${p1}" "\n${kind}\t${r}\t${q}${sent}" "line '${kind} ${r} ${q}'" b1)
      capture("${p3}" "\n${kind}\t${r}\t${q}${sent}" "line '${kind} ${r} ${q}'" b3)
      math(EXPR got "${b3} - ${b1}")
      if(kind STREQUAL "C")
        math(EXPR want "2 * ${payload}")
        set(what "collective payload (coll monitoring)")
      else()
        math(EXPR want "2 * ${wire}")
        set(what "wire bytes (pml monitoring)")
      endif()
      if(NOT got EQUAL want)
        message(FATAL_ERROR "rank ${r} -> ${q}, two steps: ${what} ${got} bytes, expected ${want}")
      endif()
      string(APPEND report "rank ${r} -> ${q}, two steps: ${what} ${got} B = expected\n")
    endforeach()
  endforeach()
endforeach()
# The formula: the mean over ranks of one step is 2 (W-1)/W Psi b, for any split.
math(EXPR formula_sum "2 * (${w} - 1) * ${psi} * ${b}")
if(NOT sum_step EQUAL formula_sum)
  message(FATAL_ERROR "the ranks' steps sum to ${sum_step} bytes; W * 2 (W-1)/W Psi b = ${formula_sum}")
endif()
message(STATUS "W = ${w}, Psi = ${psi}, b = ${b}: the ranks' step bytes sum to ${sum_step} = 2 (W-1) Psi b\n${report}")
