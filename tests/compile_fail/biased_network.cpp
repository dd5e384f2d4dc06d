// A biased (affine) layer in a network steep trains: one readable error.
// EXPECT: steep's models are bias-free
#include <steep/model/network.hpp>

using net = steep::model::sequential<steep::model::affine, steep::model::relu, steep::model::linear>;
steep::model::network<net, double>* p = nullptr;
int n = sizeof(steep::model::network<net, double>);
