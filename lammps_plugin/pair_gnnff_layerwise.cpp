// pair_style gnnff comm layer: a message-passing model evaluated layer by layer with a node-
// feature exchange between MPI ranks after every layer (docs/pair_style.md, issue 15).
//
// Ghost atoms reach only r_max + skin (not n_layers * r_max). The model file carries the layer-
// wise extension of the contract (docs/model_contract.md): layerwise_embed, layerwise_layer,
// layerwise_atomic_energy. Per step:
//   forward   h_0 = embed(types) on all nodes; for k: h_{k+1}(local) = layer_k(h_k, r_ij), then
//             comm->forward_comm(this) copies each owner's row to its ghosts
//   backward  for k = L-1 .. 0: (dE/dh_k on all nodes, dE/dr_ij) = vjp of layer k; the ghosts'
//             rows go back to their owners with comm->reverse_comm(this) and are added there
//   forces    F_i += g_ij, F_j -= g_ij from g_ij = dE/dr_ij summed over layers; ghost forces go
//             to their owners in LAMMPS's own reverse communication (newton on), as in `shell`
// The reference of this scheme is gnnff.models.layerwise_domains (pure Python, tested).
#include "pair_gnnff.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include "gnnff/model.h"

#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace LAMMPS_NS;

void PairGNNFF::init_layerwise()
{
  const auto &dims = model_->metadata().layer_feature_dims;
  const bool message_passing = interaction_range_ > r_max_;
  layerwise_ = false;
  if (!message_passing) return;    // strictly local: one r_max shell anyway, nothing to exchange
  if (comm_request_ == CommRequest::Layer && dims.empty())
    error->all(FLERR,
               "pair_style gnnff comm layer: model {} has no layer-wise form (no {} metadata); "
               "re-export it with `gnnff export` (NequIP models get one), or use `comm shell`",
               model_->metadata().model_name, "gnnff/layerwise");
  // a committee evaluates every member on one shared graph, which needs the whole ghost shell
  if (comm_request_ == CommRequest::Layer && !committee_files_.empty())
    error->all(FLERR,
               "pair_style gnnff: `committee` needs the whole ghost shell; use `comm shell` (or "
               "leave out `comm`) with a committee");
  layerwise_ = !dims.empty() && comm_request_ != CommRequest::Shell && committee_files_.empty();
  if (!layerwise_) return;
  // test control only (tests/lammps/test_layerwise.py): without the reverse exchange the
  // forces must come out wrong, which shows that the test sees the ghost-feature gradients
  skip_reverse_exchange_ = std::getenv("GNNFF_TEST_SKIP_REVERSE_EXCHANGE") != nullptr;
  const int width = (int) *std::max_element(dims.begin(), dims.end());
  // Comm sizes its buffers from these in comm->init(), which runs after init_style
  comm_forward = width;
  comm_reverse = width;
}

int PairGNNFF::pack_forward_comm(int n, int *list, double *buf, int /*pbc_flag*/, int * /*pbc*/)
{
  // features are invariant under translation: a periodic image gets its owner's row unchanged
  const int w = exchange_width_;
  for (int i = 0; i < n; i++)
    std::memcpy(buf + (size_t) i * w, exchange_buf_.data() + (size_t) list[i] * w,
                w * sizeof(double));
  return n * w;
}

void PairGNNFF::unpack_forward_comm(int n, int first, double *buf)
{
  const int w = exchange_width_;
  std::memcpy(exchange_buf_.data() + (size_t) first * w, buf, (size_t) n * w * sizeof(double));
}

int PairGNNFF::pack_feature_grads(int n, int first, double *buf)
{
  const int w = exchange_width_;
  std::memcpy(buf, exchange_buf_.data() + (size_t) first * w, (size_t) n * w * sizeof(double));
  return n * w;
}

void PairGNNFF::unpack_feature_grads(int n, int *list, double *buf)
{
  const int w = exchange_width_;
  for (int i = 0; i < n; i++) {
    double *row = exchange_buf_.data() + (size_t) list[i] * w;
    for (int c = 0; c < w; c++) row[c] += buf[(size_t) i * w + c];
  }
}

