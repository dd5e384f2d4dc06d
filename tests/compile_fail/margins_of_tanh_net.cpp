// Margins of a non-homogeneous network are meaningless (gamma_N = q_min / N^L needs L): one
// readable error.
// EXPECT: normalized margins need a positively homogeneous graph
#include <steep/train/margins.hpp>

using net = steep::model::sequential<steep::model::linear, steep::model::tanh_act, steep::model::linear>;
int n = sizeof(steep::train::margin_meter<net, double>);
