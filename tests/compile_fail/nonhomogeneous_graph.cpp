// A graph with tanh is not positively homogeneous: asking for its degree must not compile, and the
// message must say why (docs/main-job.md, the pieces).
// EXPECT: this graph is not positively homogeneous
#include <steep/model/graph.hpp>

using net = steep::model::sequential<steep::model::linear, steep::model::tanh_act, steep::model::linear>;
constexpr int L = steep::degree_v<net>;
