#include "core/threads.h"

#include <dlfcn.h>
#include <sched.h>

#include <cstdlib>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

namespace lumpy {

int ConfigureThreads(int64_t threads) {
  if (threads <= 0) {
    // The cores this process may run on (its affinity: a Slurm task's or a
    // container's share), divided among the ranks on this machine.
    cpu_set_t set;
    const int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                                  : static_cast<int>(std::thread::hardware_concurrency());
    const char* local = std::getenv("LUMPY_LOCAL_RANKS");
    const int ranks = local != nullptr ? std::max(1, std::atoi(local)) : 1;
    threads = std::max(1, cores / ranks);
  }
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
