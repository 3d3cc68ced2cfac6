#include "cli/check_command.h"

#include <algorithm>
#include <iostream>

#include "cli/exit_status.h"
#include "cli/run_folder.h"
#include "train/trainer.h"

namespace lumpy {

int RunCheck(const CheckCommandOptions& o) {
  int worst = kExitOk;
  for (const auto& f : o.files) {
    LoadedExperiment loaded;
    absl::Status st = LoadAndBuild(f, o.sets, &loaded);
    if (st.ok()) st = CheckTrainable(*loaded.exp, loaded.c);
    if (st.ok()) {
      const Experiment* exp = &*loaded.exp;
      std::cout << f << ": ok (" << exp->model.entry->name << " metric, "
                << exp->domains.size() << " domain(s), " << exp->losses.size()
                << " loss term(s), " << exp->runtime.GetInt("steps") << " steps)" << std::endl;
    } else {
      worst = std::max(worst, ExitStatus(st));
    }
  }
  return worst;
}

}  // namespace lumpy
