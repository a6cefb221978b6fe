// The graph adaptor of pair_style gnnff: LAMMPS atoms and the full neighbour list with ghosts
// -> the model's input tensors (docs/model_contract.md). It owns every buffer; host and device
// tensors are kept across steps and grow only when the system grows, so steady-state MD
// allocates nothing here. Independent of the pair style, so a /kk or GPU subclass can reuse it
// or replace one piece (e.g. build edges on the device) without touching the rest.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <vector>

namespace LAMMPS_NS {

class Atom;
class NeighList;

class GNNFFGraph {
 public:
  // Tensors handed to the model; views of the buffers below, valid until the next build().
  struct Inputs {
    torch::Tensor pos;           // (N,3) model dtype, Å
    torch::Tensor atom_type;     // (N,) int64
    torch::Tensor edge_index;    // (2,E) int64, row 0 centre, row 1 neighbour
    // (E,3) model dtype, r_ij = x_j - x_i as computed for the cutoff test (float64, then cast
    // for a float32 model); undefined when the model is not on the CPU
    torch::Tensor edge_vectors;
  };

  // Nodes: atoms whose LAMMPS type maps to a model type (type_map[t] >= 0), locals first.
  // Edges: pairs of nodes of `list` closer than r_max; centres are the local atoms, plus the
  // ghosts when `ghost_centres` (message passing needs the ghosts' own edges).
  void build(const Atom *atom, const NeighList *list, const std::vector<int> &type_map,
             bool has_null, double r_max, bool ghost_centres);

  // The inputs in `dtype` on `device`; positions are copied from atom->x once per build and
  // dtype (a committee of models of one dtype shares one copy).
  const Inputs &inputs(double **x, torch::ScalarType dtype, const torch::Device &device);

  int num_nodes() const { return nnodes_; }
  int num_local_nodes() const { return nlocal_nodes_; }
  int64_t num_edges() const { return nedges_; }
  // LAMMPS atom index of graph node g
  int atom_of(int g) const { return identity_ ? g : atom_of_graph_[g]; }

 protected:
  // grow `buf` (1-d) to hold at least n elements; 25 % headroom so a slowly growing system
  // does not reallocate every step
  static void reserve(torch::Tensor &buf, int64_t n, torch::ScalarType dtype,
                      const torch::Device &device, bool pinned = false);

  bool identity_ = true;    // no NULL types: graph node g is LAMMPS atom g
  int nnodes_ = 0, nlocal_nodes_ = 0;
  int64_t nedges_ = 0;
  std::vector<int> graph_of_atom_;    // LAMMPS index -> node, -1 if not in the graph
  std::vector<int> atom_of_graph_;    // node -> LAMMPS index (only when !identity_)

  // the edge build's chunks of centres (see build()): first centre, listed pairs before the
  // chunk, edges found in it (then its packed offset); a chunk has at least kCentresPerChunk centres, so that a small
  // system or a rank with few atoms is not split into chunks dearer than they save
  static constexpr int kCentresPerChunk = 512;
  std::vector<int> chunk_first_;
  std::vector<int64_t> chunk_bound_, chunk_edges_;

  // host buffers (1-d, capacity >= what this step needs)
  torch::Tensor host_types_, host_edges_, host_pos_[2];    // pos: [0] float64, [1] float32
  torch::Tensor host_scratch_;    // the chunked edge build's unpacked (2, bound) edges
  // edge vectors (E,3) float64 in edge order, written by the edge build (its chunks first into
  // host_vec_scratch_), and their float32 copy for a float32 model
  torch::Tensor host_vec_, host_vec_scratch_, host_vec32_;
  // device buffers, used when the model is not on the CPU
  torch::Tensor dev_types_, dev_edges_, dev_pos_[2];
  bool types_edges_on_device_ = false;    // copied for this build
  Inputs inputs_[2];                      // per dtype slot
  bool ready_[2] = {false, false};        // inputs_[slot] is current for this build
};

}    // namespace LAMMPS_NS
