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
//
// One operand may be indexed by atoms: with b_index, edge e reads column b_index[e] of b (U, D,
// rows) (Allegro's environment of the edge's centre atom, gathered block by block into L1 instead
// of an index_select onto the edges); with out_index, edge e's product is added into column
// out_index[e] of a zeroed (U, n_out, out_rows) output (the environment's gradient, summed onto
// the atoms instead of a scatter_add); with c_index, the reduction reads c that way.
//
// Each op's derivative is written with the two ops themselves, so derivatives of any order exist
// (forces need one, training on forces two). CPU only: the Python module calls them for CPU
// tensors and keeps the torch form on other devices.
#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "gnnff/ops.h"
#include "row_loops.h"

namespace gnnff {

namespace {

  using torch::Tensor;
  using torch::autograd::AutogradContext;
  using torch::autograd::tensor_list;

  using Operand = std::optional<Tensor>;

  constexpr int64_t EDGE_BLOCK = 256;    // 1 KiB of float per row: a block's rows stay in L1

  bool given(const Operand &t)
  { return t.has_value() && t->defined(); }

  // shapes first (before any size is read), then one CPU floating dtype for all
  void check_operands(const char *op, std::initializer_list<const Tensor *> operands,
                      bool last_indexed)
  {
    const Tensor &first = **operands.begin();
    const int64_t count = static_cast<int64_t>(operands.size());
    int64_t k = 0;
    for (const Tensor *t : operands) {
      const bool indexed = last_indexed && ++k == count;    // atom rows: its own length
      TORCH_CHECK(t->dim() == 3 && first.dim() == 3 && t->size(0) == first.size(0) &&
                      (indexed || t->size(2) == first.size(2)),
                  op,
                  ": inputs must be (channels, components, edges) with equal channels and "
                  "edges (an operand read by atom: (channels, components, atoms)), got ",
                  first.sizes(), " and ", t->sizes());
      TORCH_CHECK(t->scalar_type() == first.scalar_type() && t->device().is_cpu() &&
                      t->is_floating_point(),
                  op, ": inputs must be CPU tensors of one floating dtype");
    }
  }

  void check_entries(const char *op, std::initializer_list<const Tensor *> indices, int64_t n)
  {
    for (const Tensor *t : indices)
      TORCH_CHECK(t->dim() == 1 && t->size(0) == n && t->scalar_type() == torch::kInt64, op,
                  ": index tensors must be int64 of length ", n);
  }

  // a plain loop over the (short, contiguous) index list: no torch reductions per call
  void check_range(const char *op, const Tensor &index, int64_t size,
                   const char *what = "a component index")
  {
    const int64_t *p = index.data_ptr<int64_t>();
    for (int64_t t = 0; t < index.numel(); ++t)
      TORCH_CHECK(p[t] >= 0 && p[t] < size, op, ": ", what, " is outside [0, ", size, ")");
  }

  // the atom-row index of an indexed operand or output: one int64 per edge, values < rows
  Tensor read_rows(const char *op, const char *what, const Tensor &index, int64_t edges,
                   int64_t rows)
  {
    TORCH_CHECK(index.dim() == 1 && index.size(0) == edges &&
                    index.scalar_type() == torch::kInt64 && index.device().is_cpu(),
                op, ": ", what, " must be a CPU int64 tensor of one row per edge (", edges,
                "), got ", index.sizes(), " ", index.scalar_type());
    TORCH_CHECK(rows >= 0, op, ": an output indexed by ", what, " needs its number of rows");
    const Tensor c = index.contiguous();
    check_range(op, c, rows, what);
    return c;
  }

  // edges must be stride-1; channels and components may have any strides (views of larger
  // tensors, autograd's gradients), so no copy is made for them
  Tensor edges_innermost(const Tensor &t)
  { return t.stride(2) == 1 ? t : t.contiguous(); }

  // rows [e0, e0 + len) of every component of channel u of an operand indexed by atoms,
  // gathered into buf (components x EDGE_BLOCK): the block's products then read contiguous rows
  template <typename T>
  void gather_block(T *buf, const T *p, int64_t u, const int64_t *stride, int64_t components,
                    const int64_t *rows, int64_t e0, int64_t len)
  {
    for (int64_t i = 0; i < components; ++i) {
      const T *src = p + u * stride[0] + i * stride[1];
      T *dst = buf + i * EDGE_BLOCK;
      for (int64_t e = 0; e < len; ++e) dst[e] = src[rows[e0 + e] * stride[2]];
    }
  }

