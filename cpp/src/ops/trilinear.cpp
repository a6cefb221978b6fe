// gnnff::trilinear and gnnff::trilinear_reduce: the sparse channel-wise tensor product of
// Allegro (python/gnnff/models/common/fused_tp.py) as one pass over the edges.
//
//   trilinear(a, b, w, ia, ib, io, n_out)[u, io[t], e] += w[u, t] * a[u, ia[t], e] * b[u, ib[t], e]
//   trilinear_reduce(a, b, c, ia, ib, ic)[u, t]        = sum_e a[u, ia[t], e] b[u, ib[t], e] c[u, ic[t], e]
//
// a, b, c: (U channels, components, E edges), edges innermost; w: (U, N); ia/ib/io/ic: (N,)
// int64 component indices of the N non-zero Clebsch-Gordan entries. The torch form of the same
// product materialises a (U, D_small, D_out, E) intermediate and reads it three times; these
// kernels read each input once per entry from L1 (edges in blocks) and skip the zero entries.
// Each op's derivative is written with the two ops themselves, so derivatives of any order exist
// (forces need one, training on forces two). CPU only: the Python module calls them for CPU
// tensors and keeps the torch form on other devices.
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>
#include <torch/torch.h>

#include "gnnff/ops.h"
#include "row_loops.h"

namespace gnnff {

namespace {

  using torch::Tensor;
  using torch::autograd::AutogradContext;
  using torch::autograd::tensor_list;

  constexpr int64_t EDGE_BLOCK = 256;    // 1 KiB of float per row: a block's rows stay in L1

  void check_inputs(const char *op, std::initializer_list<const Tensor *> rows,
                    std::initializer_list<const Tensor *> indices, int64_t n)
  {
    const Tensor &first = **rows.begin();
    for (const Tensor *t : rows) {
      TORCH_CHECK(t->dim() == 3 && t->size(0) == first.size(0) && t->size(2) == first.size(2), op,
                  ": inputs must be (channels, components, edges) with equal channels and "
                  "edges, got ",
                  first.sizes(), " and ", t->sizes());
      TORCH_CHECK(t->scalar_type() == first.scalar_type() && t->device().is_cpu(), op,
                  ": inputs must be CPU tensors of one floating dtype");
    }
    for (const Tensor *t : indices)
      TORCH_CHECK(t->dim() == 1 && t->size(0) == n && t->scalar_type() == torch::kInt64, op,
                  ": index tensors must be int64 of length ", n);
  }

  // a plain loop over the (short, contiguous) index list: no torch reductions per call
  void check_range(const char *op, const Tensor &index, int64_t size)
  {
    const int64_t *p = index.data_ptr<int64_t>();
    for (int64_t t = 0; t < index.numel(); ++t)
      TORCH_CHECK(p[t] >= 0 && p[t] < size, op, ": a component index is outside [0, ", size, ")");
  }

  // edges must be stride-1; channels and components may have any strides (views of larger
  // tensors, autograd's gradients), so no copy is made for them
  Tensor edges_innermost(const Tensor &t)
  { return t.stride(2) == 1 ? t : t.contiguous(); }

