#pragma once
// Threads: one pool, LibTorch's intra-op threads.
//
// LibTorch parallelises elementwise work over OpenMP threads, and OpenBLAS
// keeps a second pool for its matrix products. With both pools as large as
// the machine, OpenMP's spinning workers and OpenBLAS's yielding workers
// fight over the same cores (measured on 2 cores: the SIREN jet 2x slower).
// So the BLAS runs single-threaded and the work that needs parallel matrix
// products (the fused Taylor-jet layers) splits them over LibTorch's threads
// itself.

#include <cstdint>

#include "engine_export.h"

namespace lumpy {

// Sets LibTorch's intra-op threads (0 = one per hardware thread) and makes
// the BLAS single-threaded where it can be told (OpenBLAS). Returns the
// number of threads in use.
LUMPY_ENGINE_API int ConfigureThreads(int64_t threads);

}  // namespace lumpy
