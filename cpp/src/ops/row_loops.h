// The inner loops of gnnff's operators: elementwise passes over contiguous rows, each compiled
// for AVX2 and for the baseline (target_clones picks one at load time). Internal to the
// operators' translation units (an unnamed namespace: each has its own copy).
#pragma once

#include <cstdint>

namespace gnnff {
namespace {

  // The loops as always-inlined bodies (for kernels that are themselves compiled per target
  // and call them on short rows, where a call per row would cost as much as the row) ...

  // z[k] += s * x[k] * y[k]
  template <typename T>
  inline __attribute__((always_inline)) void
  fma_row(T *__restrict__ z, const T s, const T *__restrict__ x, const T *__restrict__ y, int64_t n)
  {
    for (int64_t k = 0; k < n; ++k) z[k] += s * x[k] * y[k];
  }

  // z[k] += s * x[k]
  template <typename T>
  inline __attribute__((always_inline)) void axpy_row(T *__restrict__ z, const T s,
                                                      const T *__restrict__ x, int64_t n)
  {
    for (int64_t k = 0; k < n; ++k) z[k] += s * x[k];
  }

  // sum_k x[k] y[k] z[k] in LANES partial sums: one running sum would make every add wait for
  // the previous one (the loop ran at the add's latency, ~8x below the vector units' speed)
  template <int64_t LANES, typename T>
  inline __attribute__((always_inline)) T dot3_row(const T *__restrict__ x, const T *__restrict__ y,
                                                   const T *__restrict__ z, int64_t n)
  {
    T partial[LANES] = {};
    int64_t k = 0;
    for (; k + LANES <= n; k += LANES)
      for (int64_t l = 0; l < LANES; ++l) partial[l] += x[k + l] * y[k + l] * z[k + l];
    T sum = 0;
    for (int64_t l = 0; l < LANES; ++l) sum += partial[l];
    for (; k < n; ++k) sum += x[k] * y[k] * z[k];
    return sum;
  }

  // ... and as functions compiled for AVX2 and for the baseline (target_clones picks one at load
  // time), for kernels that call them on long rows

  template <typename T>
  __attribute__((target_clones("avx2", "default"))) void
  fma_rows(T *__restrict__ z, const T s, const T *__restrict__ x, const T *__restrict__ y,
           int64_t n)
  { fma_row(z, s, x, y, n); }

  template <typename T>
  __attribute__((target_clones("avx2", "default"))) void
  axpy_rows(T *__restrict__ z, const T s, const T *__restrict__ x, int64_t n)
  { axpy_row(z, s, x, n); }

  template <int64_t LANES, typename T>
  __attribute__((target_clones("avx2", "default"))) T dot3(const T *__restrict__ x,
                                                           const T *__restrict__ y,
                                                           const T *__restrict__ z, int64_t n)
  { return dot3_row<LANES>(x, y, z, n); }

}    // namespace
}    // namespace gnnff
