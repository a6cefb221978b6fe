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

namespace gnnff {

namespace {

  using torch::Tensor;
  using torch::autograd::AutogradContext;
  using torch::autograd::tensor_list;
  using Operand = std::optional<Tensor>;

  constexpr int64_t EDGE_GRAIN = 64;
  constexpr const char *OP = "gnnff::uvu_contract";

  // z[u] += s * x[u] * y[u] and z[u] = x[u] * y[u]: the channel loops, compiled for AVX2 too
  template <typename T>
  __attribute__((target_clones("avx2", "default"))) void
  fma_channels(T *__restrict__ z, const T s, const T *__restrict__ x, const T *__restrict__ y,
               int64_t n)
  {
    for (int64_t u = 0; u < n; ++u) z[u] += s * x[u] * y[u];
  }

  template <typename T>
  __attribute__((target_clones("avx2", "default"))) void
  axpy_channels(T *__restrict__ z, const T s, const T *__restrict__ x, int64_t n)
  {
    for (int64_t u = 0; u < n; ++u) z[u] += s * x[u];
  }

  template <typename T>
  __attribute__((target_clones("avx2", "default"))) void
  scale_channels(T *__restrict__ z, const T *__restrict__ w, int64_t n)
  {
    for (int64_t u = 0; u < n; ++u) z[u] *= w[u];
  }

  template <typename T>
  __attribute__((target_clones("avx2", "default"))) T dot3_channels(const T *__restrict__ x,
                                                                    const T *__restrict__ y,
                                                                    const T *__restrict__ z,
                                                                    int64_t n)
  {
    constexpr int64_t LANES = 8;    // partial sums: one running sum would wait on every add
    T partial[LANES] = {};
    int64_t u = 0;
    for (; u + LANES <= n; u += LANES)
      for (int64_t k = 0; k < LANES; ++k) partial[k] += x[u + k] * y[u + k] * z[u + k];
    T sum = 0;
    for (int64_t k = 0; k < LANES; ++k) sum += partial[k];
    for (; u < n; ++u) sum += x[u] * y[u] * z[u];
    return sum;
  }

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

