#pragma once
// Allocation failures: recognised from LibTorch's allocator message or
// std::bad_alloc, and reported as "out of memory while ..." with what needs
// less memory, instead of an allocator's internals.

#include <string>

namespace lumpy {

inline bool IsOutOfMemory(const std::string& what) {
  return what.find("can't allocate memory") != std::string::npos ||
         what.find("out of memory") != std::string::npos || what.find("std::bad_alloc") != std::string::npos;
}

// The allocator's own line, from "DefaultCPUAllocator:" on (how much it tried).
inline std::string AllocatorDetail(const std::string& what) {
  const size_t at = what.find("DefaultCPUAllocator:");
  std::string line = what.substr(at == std::string::npos ? 0 : at);
  return line.substr(0, line.find('\n'));
}

inline const char* OutOfMemoryAdvice() {
  return "fewer points per step (domains.*.strata.*.count), a smaller network (model.hidden, model.layers), "
         "float32 (runtime.dtype) or fewer rays need less";
}

}  // namespace lumpy
