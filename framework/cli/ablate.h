#pragma once
// `lumpy ablate`: every combination of --vary values (and seeds) of one
// experiment, each a separate `lumpy run` in its own folder under the output
// folder, then one comparison table (ablation.csv, ablation.md) and figure
// (ablation.png). The runs are local processes or the tasks of one Slurm job
// array (OUT/sweep.sbatch; a task resumes its run if a checkpoint is there,
// and on Slurm's warning before its time limit it checkpoints and requeues
// itself). OUT/sweep.json describes the sweep; `--collect OUT` rebuilds the
// table from it at any time.

#include <string>
#include <vector>

#include "engine_export.h"

namespace lumpy {

struct AblateOptions {
  std::string experiment;
  std::vector<std::string> sets;    // --set, applied to every variant
  std::vector<std::string> varies;  // "key=v1,v2,..." each
  int seeds = 1;                    // seeds experiment seed, +1, ...
  int jobs = 1;                     // processes at a time (local executor)
  int64_t max_runs = 1000;          // a larger sweep is refused unless this is raised
  std::string out;
  // Where the runs go (executor.h): "local" (processes here) or "slurm" (one
  // job array, one task per variant and seed, submitted with sbatch).
  std::string executor = "local";
  struct Slurm {
    std::string partition, time, mem, account, qos;
    int cpus_per_task = 1;
    std::vector<std::string> sbatch_args;  // anything else, passed through
    int warn_seconds = 120;                // --signal: time before the limit to checkpoint and requeue
    bool wait = true;                      // poll until every task is done
    double poll_seconds = 5;
  } slurm;
  // Builds the table of the sweep in this folder from whatever finished,
  // marking the rest (pending, running); nothing else is needed.
  std::string collect;
};

// Exit status as the CLI's: 2 for a usage or configuration error (before
// anything runs), 1 if any variant failed (the table still lists all), 0.
LUMPY_ENGINE_API int RunAblation(const AblateOptions& options);

// "a,[1, 2],\"x,y\"" -> {"a", "[1, 2]", "\"x,y\""}: commas inside brackets,
// braces or quotes do not split.
LUMPY_ENGINE_API std::vector<std::string> SplitValues(const std::string& text);

}  // namespace lumpy
