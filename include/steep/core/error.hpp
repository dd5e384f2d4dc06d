#pragma once
// steep::error — the one exception type steep throws for bad input.
//
//   throw steep::error("W1", "gradient has shape (3, 4), expected (4, 3)");
//   // what(): "steep: block 'W1': gradient has shape (3, 4), expected (4, 3)"
//   throw steep::lapack_error("dpotrf", 3, "...");   // a LAPACK routine's failure, with its info
//
// Every error names the block (or the slot / hyperparameter) and the problem, so a user with
// hundreds of tensors knows which one to look at (docs/design.md, "Conventions"). Whoever throws it
// must leave parameters and optimizer state as they were.

#include <stdexcept>
#include <string>

namespace steep {

class error : public std::invalid_argument {
public:
  // `subject` names what is wrong ("W1", "slot 'exp_avg'", "manifest"); `problem` says how.
  // Cold: only ever on a refusal, so every unit compiles it small (docs/compile-time.md).
  [[gnu::cold]] error(const std::string& subject, const std::string& problem)
    : std::invalid_argument("steep: " + quote(subject) + ": " + problem)
    , subject_(subject) {}

  const std::string& subject() const noexcept { return subject_; }

private:
  static std::string quote(const std::string& s) { return "block '" + s + "'"; }
  std::string subject_;
};

// For errors that are not about one block (a rule, a file, a hyperparameter).
class usage_error : public std::invalid_argument {
public:
  explicit usage_error(const std::string& what)
    : std::invalid_argument("steep: " + what) {}
};

// A LAPACK routine that reported failure through its `info` argument: a matrix it cannot factor
// (Cholesky of a matrix that is not positive definite) or an iteration that did not converge.
// what() names the routine, `info` and what it means for that routine and matrix
// (kernel/lapack.hpp). A runtime_error, not a usage error: the matrix is usually the optimizer's
// own state, not something the caller passed by mistake.
class lapack_error : public std::runtime_error {
public:
  [[gnu::cold]] lapack_error(const std::string& routine, int info, const std::string& problem)
    : std::runtime_error("steep: LAPACK " + routine + " failed (info " + std::to_string(info) +
                         "): " + problem)
    , routine_(routine)
    , info_(info) {}

  const std::string& routine() const noexcept { return routine_; }
  int info() const noexcept { return info_; }

private:
  std::string routine_;
  int info_;
};

} // namespace steep
