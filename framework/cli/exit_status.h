#pragma once
// The CLI's exit statuses: 0 success, 2 usage or configuration error (nothing
// was run), 1 failure at run time.

#include <iostream>

#include "absl/status/status.h"

namespace lumpy {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;

// Prints a failed status's message and returns its exit status
// (InvalidArgument: configuration error).
inline int ExitStatus(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  std::cerr << status.message() << std::endl;
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitConfig : kExitRuntime;
}

// The same message as a configuration error (exit 2), whatever its code:
// for a failure that is the user's input however it was found.
inline absl::Status AsConfigError(const absl::Status& status) {
  return status.ok() ? status : absl::InvalidArgumentError(status.message());
}

// The same message as a failure at run time (exit 1), whatever its code:
// for a failure that comes after the input was accepted.
inline absl::Status AsRuntimeError(const absl::Status& status) {
  return status.code() != absl::StatusCode::kInvalidArgument ? status : absl::UnavailableError(status.message());
}

}  // namespace lumpy
