// The graph adaptor of pair_style gnnff (see pair_gnnff_graph.h).
#include "pair_gnnff_graph.h"

#include "atom.h"
#include "neigh_list.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

using namespace LAMMPS_NS;

void GNNFFGraph::reserve(torch::Tensor &buf, int64_t n, torch::ScalarType dtype,
                         const torch::Device &device, bool pinned)
{
  if (buf.defined() && buf.numel() >= n && buf.device() == device) return;
  const int64_t capacity = n + n / 4 + 16;
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  if (pinned && device.is_cpu()) options = options.pinned_memory(true);
  buf = torch::empty({capacity}, options);
}

void GNNFFGraph::build(const Atom *atom, const NeighList *list, const std::vector<int> &type_map,
                       bool has_null, double r_max, bool ghost_centres)
{
  double **x = atom->x;
  const int *type = atom->type;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  ready_[0] = ready_[1] = false;
  types_edges_on_device_ = false;

  // nodes: atoms of mapped types, locals first (LAMMPS stores locals first)
  identity_ = !has_null;
  nnodes_ = nall;
  nlocal_nodes_ = nlocal;
  if (has_null) {
    if ((int) graph_of_atom_.size() < nall) graph_of_atom_.resize(nall);
    if ((int) atom_of_graph_.size() < nall) atom_of_graph_.resize(nall);
    nnodes_ = 0;
    for (int i = 0; i < nall; i++) {
      if (i == nlocal) nlocal_nodes_ = nnodes_;
      if (type_map[type[i]] >= 0) {
        graph_of_atom_[i] = nnodes_;
        atom_of_graph_[nnodes_++] = i;
      } else {
        graph_of_atom_[i] = -1;
      }
    }
    if (nall == nlocal) nlocal_nodes_ = nnodes_;
  }
  auto node_of = [&](int i) {
    return has_null ? graph_of_atom_[i] : i;
  };

  // node types
  reserve(host_types_, nnodes_, torch::kInt64, torch::kCPU);
  int64_t *types = host_types_.data_ptr<int64_t>();
  for (int g = 0; g < nnodes_; g++) types[g] = type_map[type[atom_of(g)]];

  // edges in one pass over the neighbour list (which includes the skin, so each pair is
  // tested against r_max), split into chunks of consecutive centres that torch's intra-op
  // threads fill side by side (OMP_NUM_THREADS). Chunk c writes its centres from offset
  // bound_c (the listed pairs before it) and its neighbours from `bound` + bound_c (`bound`: all
  // listed pairs, >= E), then the chunks are packed behind one another into the (2,E) int64
  // buffer: E centres, then E neighbours, in the edge order of one serial pass whatever the
  // threads. With one chunk (one thread, as in CPU MD at one thread per rank) the pass writes
  // into the edge buffer itself and one memmove packs it; with several, into a scratch buffer
  // that each thread copies its chunks out of (a GPU step builds ~1M edges: a serial pack of
  // 16 MB would cost milliseconds).
  const double rsq_max = r_max * r_max;
  const int ncentres = ghost_centres ? list->inum + list->gnum : list->inum;
  const int nchunks = std::max(1, std::min(at::get_num_threads(), ncentres / kCentresPerChunk));
  chunk_first_.assign(nchunks + 1, 0);
  chunk_bound_.assign(nchunks + 1, 0);
  chunk_edges_.assign(nchunks + 1, 0);
  int64_t bound = 0;
  for (int c = 0, ii = 0; c < nchunks; c++) {
    chunk_first_[c] = ii;
    chunk_bound_[c] = bound;
    const int last = (int) ((int64_t) ncentres * (c + 1) / nchunks);
    for (; ii < last; ii++) bound += list->numneigh[list->ilist[ii]];
  }
  chunk_first_[nchunks] = ncentres;
  chunk_bound_[nchunks] = bound;
  torch::Tensor &filled = nchunks == 1 ? host_edges_ : host_scratch_;
  reserve(filled, 2 * bound, torch::kInt64, torch::kCPU);
  int64_t *centre = filled.data_ptr<int64_t>();
  int64_t *neighbour = centre + bound;
  // the vectors of the cutoff test, kept for the model (ForceModel need not gather positions)
  torch::Tensor &filled_vec = nchunks == 1 ? host_vec_ : host_vec_scratch_;
  reserve(filled_vec, 3 * bound, torch::kFloat64, torch::kCPU);
  double *vec = filled_vec.data_ptr<double>();

  // atom->x is one contiguous nmax x 3 block (LAMMPS allocates it so): flat indexing saves the
  // row pointer load per pair
  const double *xf = x[0];
  auto fill_chunk = [&](int c) {
    int64_t e = chunk_bound_[c];
    for (int ii = chunk_first_[c]; ii < chunk_first_[c + 1]; ii++) {
      const int i = list->ilist[ii];
      const int gi = node_of(i);
      if (gi < 0) continue;
      const double xi = xf[3 * i], yi = xf[3 * i + 1], zi = xf[3 * i + 2];
      const int *jlist = list->firstneigh[i];
      const int jnum = list->numneigh[i];
      for (int jj = 0; jj < jnum; jj++) {
        const int j = jlist[jj] & NEIGHMASK;
        const double dx = xf[3 * j] - xi, dy = xf[3 * j + 1] - yi, dz = xf[3 * j + 2] - zi;
        const int gj = node_of(j);
        // without a branch: every listed pair is written at slot e, which only advances for an
        // edge (a pair of the skin is overwritten by the next one). Which listed pairs are
        // within r_max follows no pattern a branch predictor can learn; e <= the pairs read so
        // far, so the slot is inside this chunk's part of the buffers.
        centre[e] = gi;
        neighbour[e] = gj;
        vec[3 * e] = dx;
        vec[3 * e + 1] = dy;
        vec[3 * e + 2] = dz;
        e += (dx * dx + dy * dy + dz * dz < rsq_max) & (gj >= 0);
      }
    }
    chunk_edges_[c] = e - chunk_bound_[c];
  };
  if (nchunks == 1) {
    fill_chunk(0);
    nedges_ = chunk_edges_[0];
    if (bound != nedges_) std::memmove(centre + nedges_, neighbour, nedges_ * sizeof(int64_t));
    return;
  }
  at::parallel_for(0, nchunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; c++) fill_chunk((int) c);
  });
  // chunk_edges_ becomes the packed offset of each chunk (an exclusive prefix sum)
  int64_t e = 0;
  for (int c = 0; c <= nchunks; c++) {
    const int64_t n = c < nchunks ? chunk_edges_[c] : 0;
    chunk_edges_[c] = e;
    e += n;
  }
  nedges_ = e;
  reserve(host_edges_, 2 * nedges_, torch::kInt64, torch::kCPU);
  reserve(host_vec_, 3 * nedges_, torch::kFloat64, torch::kCPU);
  int64_t *packed = host_edges_.data_ptr<int64_t>();
  double *packed_vec = host_vec_.data_ptr<double>();
  at::parallel_for(0, nchunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; c++) {
      const int64_t n = chunk_edges_[c + 1] - chunk_edges_[c];
      std::memcpy(packed + chunk_edges_[c], centre + chunk_bound_[c], n * sizeof(int64_t));
      std::memcpy(packed + nedges_ + chunk_edges_[c], neighbour + chunk_bound_[c],
                  n * sizeof(int64_t));
      std::memcpy(packed_vec + 3 * chunk_edges_[c], vec + 3 * chunk_bound_[c],
                  3 * n * sizeof(double));
    }
  });
}

