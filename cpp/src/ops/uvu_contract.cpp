// gnnff::uvu_contract: NequIP's convolution product (python/gnnff/models/common/fused_tp.py,
// ShTensorProduct) and all its derivatives, as one operator that contracts four per-edge
// operands and leaves one of them out.
//
//   T = sum_{e, z, u} m[e, z] x[e, i(z), u] w[e, path[k(z)], u] g[e, k(z), u]
//
// m: (E, Z) the harmonics contracted with the Clebsch-Gordan entries that are non-zero (entry z
// joins input component i(z) = nz_i[z] to output component k(z) = nz_k[z]); x: (E, I, U) the
// neighbour's features; w: (E, P, U) the per-edge path weights (path[k]: the path of output
// component k); g: (E, K, U). Exactly one operand is None; the result is dT/d(that operand),
// of its shape:
//
//   g left out: out[e, k, u] = w[e, path[k], u] sum_{z: k(z) = k} m[e, z] x[e, i(z), u]  (forward)
//   x left out: out[e, i, u] = sum_{z: i(z) = i} m[e, z] w[e, path[k(z)], u] g[e, k(z), u]
//   w left out: out[e, p, u] = sum_{z: path[k(z)] = p} m[e, z] x[e, i(z), u] g[e, k(z), u]
//   m left out: out[e, z]    = sum_u x[e, i(z), u] w[e, path[k(z)], u] g[e, k(z), u]
//
// x and g may be indexed by atoms: with x_index, edge e reads row x_index[e] of x (Nx, I, U), the
// neighbour's features gathered in the loop; with g_index, row g_index[e] of g (Ng, K, U), so the
// form that leaves g out returns the per-atom sums of the edges' products (the messages summed
// onto their centres, never materialised per edge). A left-out indexed operand's row count is
// x_rows / g_rows; the forms that add edges into shared rows split the channels between tasks.
//
// T is linear in each operand, so the derivative of <h, out> by a present operand is the same
// operator with h in the left-out slot and that operand left out: derivatives of any order (forces
// need one, training on forces two). The torch form materialises the (E, K, U) product before
// the weights, the weights expanded to every component, and their gradients; this reads each
// edge's operands once, from cache, and skips the zero Clebsch-Gordan entries. CPU only.
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <optional>

#include "row_loops.h"

namespace gnnff {

namespace {

  using torch::Tensor;
  using torch::autograd::AutogradContext;
  using torch::autograd::tensor_list;
  using Operand = std::optional<Tensor>;

  constexpr int64_t EDGE_GRAIN = 64;
  constexpr const char *OP = "gnnff::uvu_contract";

  // the index tables, checked once per call (their values address the operands' rows)
  struct Tables {
    std::vector<int64_t> k, i, path;
  };

  std::vector<int64_t> read_index(const Tensor &t, const char *what, int64_t bound)
  {
    TORCH_CHECK(t.dim() == 1 && t.scalar_type() == torch::kInt64 && t.device().is_cpu(), OP, ": ",
                what, " must be a 1-d CPU int64 tensor, got ", t.sizes(), " ", t.scalar_type());
    const Tensor c = t.contiguous();
    const int64_t *p = c.data_ptr<int64_t>();
    for (int64_t a = 0; a < c.numel(); ++a)
      TORCH_CHECK(p[a] >= 0 && p[a] < bound, OP, ": ", what, " holds ", p[a], ", outside [0, ",
                  bound, ")");
    return std::vector<int64_t>(p, p + c.numel());
  }

  // which row of an indexed operand edge e reads (or its output row, edge e adds into)
  struct Rows {
    std::vector<int64_t> index;    // empty: row e
    int64_t count;

    int64_t of(int64_t e) const { return index.empty() ? e : index[e]; }
  };

  Rows read_rows(const Operand &index, const Operand &operand, int64_t rows, int64_t edges,
                 const char *what)
  {
    if (!index.has_value() || !index->defined()) return Rows{{}, edges};
    TORCH_CHECK(index->numel() == edges, OP, ": ", what, " must hold one row per edge (", edges,
                "), got ", index->numel());
    // a present operand's rows bound the index; a left-out one's are given
    const int64_t count = operand.has_value() && operand->defined() ? operand->size(0) : rows;
    TORCH_CHECK(count >= 0, OP, ": the left-out operand indexed by ", what,
                " needs its number of rows (x_rows / g_rows)");
    return Rows{read_index(*index, what, count), count};
  }

