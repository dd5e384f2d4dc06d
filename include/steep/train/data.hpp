#pragma once
// Datasets for margin experiments: a synthetic separable generator, MNIST-format files, the
// paper's binary task, balanced subsets and per-sample normalization.
//
//   auto d = steep::train::synthetic_separable<double>({.samples = 200, .dim = 50, .seed = 1});
//   auto f = steep::train::load_idx<double>(images_path, labels_path);     // 10 classes
//   auto b = steep::train::balanced_subset(steep::train::parity_task(f), 500, seed);  // 500 + 500
//   steep::train::normalize_rows(b);                                        // ||x_i||_2 = 1
//
// A dataset is row-major x (n x dim) with integer labels: +1 / -1 for a binary task (one model
// output), a class index for a multiclass one (loss.hpp). Everything is deterministic in its seed.
// Fashion-MNIST comes from Debian's dataset-fashion-mnist package (installed by
// scripts/install-deps.sh) at fashion_mnist_dir.

#include "steep/core/error.hpp"
#include "steep/io/idx.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace steep::train {

inline constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

template <class T>
struct dataset {
  std::vector<T> x;        // n x dim, row-major
  std::vector<int> labels; // +-1 (binary) or class index
  std::size_t dim = 0;
  std::size_t classes = 1; // 1: binary with +-1 labels
  std::size_t size() const { return labels.size(); }
  const T* row(std::size_t i) const { return x.data() + i * dim; }
};

struct synthetic_options {
  std::size_t samples = 200;
  std::size_t dim = 50;
  double gap = 0.1; // every |<w*, x_i>| / ||x_i|| >= gap: separable with a margin
  std::uint64_t seed = 1;
};

// x ~ N(0, I) rescaled to the unit sphere, y = sign(<w*, x>) for a random unit teacher w*, keeping
// only points at least `gap` from the teacher's hyperplane: linearly separable with margin >= gap,
// so every homogeneous net that can represent a sign-preserving function of <w*, x> separates it.
template <class T>
dataset<T> synthetic_separable(const synthetic_options& o) {
  if (o.samples == 0 || o.dim == 0 || !(o.gap >= 0 && o.gap < 0.5))
    throw usage_error("synthetic_separable: needs samples > 0, dim > 0 and 0 <= gap < 0.5");
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> n01;
  std::vector<double> w(o.dim), xi(o.dim);
  double wn = 0;
  for (auto& v : w)
    v = n01(rng), wn += v * v;
  for (auto& v : w)
    v /= std::sqrt(wn);
  dataset<T> d;
  d.dim = o.dim;
  // A gap that almost no point clears (large dim, large gap) would loop for ever: give up loudly.
  const std::size_t max_draws = 1000 * o.samples + 100000;
  for (std::size_t draws = 0; d.size() < o.samples; ++draws) {
    if (draws == max_draws)
      throw usage_error("synthetic_separable: after " + std::to_string(draws) + " draws only " +
                        std::to_string(d.size()) + " points cleared gap " + std::to_string(o.gap) +
                        " in dim " + std::to_string(o.dim) + "; use a smaller gap");
    double nn = 0, dot = 0;
    for (std::size_t j = 0; j < o.dim; ++j)
      xi[j] = n01(rng), nn += xi[j] * xi[j];
    nn = std::sqrt(nn);
    for (std::size_t j = 0; j < o.dim; ++j)
      dot += w[j] * xi[j] / nn;
    if (std::abs(dot) < o.gap)
      continue;
    for (std::size_t j = 0; j < o.dim; ++j)
      d.x.push_back(static_cast<T>(xi[j] / nn));
    d.labels.push_back(dot > 0 ? 1 : -1);
  }
  return d;
}

// Images (bytes scaled to [0, 1]) and class labels from IDX files (plain or .gz).
template <class T>
dataset<T> load_idx(const std::string& images, const std::string& labels) {
  const io::idx_array im = io::read_idx(images), lb = io::read_idx(labels);
  if (lb.dims.size() != 1)
    throw usage_error("load_idx: '" + labels + "' is not a 1-D label file (" +
                      std::to_string(lb.dims.size()) + " dimensions)");
  if (im.count() != lb.count())
    throw usage_error("load_idx: '" + labels + "' has " + std::to_string(lb.count()) + " labels for " +
                      std::to_string(im.count()) + " images in '" + images + "'");
  dataset<T> d;
  d.dim = im.row_size();
  d.x.resize(im.data.size());
  for (std::size_t i = 0; i < im.data.size(); ++i)
    d.x[i] = static_cast<T>(im.data[i] / 255.0);
  int max_label = 0;
  for (auto v : lb.data)
    d.labels.push_back(v), max_label = std::max<int>(max_label, v);
  d.classes = static_cast<std::size_t>(max_label) + 1;
  return d;
}