const GNNFFGraph::Inputs &GNNFFGraph::inputs(double **x, torch::ScalarType dtype,
                                             const torch::Device &device)
{
  const int slot = dtype == torch::kFloat64 ? 0 : 1;
  if (ready_[slot] && inputs_[slot].pos.device() == device) return inputs_[slot];
  const bool on_cpu = device.is_cpu();
  Inputs &in = inputs_[slot];

  // positions
  if (slot == 0 && identity_ && on_cpu) {
    // zero copy: atom->x is one contiguous nmax x 3 block; the model only reads it
    in.pos = torch::from_blob(&x[0][0], {nnodes_, 3}, torch::kFloat64);
  } else {
    reserve(host_pos_[slot], 3 * (int64_t) nnodes_, dtype, torch::kCPU, !on_cpu);
    if (slot == 0) {
      double *p = host_pos_[0].data_ptr<double>();
      for (int g = 0; g < nnodes_; g++) std::memcpy(p + 3 * g, x[atom_of(g)], 3 * sizeof(double));
    } else {
      float *p = host_pos_[1].data_ptr<float>();
      for (int g = 0; g < nnodes_; g++)
        for (int k = 0; k < 3; k++) p[3 * g + k] = (float) x[atom_of(g)][k];
    }
    torch::Tensor host = host_pos_[slot].narrow(0, 0, 3 * (int64_t) nnodes_);
    if (on_cpu) {
      in.pos = host.view({nnodes_, 3});
    } else {
      reserve(dev_pos_[slot], 3 * (int64_t) nnodes_, dtype, device);
      torch::Tensor dev = dev_pos_[slot].narrow(0, 0, 3 * (int64_t) nnodes_);
      dev.copy_(host, /*non_blocking=*/true);
      in.pos = dev.view({nnodes_, 3});
    }
  }

  // types and edges: shared by both dtype slots
  torch::Tensor types = host_types_.narrow(0, 0, nnodes_);
  torch::Tensor edges = host_edges_.narrow(0, 0, 2 * nedges_);
  if (!on_cpu) {
    if (!types_edges_on_device_) {
      reserve(dev_types_, nnodes_, torch::kInt64, device);
      reserve(dev_edges_, 2 * nedges_, torch::kInt64, device);
      dev_types_.narrow(0, 0, nnodes_).copy_(types);
      dev_edges_.narrow(0, 0, 2 * nedges_).copy_(edges);
      types_edges_on_device_ = true;
    }
    types = dev_types_.narrow(0, 0, nnodes_);
    edges = dev_edges_.narrow(0, 0, 2 * nedges_);
  }
  in.atom_type = types;
  in.edge_index = edges.view({2, nedges_});
  in.edge_vectors = torch::Tensor();
  if (on_cpu) {
    torch::Tensor vec = host_vec_.narrow(0, 0, 3 * nedges_);
    if (slot == 1) {
      reserve(host_vec32_, 3 * nedges_, torch::kFloat32, torch::kCPU);
      vec = host_vec32_.narrow(0, 0, 3 * nedges_).copy_(vec);
    }
    in.edge_vectors = vec.view({nedges_, 3});
  }
  ready_[slot] = true;
  return in;
}