  Tensor uvu_contract_cpu(const Operand &m_in, const Operand &x_in, const Operand &w_in,
                          const Operand &g_in, const Tensor &nz_k, const Tensor &nz_i,
                          const Tensor &path_in, int64_t n_in, int64_t n_paths)
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
    const int64_t E = first->size(0);
    int64_t U = -1;
    for (int a = 1; a < 4; ++a)
      if (a != free) U = operands[a]->value().size(2);
    const std::array<std::vector<int64_t>, 4> shapes = {
        std::vector<int64_t>{E, Z}, {E, I, U}, {E, P, U}, {E, K, U}};
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
    // each edge's row is zeroed by the task that fills it, while it is in cache (a torch::zeros
    // would be a separate pass over the whole output)
    Tensor out = torch::empty(shapes[free], first->options());
    const int64_t row = free == 0 ? Z : (free == 1 ? I : (free == 2 ? P : K)) * U;
    AT_DISPATCH_FLOATING_TYPES(first->scalar_type(), "gnnff_uvu_contract", [&] {
      using T = scalar_t;
      const T *pm = free == 0 ? nullptr : t[0].data_ptr<T>();
      const T *px = free == 1 ? nullptr : t[1].data_ptr<T>();
      const T *pw = free == 2 ? nullptr : t[2].data_ptr<T>();
      const T *pg = free == 3 ? nullptr : t[3].data_ptr<T>();
      T *po = out.data_ptr<T>();
      const int64_t *kz = tab.k.data(), *iz = tab.i.data(), *pk = tab.path.data();
      // edges are independent: tasks own disjoint rows of the output
      at::parallel_for(0, E, EDGE_GRAIN, [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; ++e) {
          std::fill_n(po + e * row, row, T(0));
          const T *me = pm ? pm + e * Z : nullptr;
          const T *xe = px ? px + e * I * U : nullptr;
          const T *we = pw ? pw + e * P * U : nullptr;
          const T *ge = pg ? pg + e * K * U : nullptr;
          switch (free) {
            case 3: {
              T *oe = po + e * K * U;
              for (int64_t z = 0; z < Z; ++z)
                axpy_channels<T>(oe + kz[z] * U, me[z], xe + iz[z] * U, U);
              for (int64_t k = 0; k < K; ++k) scale_channels<T>(oe + k * U, we + pk[k] * U, U);
              break;
            }
            case 1: {
              T *oe = po + e * I * U;
              for (int64_t z = 0; z < Z; ++z)
                fma_channels<T>(oe + iz[z] * U, me[z], we + pk[kz[z]] * U, ge + kz[z] * U, U);
              break;
            }
            case 2: {
              T *oe = po + e * P * U;
              for (int64_t z = 0; z < Z; ++z)
                fma_channels<T>(oe + pk[kz[z]] * U, me[z], xe + iz[z] * U, ge + kz[z] * U, U);
              break;
            }
            default: {
              T *oe = po + e * Z;
              for (int64_t z = 0; z < Z; ++z)
                oe[z] = dot3_channels<T>(xe + iz[z] * U, we + pk[kz[z]] * U, ge + kz[z] * U, U);
              break;
            }
          }
        }
      });
    });
    return out;
  }

  // through the dispatcher, so that calls inside a backward are recorded when the graph of the
  // derivative is built (create_graph=True)
  Tensor call_contract(const Operand &m, const Operand &x, const Operand &w, const Operand &g,
                       const Tensor &nz_k, const Tensor &nz_i, const Tensor &path, int64_t n_in,
                       int64_t n_paths)
  {
    static auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("gnnff::uvu_contract", "")
            .typed<Tensor(const Operand &, const Operand &, const Operand &, const Operand &,
                          const Tensor &, const Tensor &, const Tensor &, int64_t, int64_t)>();
    return op.call(m, x, w, g, nz_k, nz_i, path, n_in, n_paths);
  }

  class UvuContract : public torch::autograd::Function<UvuContract> {
   public:
    static Tensor forward(AutogradContext *ctx, const Operand &m, const Operand &x,
                          const Operand &w, const Operand &g, const Tensor &nz_k,
                          const Tensor &nz_i, const Tensor &path, int64_t n_in, int64_t n_paths)
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      const std::array<const Operand *, 4> ops = {&m, &x, &w, &g};
      std::vector<Tensor> saved;
      for (const Operand *o : ops) saved.push_back(o->has_value() ? o->value() : Tensor());
      saved.push_back(nz_k);
      saved.push_back(nz_i);
      saved.push_back(path);
      ctx->save_for_backward(saved);
      ctx->saved_data["n_in"] = n_in;
      ctx->saved_data["n_paths"] = n_paths;
      return call_contract(m, x, w, g, nz_k, nz_i, path, n_in, n_paths);
    }

    static tensor_list backward(AutogradContext *ctx, tensor_list grads)
    {
      const auto saved = ctx->get_saved_variables();
      const int64_t n_in = ctx->saved_data["n_in"].toInt();
      const int64_t n_paths = ctx->saved_data["n_paths"].toInt();
      const Tensor &h = grads[0];
      std::array<Operand, 4> ops;
      int free = -1;
      for (int a = 0; a < 4; ++a) {
        if (saved[a].defined())
          ops[a] = saved[a];
        else
          free = a;
      }
      tensor_list out(9);
      for (int a = 0; a < 4; ++a) {
        // needs_input_grad counts the inputs that are tensors: the None operand is not one
        if (a == free || !ctx->needs_input_grad(a < free ? a : a - 1)) continue;
        // <h, out> is T with h in the left-out slot: its derivative by operand a leaves a out
        std::array<Operand, 4> args = ops;
        args[free] = h;
        args[a] = std::nullopt;
        out[a] = call_contract(args[0], args[1], args[2], args[3], saved[4], saved[5], saved[6],
                               n_in, n_paths);
      }
      return out;
    }
  };

  Tensor uvu_contract_autograd(const Operand &m, const Operand &x, const Operand &w,
                               const Operand &g, const Tensor &nz_k, const Tensor &nz_i,
                               const Tensor &path, int64_t n_in, int64_t n_paths)
  { return UvuContract::apply(m, x, w, g, nz_k, nz_i, path, n_in, n_paths); }

}    // namespace

}    // namespace gnnff

TORCH_LIBRARY_FRAGMENT(gnnff, m)
{
  m.def("uvu_contract(Tensor? m, Tensor? x, Tensor? w, Tensor? g, Tensor nz_k, Tensor nz_i, "
        "Tensor path, int n_in, int n_paths) -> Tensor");
}

TORCH_LIBRARY_IMPL(gnnff, CPU, m)
{ m.impl("uvu_contract", &gnnff::uvu_contract_cpu); }

TORCH_LIBRARY_IMPL(gnnff, Autograd, m)
{ m.impl("uvu_contract", &gnnff::uvu_contract_autograd); }
