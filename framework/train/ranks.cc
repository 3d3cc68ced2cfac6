// c10d's Gloo backend is compiled into Debian's LibTorch; its header needs
// USE_C10D_GLOO (and libgloo-dev's headers).
#define USE_C10D_GLOO 1
#include "train/ranks.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lumpy {

namespace fs = std::filesystem;

struct Ranks::Group {
  c10::intrusive_ptr<::c10d::ProcessGroupGloo> pg;
};

Ranks::Ranks(int64_t rank, int64_t size, std::unique_ptr<Group> group)
    : rank_(rank), size_(size), group_(std::move(group)) {}
Ranks::~Ranks() = default;

std::pair<int64_t, int64_t> ShareOf(int64_t n, int64_t rank, int64_t size) {
  const int64_t base = n / size, extra = n % size;
  const int64_t begin = rank * base + std::min(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

namespace {

// An environment variable as a whole number, or nullopt when unset.
absl::StatusOr<std::optional<int64_t>> EnvInt(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::optional<int64_t>();
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) {
    return absl::InvalidArgumentError(absl::StrCat(name, "=", text, ": not a whole number"));
  }
  return std::optional<int64_t>(v);
}

// How long a rank waits for the others to join, and a collective for a rank
// that does not come: 10 minutes (LUMPY_RANKS_TIMEOUT seconds if set).
std::chrono::milliseconds Timeout() {
  const char* text = std::getenv("LUMPY_RANKS_TIMEOUT");
  int64_t seconds = 0;
  if (text != nullptr && absl::SimpleAtoi(text, &seconds) && seconds > 0) return std::chrono::seconds(seconds);
  return std::chrono::minutes(10);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Ranks>> Ranks::FromEnvironment(const fs::path& run_dir) {
  auto world = EnvInt("LUMPY_WORLD_SIZE");
  if (!world.ok()) return world.status();
  if (world->has_value() && **world > 1) {
    auto rank = EnvInt("LUMPY_RANK");
    if (!rank.ok()) return rank.status();
    const char* store = std::getenv("LUMPY_STORE");
    if (!rank->has_value() || store == nullptr) {
      return absl::InvalidArgumentError("LUMPY_WORLD_SIZE is set but LUMPY_RANK or LUMPY_STORE is not");
    }
    return Join(store, **rank, **world, Timeout());
  }
  auto tasks = EnvInt("SLURM_NTASKS");
  if (!tasks.ok()) return tasks.status();
  auto proc = EnvInt("SLURM_PROCID");
  if (!proc.ok()) return proc.status();
  if (!tasks->has_value() || **tasks <= 1 || !proc->has_value()) return std::unique_ptr<Ranks>();
  const char* job = std::getenv("SLURM_JOB_ID");
  const char* step = std::getenv("SLURM_STEP_ID");
  // The tasks meet in the run folder (shared between nodes): it may not
  // exist yet.
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  const fs::path store = run_dir / absl::StrCat(".c10d_store.", job ? job : "0", ".", step ? step : "0");
  return Join(store, **proc, **tasks, Timeout());
}

absl::StatusOr<std::unique_ptr<Ranks>> Ranks::Join(const fs::path& store, int64_t rank, int64_t size,
                                                   std::chrono::milliseconds timeout) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " of ", size, ": not a rank of the group"));
  }
  try {
    auto group = std::make_unique<Group>();
    auto file_store = c10::make_intrusive<::c10d::FileStore>(store.string(), static_cast<int>(size));
    file_store->setTimeout(timeout);
    auto options = ::c10d::ProcessGroupGloo::Options::create();
    options->timeout = timeout;
    options->devices.push_back(::c10d::ProcessGroupGloo::createDefaultDevice());
    group->pg = c10::make_intrusive<::c10d::ProcessGroupGloo>(file_store, static_cast<int>(rank),
                                                              static_cast<int>(size), options);
    return std::unique_ptr<Ranks>(new Ranks(rank, size, std::move(group)));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rank ", rank, " of ", size, " could not join the others through ",
                                               store.string(), ": ", e.what()));
  }
}

void Ranks::AllReduceSum(std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) return;
  std::vector<torch::Tensor> flat;
  for (const auto& t : tensors) flat.push_back(t.reshape({-1}));
  std::vector<torch::Tensor> buffer = {torch::cat(flat)};
  group_->pg->allreduce(buffer)->wait();
  int64_t at = 0;
  for (auto& t : tensors) {
    t.copy_(buffer[0].narrow(0, at, t.numel()).view_as(t));
    at += t.numel();
  }
}

torch::Tensor Ranks::AllGather(const torch::Tensor& mine, const std::vector<int64_t>& counts) {
  // Gloo gathers equal shapes: each share padded to the largest, then cut.
  const int64_t most = *std::max_element(counts.begin(), counts.end());
  auto shape = mine.sizes().vec();
  shape[0] = most;
  auto padded = torch::zeros(shape, mine.options());
  padded.narrow(0, 0, mine.size(0)).copy_(mine);
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int64_t r = 0; r < size_; ++r) out[0].push_back(torch::empty(shape, mine.options()));
  std::vector<torch::Tensor> in = {padded};
  group_->pg->allgather(out, in)->wait();
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < size_; ++r) parts.push_back(out[0][r].narrow(0, 0, counts[r]));
  return torch::cat(parts, 0);
}

void Ranks::Barrier() { group_->pg->barrier()->wait(); }

}  // namespace lumpy