  // the operands of one call, as the edge loop reads them (a null operand is the left-out one)
  template <typename T> struct Contraction {
    const T *m, *x, *w, *g;
    T *out;
    int64_t Z, I, P, K, U;
    const int64_t *kz, *iz, *pk;
    const Rows *xr, *gr;
    int free;
  };

  // edges [e0, e1), channels [u0, u0 + n) of their output rows; zero_rows: the edges own their
  // rows (zeroed here, in cache). Compiled per target with the row loops inlined: the rows are
  // one channel range long (32 numbers at issue 13's size), so a call per row cost about as much
  // as the row's arithmetic.
  template <typename T>
  __attribute__((target_clones("avx2", "default"))) void
  contract_edges(const Contraction<T> &c, int64_t e0, int64_t e1, int64_t u0, int64_t n, T *tmp,
                 bool zero_rows)
  {
    const int64_t Z = c.Z, I = c.I, P = c.P, K = c.K, U = c.U;
    const int64_t *kz = c.kz, *iz = c.iz, *pk = c.pk;
    const int64_t row = c.free == 0 ? Z : (c.free == 1 ? I : (c.free == 2 ? P : K)) * U;
    for (int64_t e = e0; e < e1; ++e) {
      if (zero_rows) std::fill_n(c.out + e * row, row, T(0));
      const T *me = c.m ? c.m + e * Z : nullptr;
      const T *xe = c.x ? c.x + c.xr->of(e) * I * U + u0 : nullptr;
      const T *we = c.w ? c.w + e * P * U + u0 : nullptr;
      const T *ge = c.g ? c.g + c.gr->of(e) * K * U + u0 : nullptr;
      switch (c.free) {
        case 3: {
          // sum over the entries first (tmp, K rows of n), then times the path weights
          std::fill_n(tmp, K * n, T(0));
          for (int64_t z = 0; z < Z; ++z) axpy_row<T>(tmp + kz[z] * n, me[z], xe + iz[z] * U, n);
          T *oe = c.out + c.gr->of(e) * K * U + u0;
          for (int64_t k = 0; k < K; ++k)
            fma_row<T>(oe + k * U, T(1), tmp + k * n, we + pk[k] * U, n);
          break;
        }
        case 1: {
          T *oe = c.out + c.xr->of(e) * I * U + u0;
          for (int64_t z = 0; z < Z; ++z)
            fma_row<T>(oe + iz[z] * U, me[z], we + pk[kz[z]] * U, ge + kz[z] * U, n);
          break;
        }
        case 2: {
          T *oe = c.out + e * P * U + u0;
          for (int64_t z = 0; z < Z; ++z)
            fma_row<T>(oe + pk[kz[z]] * U, me[z], xe + iz[z] * U, ge + kz[z] * U, n);
          break;
        }
        default: {
          T *oe = c.out + e * Z;
          for (int64_t z = 0; z < Z; ++z)
            oe[z] = dot3_row<8, T>(xe + iz[z] * U, we + pk[kz[z]] * U, ge + kz[z] * U, n);
          break;
        }
      }
    }
  }