  Tensor trilinear_cpu(const Tensor &a_in, const Tensor &b_in, const Tensor &w_in,
                       const Tensor &ia_in, const Tensor &ib_in, const Tensor &io_in, int64_t n_out)
  {
    const int64_t n = w_in.size(1);
    check_inputs("gnnff::trilinear", {&a_in, &b_in}, {&ia_in, &ib_in, &io_in}, n);
    TORCH_CHECK(w_in.dim() == 2 && w_in.size(0) == a_in.size(0) &&
                    w_in.scalar_type() == a_in.scalar_type(),
                "gnnff::trilinear: weights must be (channels, entries) of the inputs' dtype");
    const Tensor a = edges_innermost(a_in), b = edges_innermost(b_in), w = w_in.contiguous();
    const Tensor ia = ia_in.contiguous(), ib = ib_in.contiguous(), io = io_in.contiguous();
    check_range("gnnff::trilinear", ia, a.size(1));
    check_range("gnnff::trilinear", ib, b.size(1));
    check_range("gnnff::trilinear", io, n_out);
    const int64_t U = a.size(0), E = a.size(2);
    const int64_t a0 = a.stride(0), a1 = a.stride(1), b0 = b.stride(0), b1 = b.stride(1);
    Tensor out = torch::empty({U, n_out, E}, a.options());
    const int64_t blocks = (E + EDGE_BLOCK - 1) / EDGE_BLOCK;
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gnnff_trilinear", [&] {
      const scalar_t *pa = a.data_ptr<scalar_t>(), *pb = b.data_ptr<scalar_t>();
      const scalar_t *pw = w.data_ptr<scalar_t>();
      scalar_t *po = out.data_ptr<scalar_t>();
      const int64_t *ja = ia.data_ptr<int64_t>(), *jb = ib.data_ptr<int64_t>(),
                    *jo = io.data_ptr<int64_t>();
      // (channel, edge block) tasks write disjoint parts of the output; each zeroes its own
      // block first (while it is in cache) instead of a separate pass over the whole output
      at::parallel_for(0, U * blocks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t u = task / blocks, e0 = (task % blocks) * EDGE_BLOCK;
          const int64_t len = std::min(EDGE_BLOCK, E - e0);
          for (int64_t k = 0; k < n_out; ++k)
            std::fill_n(po + (u * n_out + k) * E + e0, len, scalar_t(0));
          for (int64_t t = 0; t < n; ++t)
            fma_rows<scalar_t>(po + (u * n_out + jo[t]) * E + e0, pw[u * n + t],
                               pa + u * a0 + ja[t] * a1 + e0, pb + u * b0 + jb[t] * b1 + e0, len);
        }
      });
    });
    return out;
  }

  Tensor trilinear_reduce_cpu(const Tensor &a_in, const Tensor &b_in, const Tensor &c_in,
                              const Tensor &ia_in, const Tensor &ib_in, const Tensor &ic_in)
  {
    const int64_t n = ia_in.size(0);
    check_inputs("gnnff::trilinear_reduce", {&a_in, &b_in, &c_in}, {&ia_in, &ib_in, &ic_in}, n);
    const Tensor a = edges_innermost(a_in), b = edges_innermost(b_in), c = edges_innermost(c_in);
    const Tensor ia = ia_in.contiguous(), ib = ib_in.contiguous(), ic = ic_in.contiguous();
    check_range("gnnff::trilinear_reduce", ia, a.size(1));
    check_range("gnnff::trilinear_reduce", ib, b.size(1));
    check_range("gnnff::trilinear_reduce", ic, c.size(1));
    const int64_t U = a.size(0), E = a.size(2);
    const int64_t a0 = a.stride(0), a1 = a.stride(1), b0 = b.stride(0), b1 = b.stride(1);
    const int64_t c0 = c.stride(0), c1 = c.stride(1);
    Tensor out = torch::empty({U, n}, a.options());
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gnnff_trilinear_reduce", [&] {
      const scalar_t *pa = a.data_ptr<scalar_t>(), *pb = b.data_ptr<scalar_t>(),
                     *pc = c.data_ptr<scalar_t>();
      scalar_t *po = out.data_ptr<scalar_t>();
      const int64_t *ja = ia.data_ptr<int64_t>(), *jb = ib.data_ptr<int64_t>(),
                    *jc = ic.data_ptr<int64_t>();
      at::parallel_for(0, U * n, 1, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t u = task / n, t = task % n;
          po[task] = dot3<16, scalar_t>(pa + u * a0 + ja[t] * a1, pb + u * b0 + jb[t] * b1,
                                        pc + u * c0 + jc[t] * c1, E);
        }
      });
    });
    return out;
  }

  // the ops through the dispatcher, so that calls inside a backward are recorded when the
  // graph of the derivative is built (create_graph=True)
  Tensor call_trilinear(const Tensor &a, const Tensor &b, const Tensor &w, const Tensor &ia,
                        const Tensor &ib, const Tensor &io, int64_t n_out)
  {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("gnnff::trilinear", "")
                         .typed<Tensor(const Tensor &, const Tensor &, const Tensor &,
                                       const Tensor &, const Tensor &, const Tensor &, int64_t)>();
    return op.call(a, b, w, ia, ib, io, n_out);
  }

  Tensor call_reduce(const Tensor &a, const Tensor &b, const Tensor &c, const Tensor &ia,
                     const Tensor &ib, const Tensor &ic)
  {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("gnnff::trilinear_reduce", "")
                         .typed<Tensor(const Tensor &, const Tensor &, const Tensor &,
                                       const Tensor &, const Tensor &, const Tensor &)>();
    return op.call(a, b, c, ia, ib, ic);
  }

  class Trilinear : public torch::autograd::Function<Trilinear> {
   public:
    static Tensor forward(AutogradContext *ctx, const Tensor &a, const Tensor &b, const Tensor &w,
                          const Tensor &ia, const Tensor &ib, const Tensor &io, int64_t n_out)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      ctx->save_for_backward({a, b, w, ia, ib, io});
      return call_trilinear(a, b, w, ia, ib, io, n_out);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const Tensor &a = saved[0], &b = saved[1], &w = saved[2];
      const Tensor &ia = saved[3], &ib = saved[4], &io = saved[5];
      const Tensor g = grads[0];
      Tensor da, db, dw;
      if (ctx->needs_input_grad(0)) da = call_trilinear(g, b, w, io, ib, ia, a.size(1));
      if (ctx->needs_input_grad(1)) db = call_trilinear(g, a, w, io, ia, ib, b.size(1));
      if (ctx->needs_input_grad(2)) dw = call_reduce(g, a, b, io, ia, ib);
      return {da, db, dw, Tensor(), Tensor(), Tensor(), Tensor()};
    }
  };

  class TrilinearReduce : public torch::autograd::Function<TrilinearReduce> {
   public:
    static Tensor forward(AutogradContext *ctx, const Tensor &a, const Tensor &b, const Tensor &c,
                          const Tensor &ia, const Tensor &ib, const Tensor &ic)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      ctx->save_for_backward({a, b, c, ia, ib, ic});
      return call_reduce(a, b, c, ia, ib, ic);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const Tensor &a = saved[0], &b = saved[1], &c = saved[2];
      const Tensor &ia = saved[3], &ib = saved[4], &ic = saved[5];
      const Tensor h = grads[0];
      Tensor da, db, dc;
      if (ctx->needs_input_grad(0)) da = call_trilinear(b, c, h, ib, ic, ia, a.size(1));
      if (ctx->needs_input_grad(1)) db = call_trilinear(a, c, h, ia, ic, ib, b.size(1));
      if (ctx->needs_input_grad(2)) dc = call_trilinear(a, b, h, ia, ib, ic, c.size(1));
      return {da, db, dc, Tensor(), Tensor(), Tensor()};
    }
  };

  Tensor trilinear_autograd(const Tensor &a, const Tensor &b, const Tensor &w, const Tensor &ia,
                            const Tensor &ib, const Tensor &io, int64_t n_out)
  { return Trilinear::apply(a, b, w, ia, ib, io, n_out); }

  Tensor trilinear_reduce_autograd(const Tensor &a, const Tensor &b, const Tensor &c,
                                   const Tensor &ia, const Tensor &ib, const Tensor &ic)
  { return TrilinearReduce::apply(a, b, c, ia, ib, ic); }

}    // namespace

int ops_version()
{ return 3; }

}    // namespace gnnff

TORCH_LIBRARY(gnnff, m)
{
  m.def("trilinear(Tensor a, Tensor b, Tensor w, Tensor ia, Tensor ib, Tensor io, int n_out) "
        "-> Tensor");
  m.def("trilinear_reduce(Tensor a, Tensor b, Tensor c, Tensor ia, Tensor ib, Tensor ic) "
        "-> Tensor");
}

TORCH_LIBRARY_IMPL(gnnff, CPU, m)
{
  m.impl("trilinear", &gnnff::trilinear_cpu);
  m.impl("trilinear_reduce", &gnnff::trilinear_reduce_cpu);
}

TORCH_LIBRARY_IMPL(gnnff, Autograd, m)
{
  m.impl("trilinear", &gnnff::trilinear_autograd);
  m.impl("trilinear_reduce", &gnnff::trilinear_reduce_autograd);
}
