#include "train/progress.h"

#include <unistd.h>

#include <cstdio>
#include <string>

namespace lumpy {

namespace {
std::string Clock(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  }
  return buf;
}
}  // namespace

Progress::Progress(int64_t total, bool enabled, int64_t first)
    : total_(total), first_(first), enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1) {
  last_done_ = next_line_ = first;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::Update(int64_t done, double loss) {
  last_done_ = done;
  last_loss_ = loss;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    Draw(done, loss, false);
  } else if (done >= next_line_ || done == total_) {
    next_line_ = done + std::max<int64_t>(1, (total_ - first_) / 10);
    Draw(done, loss, true);
  }
}

void Progress::Draw(int64_t done, double loss, bool final_line) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = (done - first_) / std::max(elapsed, 1e-9);
  const double eta = rate > 0 ? (total_ - done) / rate : -1;
  const int width = 24;
  const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  std::fprintf(stderr, "%s[%s] %lld/%lld  loss %.4e  %.1f steps/s  elapsed %s  ETA %s%s",
               tty_ ? "\r" : "", bar.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_), loss, rate, Clock(elapsed).c_str(),
               Clock(eta).c_str(), final_line ? "\n" : "   ");
  std::fflush(stderr);
}

void Progress::Finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (tty_) Draw(last_done_, last_loss_, true);
}

}  // namespace lumpy
