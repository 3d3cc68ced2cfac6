#pragma once
// `lumpy run|resume ... --ranks N`: one training spread over N processes of
// this program on this machine (train/ranks.h). Each is started with
// LUMPY_RANK, LUMPY_WORLD_SIZE, LUMPY_STORE (a FileStore in the run folder)
// and LUMPY_LOCAL_RANKS (so that `runtime.threads = 0` shares the cores),
// in a process group of their own: a signal to this process (Ctrl-C, kill,
// Slurm's) is passed on to each once. If one ends badly, the others are
// stopped (SIGTERM, then SIGKILL after 15 s) and the run folder keeps its
// last checkpoint. Returns rank 0's exit status (or that of a rank that
// failed while rank 0 did not).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lumpy {

// args: the command line each rank runs (without --ranks), e.g.
// {"run", "exp.toml", "--out", "runs/x"}; run_dir: where the ranks meet.
int LaunchRanks(int64_t ranks, const std::filesystem::path& run_dir, const std::vector<std::string>& args);

}  // namespace lumpy