  Tensor trilinear_cpu(const Tensor &a_in, const Tensor &b_in, const Tensor &w_in,
                       const Tensor &ia_in, const Tensor &ib_in, const Tensor &io_in, int64_t n_out,
                       const Operand &b_index, const Operand &out_index, int64_t out_rows)
  {
    constexpr const char *OP = "gnnff::trilinear";
    const bool gather = given(b_index), scatter = given(out_index);
    TORCH_CHECK(!(gather && scatter), OP, ": b_index and out_index cannot both be given");
    check_operands(OP, {&a_in, &b_in}, gather);
    TORCH_CHECK(w_in.dim() == 2 && w_in.size(0) == a_in.size(0) &&
                    w_in.scalar_type() == a_in.scalar_type(),
                OP, ": weights must be (channels, entries) of the inputs' dtype");
    const int64_t U = a_in.size(0), E = a_in.size(2), n = w_in.size(1);
    check_entries(OP, {&ia_in, &ib_in, &io_in}, n);
    const Tensor a = edges_innermost(a_in), w = w_in.contiguous();
    // an indexed operand is gathered row by row: any strides
    const Tensor b = gather ? b_in : edges_innermost(b_in);
    const Tensor ia = ia_in.contiguous(), ib = ib_in.contiguous(), io = io_in.contiguous();
    check_range(OP, ia, a.size(1));
    check_range(OP, ib, b.size(1));
    check_range(OP, io, n_out);
    const Tensor rows = gather ? read_rows(OP, "b_index", *b_index, E, b.size(2))
        : scatter              ? read_rows(OP, "out_index", *out_index, E, out_rows)
                               : Tensor();
    const int64_t a0 = a.stride(0), a1 = a.stride(1);
    const int64_t b_stride[3] = {b.stride(0), b.stride(1), b.stride(2)};
    const int64_t Db = b.size(1);
    // a scattered output sums the edges that point at each row; otherwise each (channel, block)
    // task owns its part and zeroes it while it is in cache (no separate pass over the output)
    Tensor out = scatter ? torch::zeros({U, n_out, out_rows}, a.options())
                         : torch::empty({U, n_out, E}, a.options());
    const int64_t O = out.size(2);
    const int64_t blocks = (E + EDGE_BLOCK - 1) / EDGE_BLOCK;
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gnnff_trilinear", [&] {
      using T = scalar_t;
      const T *pa = a.data_ptr<T>(), *pb = b.data_ptr<T>(), *pw = w.data_ptr<T>();
      T *po = out.data_ptr<T>();
      const int64_t *ja = ia.data_ptr<int64_t>(), *jb = ib.data_ptr<int64_t>(),
                    *jo = io.data_ptr<int64_t>();
      const int64_t *row = rows.defined() ? rows.data_ptr<int64_t>() : nullptr;
      // the products of channel u on edges [e0, e0 + len) added into dst (row k at k * ld)
      auto block = [&](T *dst, int64_t ld, int64_t u, int64_t e0, int64_t len, T *b_buf) {
        const T *brow = pb + u * b_stride[0] + e0;    // per-edge b: rows read in place
        int64_t b1 = b_stride[1];
        if (gather) {
          gather_block<T>(b_buf, pb, u, b_stride, Db, row, e0, len);
          brow = b_buf;
          b1 = EDGE_BLOCK;
        }
        for (int64_t t = 0; t < n; ++t)
          fma_rows<T>(dst + jo[t] * ld, pw[u * n + t], pa + u * a0 + ja[t] * a1 + e0,
                      brow + jb[t] * b1, len);
      };
      if (scatter) {
        // edges add into shared rows: each task owns whole channels instead and goes over the
        // edges in order (the same bits on any number of threads)
        at::parallel_for(0, U, 1, [&](int64_t u0, int64_t u1) {
          std::vector<T> buf(n_out * EDGE_BLOCK);
          for (int64_t u = u0; u < u1; ++u)
            for (int64_t e0 = 0; e0 < E; e0 += EDGE_BLOCK) {
              const int64_t len = std::min(EDGE_BLOCK, E - e0);
              std::fill(buf.begin(), buf.end(), T(0));
              block(buf.data(), EDGE_BLOCK, u, e0, len, nullptr);
              // components innermost: their sums into one atom are independent, where one
              // component's edges (sorted by centre) would add into the same number in turn
              T *dst = po + u * n_out * O;
              for (int64_t e = 0; e < len; ++e) {
                const int64_t r = row[e0 + e];
                for (int64_t k = 0; k < n_out; ++k) dst[k * O + r] += buf[k * EDGE_BLOCK + e];
              }
            }
        });
      } else {
        at::parallel_for(0, U * blocks, 1, [&](int64_t begin, int64_t end) {
          std::vector<T> b_buf(gather ? Db * EDGE_BLOCK : 0);
          for (int64_t task = begin; task < end; ++task) {
            const int64_t u = task / blocks, e0 = (task % blocks) * EDGE_BLOCK;
            const int64_t len = std::min(EDGE_BLOCK, E - e0);
            T *dst = po + u * n_out * E + e0;
            for (int64_t k = 0; k < n_out; ++k) std::fill_n(dst + k * E, len, T(0));
            block(dst, E, u, e0, len, b_buf.data());
          }
        });
      }
    });
    return out;
  }

  Tensor trilinear_reduce_cpu(const Tensor &a_in, const Tensor &b_in, const Tensor &c_in,
                              const Tensor &ia_in, const Tensor &ib_in, const Tensor &ic_in,
                              const Operand &c_index)
  {
    constexpr const char *OP = "gnnff::trilinear_reduce";
    const int64_t n = ia_in.size(0);
    const bool gather = given(c_index);
    check_operands(OP, {&a_in, &b_in, &c_in}, gather);
    const int64_t E = a_in.size(2);
    check_entries(OP, {&ia_in, &ib_in, &ic_in}, n);
    const Tensor a = edges_innermost(a_in), b = edges_innermost(b_in);
    const Tensor c = gather ? c_in : edges_innermost(c_in);
    const Tensor ia = ia_in.contiguous(), ib = ib_in.contiguous(), ic = ic_in.contiguous();
    check_range(OP, ia, a.size(1));
    check_range(OP, ib, b.size(1));
    check_range(OP, ic, c.size(1));
    const Tensor rows = gather ? read_rows(OP, "c_index", *c_index, E, c.size(2)) : Tensor();
    const int64_t U = a.size(0);
    const int64_t a0 = a.stride(0), a1 = a.stride(1), b0 = b.stride(0), b1 = b.stride(1);
    const int64_t c_stride[3] = {c.stride(0), c.stride(1), c.stride(2)};
    const int64_t Dc = c.size(1);
    Tensor out = torch::empty({U, n}, a.options());
    AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gnnff_trilinear_reduce", [&] {
      using T = scalar_t;
      const T *pa = a.data_ptr<T>(), *pb = b.data_ptr<T>(), *pc = c.data_ptr<T>();
      T *po = out.data_ptr<T>();
      const int64_t *ja = ia.data_ptr<int64_t>(), *jb = ib.data_ptr<int64_t>(),
                    *jc = ic.data_ptr<int64_t>();
      if (gather) {
        // per channel: each block of c gathered once and read by every entry
        const int64_t *row = rows.data_ptr<int64_t>();
        at::parallel_for(0, U, 1, [&](int64_t u0, int64_t u1) {
          std::vector<T> c_buf(Dc * EDGE_BLOCK);
          for (int64_t u = u0; u < u1; ++u) {
            T *sum = po + u * n;
            std::fill_n(sum, n, T(0));
            for (int64_t e0 = 0; e0 < E; e0 += EDGE_BLOCK) {
              const int64_t len = std::min(EDGE_BLOCK, E - e0);
              gather_block<T>(c_buf.data(), pc, u, c_stride, Dc, row, e0, len);
              for (int64_t t = 0; t < n; ++t)
                sum[t] += dot3<16, T>(pa + u * a0 + ja[t] * a1 + e0, pb + u * b0 + jb[t] * b1 + e0,
                                      c_buf.data() + jc[t] * EDGE_BLOCK, len);
            }
          }
        });
        return;
      }
      at::parallel_for(0, U * n, 1, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t u = task / n, t = task % n;
          po[task] = dot3<16, T>(pa + u * a0 + ja[t] * a1, pb + u * b0 + jb[t] * b1,
                                 pc + u * c_stride[0] + jc[t] * c_stride[1], E);
        }
      });
    });
    return out;
  }

  // the ops through the dispatcher, so that calls inside a backward are recorded when the
  // graph of the derivative is built (create_graph=True)
  Tensor call_trilinear(const Tensor &a, const Tensor &b, const Tensor &w, const Tensor &ia,
                        const Tensor &ib, const Tensor &io, int64_t n_out,
                        const Operand &b_index = std::nullopt,
                        const Operand &out_index = std::nullopt, int64_t out_rows = -1)
  {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("gnnff::trilinear", "")
                         .typed<Tensor(const Tensor &, const Tensor &, const Tensor &,
                                       const Tensor &, const Tensor &, const Tensor &, int64_t,
                                       const Operand &, const Operand &, int64_t)>();
    return op.call(a, b, w, ia, ib, io, n_out, b_index, out_index, out_rows);
  }

  Tensor call_reduce(const Tensor &a, const Tensor &b, const Tensor &c, const Tensor &ia,
                     const Tensor &ib, const Tensor &ic, const Operand &c_index = std::nullopt)
  {
    static auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("gnnff::trilinear_reduce", "")
            .typed<Tensor(const Tensor &, const Tensor &, const Tensor &, const Tensor &,
                          const Tensor &, const Tensor &, const Operand &)>();
    return op.call(a, b, c, ia, ib, ic, c_index);
  }

  Operand saved_index(const Tensor &t)
  { return t.defined() ? Operand(t) : std::nullopt; }

  // The derivatives keep an operand indexed by atoms in the one slot that may be indexed (b of
  // trilinear, c of the reduction; trilinear is symmetric in a and b), so the set of forms is
  // closed: gathered b, scattered output, gathered c, at every order.
  class Trilinear : public torch::autograd::Function<Trilinear> {
   public:
    static Tensor forward(AutogradContext *ctx, const Tensor &a, const Tensor &b, const Tensor &w,
                          const Tensor &ia, const Tensor &ib, const Tensor &io, int64_t n_out,
                          const Operand &b_index, const Operand &out_index, int64_t out_rows)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      ctx->save_for_backward({a, b, w, ia, ib, io, given(b_index) ? *b_index : Tensor(),
                              given(out_index) ? *out_index : Tensor()});
      return call_trilinear(a, b, w, ia, ib, io, n_out, b_index, out_index, out_rows);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const Tensor &a = saved[0], &b = saved[1], &w = saved[2];
      const Tensor &ia = saved[3], &ib = saved[4], &io = saved[5];
      const Operand bi = saved_index(saved[6]), oi = saved_index(saved[7]);
      const Tensor g = grads[0];    // indexed by out_index when the output was scattered
      Tensor da, db, dw;
      if (ctx->needs_input_grad(0))
        da = oi ? call_trilinear(b, g, w, ib, io, ia, a.size(1), oi)
                : call_trilinear(g, b, w, io, ib, ia, a.size(1), bi);
      if (ctx->needs_input_grad(1))
        db = bi  ? call_trilinear(g, a, w, io, ia, ib, b.size(1), std::nullopt, bi, b.size(2))
            : oi ? call_trilinear(a, g, w, ia, io, ib, b.size(1), oi)
                 : call_trilinear(g, a, w, io, ia, ib, b.size(1));
      if (ctx->needs_input_grad(2))
        dw = oi ? call_reduce(a, b, g, ia, ib, io, oi) : call_reduce(g, a, b, io, ia, ib, bi);
      return {da, db, dw, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    }
  };

  class TrilinearReduce : public torch::autograd::Function<TrilinearReduce> {
   public:
    static Tensor forward(AutogradContext *ctx, const Tensor &a, const Tensor &b, const Tensor &c,
                          const Tensor &ia, const Tensor &ib, const Tensor &ic,
                          const Operand &c_index)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      ctx->save_for_backward({a, b, c, ia, ib, ic, given(c_index) ? *c_index : Tensor()});
      return call_reduce(a, b, c, ia, ib, ic, c_index);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const Tensor &a = saved[0], &b = saved[1], &c = saved[2];
      const Tensor &ia = saved[3], &ib = saved[4], &ic = saved[5];
      const Operand ci = saved_index(saved[6]);
      const Tensor h = grads[0];
      Tensor da, db, dc;
      if (ctx->needs_input_grad(0)) da = call_trilinear(b, c, h, ib, ic, ia, a.size(1), ci);
      if (ctx->needs_input_grad(1)) db = call_trilinear(a, c, h, ia, ic, ib, b.size(1), ci);
      if (ctx->needs_input_grad(2))
        dc = ci ? call_trilinear(a, b, h, ia, ib, ic, c.size(1), std::nullopt, ci, c.size(2))
                : call_trilinear(a, b, h, ia, ib, ic, c.size(1));
      return {da, db, dc, Tensor(), Tensor(), Tensor(), Tensor()};
    }
  };

  Tensor trilinear_autograd(const Tensor &a, const Tensor &b, const Tensor &w, const Tensor &ia,
                            const Tensor &ib, const Tensor &io, int64_t n_out,
                            const Operand &b_index, const Operand &out_index, int64_t out_rows)
  { return Trilinear::apply(a, b, w, ia, ib, io, n_out, b_index, out_index, out_rows); }

  Tensor trilinear_reduce_autograd(const Tensor &a, const Tensor &b, const Tensor &c,
                                   const Tensor &ia, const Tensor &ib, const Tensor &ic,
                                   const Operand &c_index)
  { return TrilinearReduce::apply(a, b, c, ia, ib, ic, c_index); }

}    // namespace

int ops_version()
{ return 4; }

}    // namespace gnnff

TORCH_LIBRARY(gnnff, m)
{
  m.def("trilinear(Tensor a, Tensor b, Tensor w, Tensor ia, Tensor ib, Tensor io, int n_out, "
        "Tensor? b_index=None, Tensor? out_index=None, int out_rows=-1) -> Tensor");
  m.def("trilinear_reduce(Tensor a, Tensor b, Tensor c, Tensor ia, Tensor ib, Tensor ic, "
        "Tensor? c_index=None) -> Tensor");
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
