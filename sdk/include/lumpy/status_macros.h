#pragma once
// Early returns for absl::Status and absl::StatusOr, in the engine and in
// plugins:
//
//   LUMPY_ASSIGN_OR_RETURN(auto path, lumpy::ResolveDataFile(p.GetString("data")));
//   LUMPY_ASSIGN_OR_RETURN(auto table, lumpy::LoadBao(path));
//   LUMPY_RETURN_IF_ERROR(CheckMyOptions(p));
//
// The first returns the failed status of its expression; the second declares
// (or assigns) `lhs` from a StatusOr's value, or returns its failed status.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LUMPY_STATUS_CONCAT_INNER(a, b) a##b
#define LUMPY_STATUS_CONCAT(a, b) LUMPY_STATUS_CONCAT_INNER(a, b)

#define LUMPY_RETURN_IF_ERROR(expr)                         \
  do {                                                      \
    ::absl::Status lumpy_status_ = (expr);                  \
    if (!lumpy_status_.ok()) return lumpy_status_;          \
  } while (false)

#define LUMPY_ASSIGN_OR_RETURN(lhs, expr) \
  LUMPY_ASSIGN_OR_RETURN_IMPL(LUMPY_STATUS_CONCAT(lumpy_statusor_, __LINE__), lhs, expr)

#define LUMPY_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
