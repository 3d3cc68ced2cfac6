#include "core/threads.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

namespace lumpy {

int ConfigureThreads(int64_t threads) {
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  torch::set_num_threads(static_cast<int>(threads));
  // Debian's LibTorch calls whichever libblas.so.3 is installed; look the
  // OpenBLAS setter up rather than link against one BLAS.
  using SetBlasThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(1);
  }
  return static_cast<int>(threads);
}

}  // namespace lumpy
