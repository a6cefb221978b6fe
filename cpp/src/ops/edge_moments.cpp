// gnnff::outer_index_add, gnnff::gather_matvec, gnnff::gather_vecmat: per-atom sums of per-edge
// outer products and the two contractions their derivatives need, each one pass over the edges.
// Users: pair_mlp's moment descriptors (python/gnnff/models/pair_mlp.py; L = 1) and Allegro's
// environment sums (python/gnnff/models/allegro.py; L = number of l-blocks of the harmonics, the
// channel weights of block l multiply its 2l+1 components).
//
//   outer_index_add(x, y, block, index, n)[index[e], a, b] += x[e, a, block[b]] * y[e, b]  (n, A, B)
//   gather_matvec(g, y, block, index, L)[e, a, l] = sum_{b: block[b] = l} g[index[e], a, b] y[e, b]
//   gather_vecmat(g, x, block, index)[e, b] = sum_a x[e, a, block[b]] * g[index[e], a, b]   (E, B)
//
// x: (E, A, L), y: (E, B), g: (n, A, B), block: (B,) int64 in [0, L), index: (E,) int64 in
// [0, n). All three are the derivatives of T = sum x[e, a, block[b]] y[e, b] g[index[e], a, b]
// by one argument, so each one's derivatives are the other two: derivatives of any order exist
// (forces need one, training on forces two). The torch form of the same sum materialises the
// (E, A, B) products, index_adds them and, backwards, gathers an (E, A, B) gradient and reduces it
// twice; these read each edge's A*L + B numbers once and its atom's row of A*B from cache. CPU only.
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace gnnff {

namespace {

  using torch::Tensor;
  using torch::autograd::AutogradContext;
  using torch::autograd::tensor_list;

  constexpr int64_t EDGE_GRAIN = 1024;

  void check_rows(const char *op, const Tensor &t, const char *what)
  {
    TORCH_CHECK(t.dim() == 2 && t.device().is_cpu() && t.is_floating_point(), op, ": ", what,
                " must be a 2-d floating CPU tensor (edges, components), got ", t.sizes());
  }

  // index values are read in the kernels' loops; an out-of-range one would write outside the
  // output, so they are checked once here (a plain loop, no torch reductions per call)
  void check_index(const char *op, const Tensor &index, int64_t edges, int64_t n)
  {
    TORCH_CHECK(index.dim() == 1 && index.size(0) == edges &&
                    index.scalar_type() == torch::kInt64 && index.device().is_cpu(),
                op, ": index must be a CPU int64 tensor of length ", edges, ", got ", index.sizes(),
                " ", index.scalar_type());
    const Tensor contiguous = index.contiguous();
    const int64_t *p = contiguous.data_ptr<int64_t>();
    for (int64_t e = 0; e < edges; ++e)
      TORCH_CHECK(p[e] >= 0 && p[e] < n, op, ": index ", p[e], " at edge ", e, " is outside [0, ",
                  n, ")");
  }

  void check_table(const char *op, const Tensor &g, const Tensor &rows, int64_t dim, int64_t size)
  {
    TORCH_CHECK(g.dim() == 3 && g.device().is_cpu() && g.scalar_type() == rows.scalar_type(), op,
                ": g must be a 3-d CPU tensor (atoms, A, B) of the rows' dtype, got ", g.sizes());
    TORCH_CHECK(g.size(dim) == size, op, ": g's dimension ", dim, " is ", g.size(dim),
                ", the edge rows have ", size, " components");
  }

  // the columns' blocks, checked to lie in [0, blocks)
  std::vector<int64_t> checked_blocks(const char *op, const Tensor &block, int64_t columns,
                                      int64_t blocks)
  {
    TORCH_CHECK(block.dim() == 1 && block.size(0) == columns &&
                    block.scalar_type() == torch::kInt64 && block.device().is_cpu(),
                op, ": block must be a CPU int64 tensor of length ", columns, ", got ",
                block.sizes());
    const Tensor contiguous = block.contiguous();
    const int64_t *p = contiguous.data_ptr<int64_t>();
    for (int64_t b = 0; b < columns; ++b) {
      TORCH_CHECK(p[b] >= 0 && p[b] < blocks, op, ": block ", p[b], " of column ", b,
                  " is outside [0, ", blocks, ")");
    }
    return std::vector<int64_t>(p, p + columns);
  }

  void check_weights(const char *op, const Tensor &x, const Tensor &y)
  {
    TORCH_CHECK(x.dim() == 3 && x.device().is_cpu() && x.scalar_type() == y.scalar_type() &&
                    x.size(0) == y.size(0),
                op, ": x must be a 3-d CPU tensor (edges, A, L) of y's dtype and edges, got ",
                x.sizes(), " and y ", y.sizes());
  }

  // The columns' blocks, for the kernels' loops over the B columns: for the sizes the models use
  // (4: l_max 1, 9: l_max 2, 16: l_max 3, 13: pair_mlp's moments) B is a compile-time constant, so
  // those loops unroll, and the blocks sit in a local array; other sizes run the same code with B
  // known at run time.
  template <int64_t NB> struct Columns {
    int64_t local[NB > 0 ? NB : 1];
    const int64_t *block;
    int64_t count;

    explicit Columns(const std::vector<int64_t> &blocks) :
        block(blocks.data()), count(static_cast<int64_t>(blocks.size()))
    {
      if constexpr (NB > 0) {
        std::copy_n(blocks.data(), NB, local);
        block = local;
      }
    }
    Columns(const Columns &) = delete;    // block may point into local
    static constexpr int64_t FIXED = NB;

    int64_t size() const
    {
      if constexpr (NB > 0)
        return NB;
      else
        return count;
    }
  };

  template <typename F> void with_columns(const std::vector<int64_t> &blocks, F &&f)
  {
    switch (blocks.size()) {
      case 4:
        f(Columns<4>(blocks));
        break;
      case 9:
        f(Columns<9>(blocks));
        break;
      case 13:
        f(Columns<13>(blocks));
        break;
      case 16:
        f(Columns<16>(blocks));
        break;
      default:
        f(Columns<0>(blocks));
        break;
    }
  }

  constexpr int64_t MAX_FIXED_COLUMNS = 16;

  // The three kernels' edge loops, each compiled for AVX2 and for the baseline x86-64
  // (target_clones picks one at load time; the column loops are short and unrolled, so the
  // wider vectors are what the AVX2 copy adds).

  // outer_index_add: channels [a0, a1) of every edge's atom row, edges in order
  template <typename T, typename Cols>
  __attribute__((target_clones("avx2", "default"))) void
  outer_rows(const Cols &columns, const T *px, const T *py, const int64_t *pi, T *po, int64_t E,
             int64_t A, int64_t L, int64_t a0, int64_t a1)
  {
    const int64_t nb = columns.size(), *pb = columns.block;
    for (int64_t e = 0; e < E; ++e) {
      const T *ye = py + e * nb;
      const T *xe = px + e * A * L;
      T *rows = po + pi[e] * A * nb;
      for (int64_t a = a0; a < a1; ++a)
        for (int64_t b = 0; b < nb; ++b) rows[a * nb + b] += xe[a * L + pb[b]] * ye[b];
    }
  }

  // gather_matvec: edges [e0, e1)
  template <typename T, typename Cols>
  __attribute__((target_clones("avx2", "default"))) void
  matvec_rows(const Cols &columns, const T *pg, const T *py, const int64_t *pi, T *po, int64_t A,
              int64_t L, int64_t e0, int64_t e1)
  {
    const int64_t nb = columns.size(), *pb = columns.block;
    for (int64_t e = e0; e < e1; ++e) {
      const T *ge = pg + pi[e] * A * nb, *ye = py + e * nb;
      T *oe = po + e * A * L;
      if (L == 1) {
        // one block: a dot product per channel, summed in a register (the general loop
        // below would add every column into the same output number, one after another)
        for (int64_t a = 0; a < A; ++a) {
          T sum = 0;
          for (int64_t b = 0; b < nb; ++b) sum += ge[a * nb + b] * ye[b];
          oe[a] = sum;
        }
        continue;
      }
      for (int64_t a = 0; a < A; ++a)
        for (int64_t b = 0; b < nb; ++b) oe[a * L + pb[b]] += ge[a * nb + b] * ye[b];
    }
  }

  // gather_vecmat: edges [e0, e1); NB accumulators in registers when the column count is fixed
  template <typename T, typename Cols>
  __attribute__((target_clones("avx2", "default"))) void
  vecmat_rows(const Cols &columns, const T *pg, const T *px, const int64_t *pi, T *po, int64_t A,
              int64_t L, int64_t e0, int64_t e1)
  {
    const int64_t nb = columns.size(), *pb = columns.block;
    constexpr int64_t NB = Cols::FIXED;
    T acc[NB > 0 ? NB : MAX_FIXED_COLUMNS];
    for (int64_t e = e0; e < e1; ++e) {
      const T *ge = pg + pi[e] * A * nb, *xe = px + e * A * L;
      T *oe = po + e * nb;
      T *sum = NB > 0 ? acc : oe;
      for (int64_t b = 0; b < nb; ++b) sum[b] = 0;
      for (int64_t a = 0; a < A; ++a)
        for (int64_t b = 0; b < nb; ++b) sum[b] += xe[a * L + pb[b]] * ge[a * nb + b];
      if (NB > 0)
        for (int64_t b = 0; b < nb; ++b) oe[b] = sum[b];
    }
  }

  Tensor outer_index_add_cpu(const Tensor &x_in, const Tensor &y_in, const Tensor &block_in,
                             const Tensor &index_in, int64_t n)
  {
    const char *op = "gnnff::outer_index_add";
    check_rows(op, y_in, "y");
    check_weights(op, x_in, y_in);
    TORCH_CHECK(n >= 0, op, ": n must be >= 0, got ", n);
    const int64_t E = x_in.size(0), A = x_in.size(1), L = x_in.size(2), B = y_in.size(1);
    const std::vector<int64_t> blocks = checked_blocks(op, block_in, B, L);
    check_index(op, index_in, E, n);
    const Tensor x = x_in.contiguous(), y = y_in.contiguous(), index = index_in.contiguous();
    Tensor out = torch::zeros({n, A, B}, y.options());
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "gnnff_outer_index_add", [&] {
      const scalar_t *px = x.data_ptr<scalar_t>(), *py = y.data_ptr<scalar_t>();
      const int64_t *pi = index.data_ptr<int64_t>();
      scalar_t *po = out.data_ptr<scalar_t>();
      with_columns(blocks, [&](const auto &columns) {
        // tasks own channels a (disjoint parts of the output), so no two write the same
        // number; edges go in order, the order of torch's index_add
        at::parallel_for(0, A, 1, [&](int64_t a0, int64_t a1) {
          outer_rows<scalar_t>(columns, px, py, pi, po, E, A, L, a0, a1);
        });
      });
    });
    return out;
  }

  Tensor gather_matvec_cpu(const Tensor &g_in, const Tensor &y_in, const Tensor &block_in,
                           const Tensor &index_in, int64_t L)
  {
    const char *op = "gnnff::gather_matvec";
    check_rows(op, y_in, "y");
    check_table(op, g_in, y_in, 2, y_in.size(1));
    TORCH_CHECK(L >= 1, op, ": the number of blocks must be >= 1, got ", L);
    const int64_t E = y_in.size(0), A = g_in.size(1), B = g_in.size(2);
    const std::vector<int64_t> blocks = checked_blocks(op, block_in, B, L);
    check_index(op, index_in, E, g_in.size(0));
    const Tensor g = g_in.contiguous(), y = y_in.contiguous(), index = index_in.contiguous();
    Tensor out = torch::zeros({E, A, L}, y.options());
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "gnnff_gather_matvec", [&] {
      const scalar_t *pg = g.data_ptr<scalar_t>(), *py = y.data_ptr<scalar_t>();
      const int64_t *pi = index.data_ptr<int64_t>();
      scalar_t *po = out.data_ptr<scalar_t>();
      with_columns(blocks, [&](const auto &columns) {
        at::parallel_for(0, E, EDGE_GRAIN, [&](int64_t e0, int64_t e1) {
          matvec_rows<scalar_t>(columns, pg, py, pi, po, A, L, e0, e1);
        });
      });
    });
    return out;
  }

  Tensor gather_vecmat_cpu(const Tensor &g_in, const Tensor &x_in, const Tensor &block_in,
                           const Tensor &index_in)
  {
    const char *op = "gnnff::gather_vecmat";
    TORCH_CHECK(x_in.dim() == 3 && x_in.device().is_cpu() && x_in.is_floating_point(), op,
                ": x must be a 3-d floating CPU tensor (edges, A, L), got ", x_in.sizes());
    check_table(op, g_in, x_in, 1, x_in.size(1));
    const int64_t E = x_in.size(0), A = g_in.size(1), L = x_in.size(2), B = g_in.size(2);
    const std::vector<int64_t> blocks = checked_blocks(op, block_in, B, L);
    check_index(op, index_in, E, g_in.size(0));
    const Tensor g = g_in.contiguous(), x = x_in.contiguous(), index = index_in.contiguous();
    Tensor out = torch::empty({E, B}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gnnff_gather_vecmat", [&] {
      const scalar_t *pg = g.data_ptr<scalar_t>(), *px = x.data_ptr<scalar_t>();
      const int64_t *pi = index.data_ptr<int64_t>();
      scalar_t *po = out.data_ptr<scalar_t>();
      with_columns(blocks, [&](const auto &columns) {
        at::parallel_for(0, E, EDGE_GRAIN, [&](int64_t e0, int64_t e1) {
          vecmat_rows<scalar_t>(columns, pg, px, pi, po, A, L, e0, e1);
        });
      });
    });
    return out;
  }

  // through the dispatcher, so that calls inside a backward are recorded when the graph of the
  // derivative is built (create_graph=True)
  Tensor call_outer(const Tensor &x, const Tensor &y, const Tensor &block, const Tensor &index,
                    int64_t n)
  {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("gnnff::outer_index_add", "")
                         .typed<Tensor(const Tensor &, const Tensor &, const Tensor &,
                                       const Tensor &, int64_t)>();
    return op.call(x, y, block, index, n);
  }

  Tensor call_matvec(const Tensor &g, const Tensor &y, const Tensor &block, const Tensor &index,
                     int64_t L)
  {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("gnnff::gather_matvec", "")
                         .typed<Tensor(const Tensor &, const Tensor &, const Tensor &,
                                       const Tensor &, int64_t)>();
    return op.call(g, y, block, index, L);
  }

  Tensor call_vecmat(const Tensor &g, const Tensor &x, const Tensor &block, const Tensor &index)
  {
    static auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("gnnff::gather_vecmat", "")
            .typed<Tensor(const Tensor &, const Tensor &, const Tensor &, const Tensor &)>();
    return op.call(g, x, block, index);
  }

  class OuterIndexAdd : public torch::autograd::Function<OuterIndexAdd> {
   public:
    static Tensor forward(AutogradContext *ctx, const Tensor &x, const Tensor &y,
                          const Tensor &block, const Tensor &index, int64_t n)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      ctx->save_for_backward({x, y, block, index});
      return call_outer(x, y, block, index, n);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const Tensor &x = saved[0], &y = saved[1], &block = saved[2], &index = saved[3];
      const Tensor &g = grads[0];
      Tensor dx, dy;
      if (ctx->needs_input_grad(0)) dx = call_matvec(g, y, block, index, x.size(2));
      if (ctx->needs_input_grad(1)) dy = call_vecmat(g, x, block, index);
      return {dx, dy, Tensor(), Tensor(), Tensor()};
    }
  };

  class GatherMatvec : public torch::autograd::Function<GatherMatvec> {
   public:
    static Tensor forward(AutogradContext *ctx, const Tensor &g, const Tensor &y,
                          const Tensor &block, const Tensor &index, int64_t L)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      ctx->save_for_backward({g, y, block, index});
      return call_matvec(g, y, block, index, L);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const Tensor &g = saved[0], &y = saved[1], &block = saved[2], &index = saved[3];
      const Tensor &h = grads[0];    // (E, A, L)
      Tensor dg, dy;
      if (ctx->needs_input_grad(0)) dg = call_outer(h, y, block, index, g.size(0));
      if (ctx->needs_input_grad(1)) dy = call_vecmat(g, h, block, index);
      return {dg, dy, Tensor(), Tensor(), Tensor()};
    }
  };

  class GatherVecmat : public torch::autograd::Function<GatherVecmat> {
   public:
    static Tensor forward(AutogradContext *ctx, const Tensor &g, const Tensor &x,
                          const Tensor &block, const Tensor &index)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      ctx->save_for_backward({g, x, block, index});
      return call_vecmat(g, x, block, index);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const Tensor &g = saved[0], &x = saved[1], &block = saved[2], &index = saved[3];
      const Tensor &h = grads[0];    // (E, B)
      Tensor dg, dx;
      if (ctx->needs_input_grad(0)) dg = call_outer(x, h, block, index, g.size(0));
      if (ctx->needs_input_grad(1)) dx = call_matvec(g, h, block, index, x.size(2));
      return {dg, dx, Tensor(), Tensor()};
    }
  };

  Tensor outer_index_add_autograd(const Tensor &x, const Tensor &y, const Tensor &block,
                                  const Tensor &index, int64_t n)
  { return OuterIndexAdd::apply(x, y, block, index, n); }

  Tensor gather_matvec_autograd(const Tensor &g, const Tensor &y, const Tensor &block,
                                const Tensor &index, int64_t L)
  { return GatherMatvec::apply(g, y, block, index, L); }

  Tensor gather_vecmat_autograd(const Tensor &g, const Tensor &x, const Tensor &block,
                                const Tensor &index)
  { return GatherVecmat::apply(g, x, block, index); }

}    // namespace

}    // namespace gnnff

TORCH_LIBRARY_FRAGMENT(gnnff, m)
{
  m.def("outer_index_add(Tensor x, Tensor y, Tensor block, Tensor index, int n) -> Tensor");
  m.def("gather_matvec(Tensor g, Tensor y, Tensor block, Tensor index, int L) -> Tensor");
  m.def("gather_vecmat(Tensor g, Tensor x, Tensor block, Tensor index) -> Tensor");
}

TORCH_LIBRARY_IMPL(gnnff, CPU, m)
{
  m.impl("outer_index_add", &gnnff::outer_index_add_cpu);
  m.impl("gather_matvec", &gnnff::gather_matvec_cpu);
  m.impl("gather_vecmat", &gnnff::gather_vecmat_cpu);
}

TORCH_LIBRARY_IMPL(gnnff, Autograd, m)
{
  m.impl("outer_index_add", &gnnff::outer_index_add_autograd);
  m.impl("gather_matvec", &gnnff::gather_matvec_autograd);
  m.impl("gather_vecmat", &gnnff::gather_vecmat_autograd);
}