torch::Tensor PairGNNFF::exchange_features(const torch::Tensor &local, const torch::Tensor &like)
{
  const int w = (int) local.size(1);
  const int nall = atom->nlocal + atom->nghost;
  const int nnodes = graph_.num_nodes(), nlocal = graph_.num_local_nodes();
  if ((int) exchange_buf_.size() < nall * w)
    exchange_buf_.resize((size_t) (nall + nall / 4 + 16) * w);
  torch::Tensor host = local.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double *h = host.data_ptr<double>();
  for (int g = 0; g < nlocal; g++)
    std::memcpy(exchange_buf_.data() + (size_t) graph_.atom_of(g) * w, h + (size_t) g * w,
                w * sizeof(double));
  exchange_width_ = w;
  comm->forward_comm(this);
  exchange_width_ = 0;
  torch::Tensor all = torch::empty({nnodes, w}, torch::kFloat64);
  double *a = all.data_ptr<double>();
  for (int g = 0; g < nnodes; g++)
    std::memcpy(a + (size_t) g * w, exchange_buf_.data() + (size_t) graph_.atom_of(g) * w,
                w * sizeof(double));
  return all.to(like.device(), like.scalar_type());
}

torch::Tensor PairGNNFF::exchange_feature_grads(const torch::Tensor &all, int64_t nlocal)
{
  const int w = (int) all.size(1);
  const int nall = atom->nlocal + atom->nghost;
  const int nnodes = graph_.num_nodes();
  if ((int) exchange_buf_.size() < nall * w)
    exchange_buf_.resize((size_t) (nall + nall / 4 + 16) * w);
  std::fill(exchange_buf_.begin(), exchange_buf_.begin() + (size_t) nall * w, 0.0);
  torch::Tensor host = all.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double *g_all = host.data_ptr<double>();
  for (int g = 0; g < nnodes; g++)
    std::memcpy(exchange_buf_.data() + (size_t) graph_.atom_of(g) * w, g_all + (size_t) g * w,
                w * sizeof(double));
  exchange_width_ = w;
  if (!skip_reverse_exchange_) comm->reverse_comm(this);
  exchange_width_ = 0;
  torch::Tensor local = torch::empty({nlocal, w}, torch::kFloat64);
  double *l = local.data_ptr<double>();
  for (int g = 0; g < nlocal; g++)
    std::memcpy(l + (size_t) g * w, exchange_buf_.data() + (size_t) graph_.atom_of(g) * w,
                w * sizeof(double));
  return local.to(all.device(), all.scalar_type());
}

