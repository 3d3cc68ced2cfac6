#pragma once
// One training spread over several processes (ranks) with LibTorch's own
// distributed backend, c10d's ProcessGroupGloo, meeting through a FileStore
// in the run folder (docs/physics.md, "Training over several processes").
//
// Every rank holds the whole model and optimizer; each step every rank
// draws the same points and bins (one shared random sequence) and does its
// share of the work: its slice of each domain's points, its share of a
// dataset term's rays. Gradients, the metrics row and the handlers' inputs
// are combined with all-reduce and all-gather, so that every rank takes the
// same optimizer step. Rank 0 alone writes the run folder.
//
// Where the ranks come from: `lumpy run --ranks N` starts N processes of
// itself with LUMPY_RANK, LUMPY_WORLD_SIZE and LUMPY_STORE set; under Slurm,
// `srun lumpy run ... --out DIR` takes them from SLURM_PROCID, SLURM_NTASKS
// and SLURM_JOB_ID.

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine_export.h"

namespace lumpy {

class LUMPY_ENGINE_API Ranks {
 public:
  // The ranks this process belongs to, from its environment; null in a
  // process of its own (no LUMPY_WORLD_SIZE > 1, no Slurm step of several
  // tasks). A Slurm step meets in RUN_DIR/.c10d_store.<job>.<step>.
  // InvalidArgument for an inconsistent environment.
  static absl::StatusOr<std::unique_ptr<Ranks>> FromEnvironment(const std::filesystem::path& run_dir);

  // Joins the group: every rank must call it with the same store file and
  // size. Blocks until all have joined (at most `timeout`), which is also
  // how long a collective waits for a rank that does not come (a dead one).
  static absl::StatusOr<std::unique_ptr<Ranks>> Join(const std::filesystem::path& store, int64_t rank,
                                                     int64_t size, std::chrono::milliseconds timeout);
  ~Ranks();

  int64_t rank() const { return rank_; }
  int64_t size() const { return size_; }

  // In place, on every rank: the element-wise sum over ranks. The tensors
  // (CPU, contiguous, one dtype) are packed into one buffer and sent once.
  void AllReduceSum(std::vector<torch::Tensor>& tensors);
  // Every rank's `mine` [n_r, ...] (n_r known to all: `counts`) concatenated
  // in rank order, on every rank.
  torch::Tensor AllGather(const torch::Tensor& mine, const std::vector<int64_t>& counts);
  void Barrier();

 private:
  struct Group;  // the c10d process group (ranks.cc)
  Ranks(int64_t rank, int64_t size, std::unique_ptr<Group> group);
  int64_t rank_, size_;
  std::unique_ptr<Group> group_;
};

// [begin, end) of rank r's contiguous share of n items split over `size`
// ranks: the first n % size ranks get one more.
LUMPY_ENGINE_API std::pair<int64_t, int64_t> ShareOf(int64_t n, int64_t rank, int64_t size);

}  // namespace lumpy
