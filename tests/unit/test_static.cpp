// Compile-time checks of the compiler's analysis: if this file compiles, the laws hold.
// The compiler derives, at compile time, the list of state slots, the per-step scalars to hoist
// and the phases (docs/design.md, "What the compiler derives from a rule's type").

#include <catch2/catch.hpp>
#include <steep/steep.hpp>

using namespace steep::expr;
namespace rules = steep::rules;

template <class R>
using prog = program<R>;

// Adam: two slots, children before parents, one pass, 28 bytes per float parameter.
using adam_p = prog<decltype(rules::adam(1e-3))>;
static_assert(adam_p::n_slots == 2);
static_assert(adam_p::slot_name(0) == "exp_avg" && adam_p::slot_name(1) == "exp_avg_sq");
static_assert(adam_p::passes == 1 && adam_p::n_reductions == 0 && adam_p::n_block_scalars == 0);
static_assert(adam_p::bytes_per_param<float> == 28, "Adam moves p, g, m, v in and p, m, v out");
static_assert(adam_p::reads_grad);
// The engine's evaluation context fulfils the contract the grammar evaluates against (expr/node.hpp).
static_assert(eval_context<steep::engine::eval_ctx<steep::kernel::batch<float>, adam_p>>);
static_assert(
  eval_context<steep::engine::eval_ctx<steep::kernel::batch<double>, prog<decltype(rules::normuon(0.02))>>>);

// AMSGrad: the max slot comes after the second moment it reads.
using ams_p = prog<decltype(rules::amsgrad(1e-3))>;
static_assert(ams_p::n_slots == 3 && ams_p::slot_name(1) == "exp_avg_sq" &&
              ams_p::slot_name(2) == "max_exp_avg_sq");
static_assert(ams_p::index_of<"max_exp_avg_sq"> == 2);

// Lion's momentum is only read through prev(), and still owned and stored.
using lion_p = prog<decltype(rules::lion(1e-4))>;
static_assert(lion_p::n_slots == 1 && lion_p::bytes_per_param<float> == 20);

// Signum / momentum: 20 bytes per float parameter (p, g, m in; p, m out).
static_assert(prog<decltype(rules::signum(1e-2))>::bytes_per_param<float> == 20);
static_assert(prog<decltype(rules::momentum(1e-2, 0.9))>::bytes_per_param<float> == 20);

// SGD has no state and one hoisted scalar (-lr).
using sgd_p = prog<decltype(rules::sgd(0.1))>;
static_assert(sgd_p::n_slots == 0 && sgd_p::n_step_scalars == 1);

// Compile-time constants are folded, not hoisted.
static_assert(prog<decltype(ct<-0.1> * grad)>::n_step_scalars == 0);

// Normalized GD: a reduction splits the step into two passes; the norm is a per-block scalar
// (max(sqrt(sum of squares), floor): each level-1 node keeps its own table entry).
using ngd_p = prog<decltype(rules::normalized_gd(0.1))>;
static_assert(ngd_p::passes == 2 && ngd_p::n_reductions == 1 && ngd_p::n_block_scalars == 3);
static_assert(ngd_p::max_depth == 0 && ngd_p::reductions_at<false, 0> == 1);

// Levels: hyperparameters and beta^t are per-step, norms per-block, the rest per-element.
static_assert(decltype(1.0 - pow(constant(0.9), step))::level == 0);
static_assert(decltype(norm2(grad))::level == 1);
static_assert(decltype(grad * norm2(grad))::level == 2);

// Lines: per-row and per-column values; arithmetic of a line with scalars is a line, with an
// elementwise value it is elementwise.
static_assert(decltype(row_sum(grad))::level == 2 && decltype(row_sum(grad))::line == rows_line);
static_assert(decltype(1.0 / (sqrt(col_sum(grad)) + 1e-8))::line == cols_line);
static_assert(decltype(grad * row_sum(grad))::line == not_a_line);
static_assert(decltype(row_sum(grad) + col_sum(grad))::line == not_a_line);
static_assert(decltype(ema<"v">(row_mean(square(grad)), 0.9))::line == rows_line);
static_assert(decltype(ema<"v">(slice_mean(square(grad), 4, 8), 0.9))::line == slices_line);
static_assert(decltype(sqrt(slice_sum(grad, 1, 8)) * 2.0)::line == slices_line);
static_assert(decltype(ema<"v">(block_mean(square(grad)), 0.9))::per_block);

// Reduction depths: AdaMuon's norm after the matrix phase; NorMuon's row mean square of the
// polar factor at depth 1 and the norm of the row-normalized factor, which reads it, at 2.
using adamuon_p = prog<decltype(rules::adamuon(0.02))>;
static_assert(adamuon_p::max_depth == 1 && adamuon_p::reductions_at<false, 1> == 1 && adamuon_p::passes == 3);
using normuon_p = prog<decltype(rules::normuon(0.02))>;
static_assert(normuon_p::max_depth == 2 && normuon_p::reductions_at<true, 1> == 1 &&
              normuon_p::reductions_at<false, 1> == 1 && normuon_p::reductions_at<false, 2> == 1);
static_assert(normuon_p::passes == 5);

TEST_CASE("the compile-time analysis holds (see static_asserts in this file)") { SUCCEED(); }