  Tensor uvu_contract_cpu(const Operand &m_in, const Operand &x_in, const Operand &w_in,
                          const Operand &g_in, const Tensor &nz_k, const Tensor &nz_i,
                          const Tensor &path_in, int64_t n_in, int64_t n_paths,
                          const Operand &x_index, const Operand &g_index, int64_t x_rows,
                          int64_t g_rows)
  {
    const std::array<const Operand *, 4> operands = {&m_in, &x_in, &w_in, &g_in};
    int free = -1, present = 0;
    const Tensor *first = nullptr;
    for (int a = 0; a < 4; ++a) {
      if (operands[a]->has_value() && operands[a]->value().defined()) {
        present++;
        if (!first) first = &operands[a]->value();
      } else {
        free = a;
      }
    }
    TORCH_CHECK(present == 3, OP, ": exactly one of m, x, w, g must be None, got ", 4 - present);
    const int64_t K = path_in.numel(), I = n_in, P = n_paths, Z = nz_k.numel();
    TORCH_CHECK(nz_i.numel() == Z, OP, ": nz_k and nz_i must have equal lengths");
    Tables tab{read_index(nz_k, "nz_k", K), read_index(nz_i, "nz_i", I),
               read_index(path_in, "path", P)};
    // m or w is present (one operand is left out): their rows are the edges
    const int64_t E = (free == 0 ? w_in : m_in)->size(0);
    int64_t U = -1;
    for (int a = 1; a < 4; ++a)
      if (a != free) U = operands[a]->value().size(2);
    const Rows xr = read_rows(x_index, x_in, x_rows, E, "x_index");
    const Rows gr = read_rows(g_index, g_in, g_rows, E, "g_index");
    const std::array<std::vector<int64_t>, 4> shapes = {
        std::vector<int64_t>{E, Z}, {xr.count, I, U}, {E, P, U}, {gr.count, K, U}};
    std::array<Tensor, 4> t;
    for (int a = 0; a < 4; ++a) {
      if (a == free) continue;
      const Tensor &v = operands[a]->value();
      TORCH_CHECK(v.device().is_cpu() && v.scalar_type() == first->scalar_type() &&
                      v.sizes() == c10::IntArrayRef(shapes[a]),
                  OP, ": operand ", "mxwg"[a], " must be a CPU tensor of shape ",
                  c10::IntArrayRef(shapes[a]), " and the others' dtype, got ", v.sizes(), " ",
                  v.scalar_type());
      t[a] = v.contiguous();
    }
    // an output indexed by atoms (x or g left out, with an index) gets the sum over the edges
    // that point at each row; otherwise each edge owns its row, which the task filling it zeroes
    // while it is in cache (a torch::zeros would be a separate pass over the whole output)
    const bool scattered = (free == 1 && !xr.index.empty()) || (free == 3 && !gr.index.empty());
    Tensor out = scattered ? torch::zeros(shapes[free], first->options())
                           : torch::empty(shapes[free], first->options());
    AT_DISPATCH_FLOATING_TYPES(first->scalar_type(), "gnnff_uvu_contract", [&] {
      using T = scalar_t;
      const Contraction<T> c{free == 0 ? nullptr : t[0].data_ptr<T>(),
                             free == 1 ? nullptr : t[1].data_ptr<T>(),
                             free == 2 ? nullptr : t[2].data_ptr<T>(),
                             free == 3 ? nullptr : t[3].data_ptr<T>(),
                             out.data_ptr<T>(),
                             Z,
                             I,
                             P,
                             K,
                             U,
                             tab.k.data(),
                             tab.i.data(),
                             tab.path.data(),
                             &xr,
                             &gr,
                             free};
      if (scattered) {
        // edges add into shared rows: tasks own disjoint channel ranges instead, so no two
        // write the same number; each goes over the edges in order (the order of index_add)
        constexpr int64_t CHUNK = 8;
        const int64_t chunks = (U + CHUNK - 1) / CHUNK;
        at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
          const int64_t u0 = c0 * CHUNK, n = std::min(c1 * CHUNK, U) - u0;
          std::vector<T> tmp(K * n);
          contract_edges<T>(c, 0, E, u0, n, tmp.data(), false);
        });
      } else {
        at::parallel_for(0, E, EDGE_GRAIN, [&](int64_t e0, int64_t e1) {
          std::vector<T> tmp(K * U);
          contract_edges<T>(c, e0, e1, 0, U, tmp.data(), true);
        });
      }
    });
    return out;
  }

  // through the dispatcher, so that calls inside a backward are recorded when the graph of the
  // derivative is built (create_graph=True)
  Tensor call_contract(const Operand &m, const Operand &x, const Operand &w, const Operand &g,
                       const Tensor &nz_k, const Tensor &nz_i, const Tensor &path, int64_t n_in,
                       int64_t n_paths, const Operand &x_index, const Operand &g_index,
                       int64_t x_rows, int64_t g_rows)
  {
    static auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("gnnff::uvu_contract", "")
            .typed<Tensor(const Operand &, const Operand &, const Operand &, const Operand &,
                          const Tensor &, const Tensor &, const Tensor &, int64_t, int64_t,
                          const Operand &, const Operand &, int64_t, int64_t)>();
    return op.call(m, x, w, g, nz_k, nz_i, path, n_in, n_paths, x_index, g_index, x_rows, g_rows);
  }

  class UvuContract : public torch::autograd::Function<UvuContract> {
   public:
    static Tensor forward(AutogradContext *ctx, const Operand &m, const Operand &x,
                          const Operand &w, const Operand &g, const Tensor &nz_k,
                          const Tensor &nz_i, const Tensor &path, int64_t n_in, int64_t n_paths,
                          const Operand &x_index, const Operand &g_index, int64_t x_rows,
                          int64_t g_rows)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      const std::array<const Operand *, 6> ops = {&m, &x, &w, &g, &x_index, &g_index};
      std::vector<Tensor> saved;
      for (const Operand *o : ops) saved.push_back(o->has_value() ? o->value() : Tensor());
      saved.push_back(nz_k);
      saved.push_back(nz_i);
      saved.push_back(path);
      ctx->save_for_backward(saved);
      ctx->saved_data["n_in"] = n_in;
      ctx->saved_data["n_paths"] = n_paths;
      // a left-out operand's rows are the output's; a present one's, its own
      ctx->saved_data["x_rows"] = x.has_value() && x->defined() ? x->size(0) : x_rows;
      ctx->saved_data["g_rows"] = g.has_value() && g->defined() ? g->size(0) : g_rows;
      return call_contract(m, x, w, g, nz_k, nz_i, path, n_in, n_paths, x_index, g_index, x_rows,
                           g_rows);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const int64_t n_in = ctx->saved_data["n_in"].toInt();
      const int64_t n_paths = ctx->saved_data["n_paths"].toInt();
      const int64_t x_rows = ctx->saved_data["x_rows"].toInt();
      const int64_t g_rows = ctx->saved_data["g_rows"].toInt();
      const Tensor &h = grads[0];
      std::array<Operand, 4> ops;
      int free = -1;
      for (int a = 0; a < 4; ++a) {
        if (saved[a].defined())
          ops[a] = saved[a];
        else
          free = a;
      }
      const Operand x_index = saved[4].defined() ? Operand(saved[4]) : std::nullopt;
      const Operand g_index = saved[5].defined() ? Operand(saved[5]) : std::nullopt;
      tensor_list out(13);
      for (int a = 0; a < 4; ++a) {
        // needs_input_grad counts the inputs that are tensors: the None operand is not one
        if (a == free || !ctx->needs_input_grad(a < free ? a : a - 1)) continue;
        // <h, out> is T with h in the left-out slot: its derivative by operand a leaves a out
        std::array<Operand, 4> args = ops;
        args[free] = h;
        args[a] = std::nullopt;
        out[a] = call_contract(args[0], args[1], args[2], args[3], saved[6], saved[7], saved[8],
                               n_in, n_paths, x_index, g_index, x_rows, g_rows);
      }
      return out;
    }
  };

  Tensor uvu_contract_autograd(const Operand &m, const Operand &x, const Operand &w,
                               const Operand &g, const Tensor &nz_k, const Tensor &nz_i,
                               const Tensor &path, int64_t n_in, int64_t n_paths,
                               const Operand &x_index, const Operand &g_index, int64_t x_rows,
                               int64_t g_rows)
  {
    return UvuContract::apply(m, x, w, g, nz_k, nz_i, path, n_in, n_paths, x_index, g_index, x_rows,
                              g_rows);
  }

}    // namespace

}    // namespace gnnff

TORCH_LIBRARY_FRAGMENT(gnnff, m)
{
  m.def("uvu_contract(Tensor? m, Tensor? x, Tensor? w, Tensor? g, Tensor nz_k, Tensor nz_i, "
        "Tensor path, int n_in, int n_paths, Tensor? x_index=None, Tensor? g_index=None, "
        "int x_rows=-1, int g_rows=-1) -> Tensor");
}

TORCH_LIBRARY_IMPL(gnnff, CPU, m)
{ m.impl("uvu_contract", &gnnff::uvu_contract_cpu); }

TORCH_LIBRARY_IMPL(gnnff, Autograd, m)
{ m.impl("uvu_contract", &gnnff::uvu_contract_autograd); }