PairGNNFF::HostOutput PairGNNFF::call_model_layerwise(bool want_energy_atom, bool want_virial,
                                                      bool want_atom_virial)
{
  torch::NoGradGuard no_grad_outside;    // re-enabled around each differentiated stage
  auto &module = model_->module();
  const auto &dims = model_->metadata().layer_feature_dims;
  const int n_layers = (int) dims.size() - 1;
  const auto &in = graph_.inputs(atom->x, model_->dtype(), model_->device());
  const int64_t nlocal = graph_.num_local_nodes();
  const int64_t nnodes = graph_.num_nodes();
  const bool active = nlocal > 0;    // a rank without atoms only takes part in the exchanges
  const auto fopts = torch::TensorOptions().dtype(model_->dtype()).device(model_->device());
  const torch::Tensor centre = in.edge_index[0], neighbour = in.edge_index[1];
  torch::Tensor r = (in.pos.index_select(0, neighbour) - in.pos.index_select(0, centre)).detach();
  r.requires_grad_(true);
  const torch::Tensor local_types = in.atom_type.narrow(0, 0, nlocal);

  // forward, layer by layer; each layer's input is its own autograd leaf
  std::vector<torch::Tensor> h_in(n_layers), h_out(n_layers);
  torch::Tensor h = module.run_method("layerwise_embed", in.atom_type).toTensor().detach();
  for (int k = 0; k < n_layers; k++) {
    torch::Tensor out = torch::zeros({nlocal, dims[k + 1]}, fopts);
    if (active) {
      torch::AutoGradMode grad_on(true);
      h_in[k] = h.detach().requires_grad_(true);
      h_out[k] = module
                     .run_method("layerwise_layer", (int64_t) k, h_in[k], r, in.edge_index,
                                 in.atom_type, nlocal)
                     .toTensor();
      out = h_out[k];
    }
    h = exchange_features(out, r);
  }
  torch::Tensor atomic = torch::zeros({nlocal}, fopts);
  torch::Tensor grad = torch::zeros({nlocal, dims[n_layers]}, fopts);
  if (active) {
    torch::AutoGradMode grad_on(true);
    torch::Tensor h_last = h.narrow(0, 0, nlocal).detach().requires_grad_(true);
    atomic = module.run_method("layerwise_atomic_energy", h_last, local_types).toTensor();
    auto g = torch::autograd::grad({atomic.sum()}, {h_last}, {}, false, false, true);
    if (g[0].defined()) grad = g[0];
    atomic = atomic.detach();
  }

  // backward, layer by layer in reverse, ghost-feature gradients sent to their owners
  torch::Tensor edge_grad = torch::zeros_like(r);
  for (int k = n_layers - 1; k >= 0; k--) {
    torch::Tensor grad_all = torch::zeros({nnodes, dims[k]}, fopts);
    if (active) {
      torch::AutoGradMode grad_on(true);
      auto g = torch::autograd::grad({h_out[k]}, {h_in[k], r}, {grad}, false, false, true);
      if (g[0].defined()) grad_all = g[0];
      if (g[1].defined()) edge_grad = edge_grad + g[1];
      h_out[k] = h_in[k] = torch::Tensor();    // free this layer's graph
    }
    grad = exchange_feature_grads(grad_all, nlocal);
  }

  // forces and virials from dE/dr_ij, as ForceModel does (docs/model_contract.md)
  HostOutput host;
  const torch::Tensor g = edge_grad.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor rv = r.detach().to(torch::kCPU, torch::kFloat64);
  const torch::Tensor ctr = centre.to(torch::kCPU), nbr = neighbour.to(torch::kCPU);
  host.forces =
      torch::zeros({nnodes, 3}, torch::kFloat64).index_add(0, ctr, g).index_add(0, nbr, -g);
  const torch::Tensor atomic64 = atomic.to(torch::kCPU, torch::kFloat64);
  host.energy = atomic64.sum().item<double>();
  if (want_energy_atom) {
    host.atomic_energy = torch::zeros({nnodes}, torch::kFloat64);
    host.atomic_energy.narrow(0, 0, nlocal).copy_(atomic64);
  }
  const torch::Tensor edge_virial = -rv.unsqueeze(-1) * g.unsqueeze(-2);    // (E,3,3)
  if (want_virial) {
    torch::Tensor w = edge_virial.sum(0).reshape({9}).contiguous();
    std::copy(w.data_ptr<double>(), w.data_ptr<double>() + 9, host.virial);
  }
  if (want_atom_virial) {
    const torch::Tensor half = 0.5 * edge_virial;
    host.atom_virial = torch::zeros({nnodes, 3, 3}, torch::kFloat64)
                           .index_add(0, ctr, half)
                           .index_add(0, nbr, half)
                           .contiguous();
  }
  return host;
}

void PairGNNFF::compute_layerwise(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  // centres: local atoms only; ghosts reach r_max + skin
  const auto t_start = std::chrono::steady_clock::now();
  graph_.build(atom, list, type_map_, has_null_, r_max_, false);
  HostOutput out;
  const auto t_model = std::chrono::steady_clock::now();
  // GNNFF_TIMING: as in compute(), glue = the edge build plus writing the outputs back
  const double build_dt = std::chrono::duration<double>(t_model - t_start).count();
  double model_dt = 0.0;
  try {
    out = call_model_layerwise(eflag_atom != 0, vflag_global != 0, vflag_atom != 0);
    // GNNFF_TIMING: model time includes the per-layer exchanges (they sit between the calls)
    model_dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_model).count();
    model_seconds_ += model_dt;
  } catch (const std::exception &err) {
    error->one(FLERR, "pair_style gnnff: evaluating the model layer by layer failed at step {}: {}",
               update->ntimestep, gnnff::message_of(err));
  }
  ncalls_++;
  edges_total_ += (double) graph_.num_edges();
  if (graph_.num_local_nodes() > 0)
    check_finite(out.forces.data_ptr<double>(), graph_.num_nodes(), out.energy);
  write_back(out);
  build_seconds_ += build_dt;
  glue_seconds_ +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() - model_dt;
}
