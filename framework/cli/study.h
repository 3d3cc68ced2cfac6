#pragma once
// `lumpy study STUDY.toml`: the whole blog from one command. For every run
// the study file names (study_file.h), in its order:
//   - done (its result folder holds summary.json and model_final.pt): skipped;
//   - its work folder finished: collected;
//   - its work folder holds a checkpoint: `lumpy resume`d, then collected;
//   - otherwise: `lumpy run` from the stage file with its seed and overrides,
//     then collected.
// Collecting writes the result folder: summary.json, metrics.csv.gz (every
// logged row), experiment.toml, model_final.pt and model_best.pt (the best
// checkpoint's metric and physical scalars, in model.pt's format), the
// report's figures (report/) and, for a run with `sky = true`, the real-sky
// check (sky_best.json, sky_best_bins.csv, sky_best_map.png). Then the
// claims (claims.h) into the study file's folder.
//
// Each run is a child process (`lumpy run` / `resume`, its output in
// WORK/NAME.log), behind --launcher if given ("srun -n1 -c8": each run a
// Slurm job step in the allocation `lumpy study` itself runs in). A run that
// fails is reported with its log and the study goes on with the others; the
// exit status is then 1. Interrupted (Ctrl-C, a time limit), the study is
// repeated with the same command: what finished is skipped, what was cut off
// resumes from its checkpoint.
#include <cstdint>
#include <string>
#include <vector>

namespace lumpy {

struct StudyOptions {
  std::string study;
  std::string work = "study_runs";  // the run folders (kept: they resume)
  std::string results;              // empty: the study's results folder
  std::vector<std::string> only;    // run names; empty: all
  int64_t steps = 0;                // > 0: every run cut to this many steps (needs --results)
  std::string launcher;             // a command prefix for each run, e.g. "srun -n1 -c8"
  bool no_run = false;              // collect what finished and compute the claims; run nothing
  bool no_claims = false;
  bool dry_run = false;             // say what would be done
};

int RunStudy(const StudyOptions& options);

}  // namespace lumpy
