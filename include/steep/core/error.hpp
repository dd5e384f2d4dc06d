#pragma once
// steep::error — the one exception type steep throws for bad input.
//
//   throw steep::error("W1", "gradient has shape (3, 4), expected (4, 3)");
//   // what(): "steep: block 'W1': gradient has shape (3, 4), expected (4, 3)"
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

} // namespace steep
