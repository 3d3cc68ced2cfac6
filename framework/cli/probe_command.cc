#include "cli/probe_command.h"

#include <filesystem>
#include <iostream>

#include "cli/exit_status.h"
#include "cli/run_folder.h"
#include "cli/probe.h"

namespace lumpy {

namespace fs = std::filesystem;

int RunProbe(const ProbeCommandOptions& o) {
  std::error_code ec;
  if (fs::exists(o.out) && fs::exists(o.points) && fs::equivalent(o.out, o.points, ec)) {
    std::cerr << "--out " << o.out << ": is the --points file itself; give another file for the table" << std::endl;
    return kExitConfig;
  }
  LoadedExperiment loaded;
  // Points anywhere: only a dust efe_residual column looks from the observer
  // (H today there; NaN if the metric is not defined there).
  loaded.observer_check = ObserverCheck::kNone;
  if (int rc = ExitStatus(LoadModel(o.experiment, o.sets, o.checkpoint, &loaded))) return rc;
  // The efe_residual column is filled by the experiment's term that offers
  // it (run_folder.h's ProbeColumnTerm), if any.
  LossTerm* efe = ProbeColumnTerm(loaded.c);
  std::string warning;
  absl::Status st = ProbeToCsv(*loaded.c.model, efe, loaded.c.observer, o.points, o.out, loaded.options, &warning);
  if (!warning.empty()) std::cerr << "warning: " << warning << std::endl;
  if (st.ok() && efe == nullptr) {
    std::cerr << "note: the experiment has no efe_residual term; that column is empty" << std::endl;
  }
  return ExitStatus(st);
}

}  // namespace lumpy