// Fashion-MNIST's training or test split from fashion_mnist_dir (or another directory).
template <class T>
dataset<T> load_fashion_mnist(bool train = true, const std::string& dir = fashion_mnist_dir) {
  const std::string p = dir + (train ? "/train" : "/t10k");
  return load_idx<T>(p + "-images-idx3-ubyte.gz", p + "-labels-idx1-ubyte.gz");
}

// The paper's binary task: label +1 for an even class index, -1 for an odd one.
template <class T>
dataset<T> parity_task(dataset<T> d) {
  if (d.classes < 2)
    throw usage_error("parity_task: needs a multiclass dataset (class indices)");
  for (auto& y : d.labels)
    y = (y % 2 == 0) ? 1 : -1;
  d.classes = 1;
  return d;
}

// per_class samples of each of the binary labels +1 and -1, chosen at random (seeded), in an
// order that alternates +1, -1. Refuses when a class has too few samples.
template <class T>
dataset<T> balanced_subset(const dataset<T>& d, std::size_t per_class, std::uint64_t seed) {
  if (d.classes != 1)
    throw usage_error("balanced_subset: needs a binary (+1/-1) dataset; apply parity_task first");
  std::vector<std::size_t> pos, neg;
  for (std::size_t i = 0; i < d.size(); ++i)
    (d.labels[i] > 0 ? pos : neg).push_back(i);
  if (pos.size() < per_class || neg.size() < per_class)
    throw usage_error("balanced_subset: asked for " + std::to_string(per_class) +
                      " per class, but the data has " + std::to_string(pos.size()) + " positive and " +
                      std::to_string(neg.size()) + " negative");
  std::mt19937_64 rng(seed);
  std::shuffle(pos.begin(), pos.end(), rng);
  std::shuffle(neg.begin(), neg.end(), rng);
  dataset<T> s;
  s.dim = d.dim;
  s.classes = 1;
  for (std::size_t k = 0; k < per_class; ++k)
    for (std::size_t i : { pos[k], neg[k] }) {
      s.x.insert(s.x.end(), d.row(i), d.row(i) + d.dim);
      s.labels.push_back(d.labels[i]);
    }
  return s;
}

// k x k average pooling of square side x side images (side divisible by k): 28 x 28 Fashion-MNIST
// with k = 4 is 7 x 7, a 16x cheaper input layer for quick experiments.
template <class T>
dataset<T> average_pool(const dataset<T>& d, std::size_t side, std::size_t k) {
  if (k == 0 || side * side != d.dim || side % k != 0)
    throw usage_error("average_pool: needs images of side x side = " + std::to_string(d.dim) +
                      " pixels with side divisible by k = " + std::to_string(k));
  const std::size_t out = side / k;
  dataset<T> p;
  p.dim = out * out;
  p.classes = d.classes;
  p.labels = d.labels;
  p.x.assign(d.size() * p.dim, T(0));
  for (std::size_t i = 0; i < d.size(); ++i)
    for (std::size_t r = 0; r < side; ++r)
      for (std::size_t c = 0; c < side; ++c)
        p.x[i * p.dim + (r / k) * out + c / k] += static_cast<T>(d.row(i)[r * side + c] / double(k * k));
  return p;
}

// Scales every sample to unit l2 norm (an all-zero sample is an error: it cannot be separated).
template <class T>
void normalize_rows(dataset<T>& d) {
  for (std::size_t i = 0; i < d.size(); ++i) {
    T* r = d.x.data() + i * d.dim;
    double s = 0;
    for (std::size_t j = 0; j < d.dim; ++j)
      s += double(r[j]) * r[j];
    if (s == 0)
      throw usage_error("normalize_rows: sample " + std::to_string(i) + " is all zeros");
    const double inv = 1.0 / std::sqrt(s);
    for (std::size_t j = 0; j < d.dim; ++j)
      r[j] = static_cast<T>(r[j] * inv);
  }
}

} // namespace steep::train
