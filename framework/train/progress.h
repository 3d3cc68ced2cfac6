#pragma once
// Progress display on stderr: a live bar with rate and ETA on a terminal,
// a line every tenth of the run otherwise (logs, CI).

#include <chrono>
#include <cstdint>

namespace lumpy {

class Progress {
 public:
  // `first`: the step the run starts at (a resumed run); the rate and ETA
  // count only the steps done here.
  Progress(int64_t total, bool enabled, int64_t first = 0);
  void Update(int64_t done, double loss);
  void Finish();

 private:
  void Draw(int64_t done, double loss, bool final_line);
  int64_t total_;
  int64_t first_;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  int64_t last_done_ = 0;
  double last_loss_ = 0;
  int64_t next_line_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lumpy
