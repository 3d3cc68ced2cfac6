// The checkpoint check that every checkpoint read passes first
// (core/input_file.h: a regular file within its limit whose zip archive's
// stored entries match their CRC-32): any bytes give OK or a message naming
// the file, never a crash, an out-of-bounds read or a hang; the run-folder
// reader (ReadInputFile) returns exactly the bytes of a file it accepts.

#include <cstdint>
#include <cstdlib>

#include "core/input_file.h"
#include "fuzz_util.h"

namespace lumpy::fuzz {

int CheckpointInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto file = lumpy::fuzz::WriteScratch("checkpoint.pt", bytes);
  auto st = lumpy::CheckInputFile(file, lumpy::InputKind::kCheckpoint, "checkpoint");
  if (!st.ok() && st.message().find(file.string()) == std::string::npos) std::abort();
  auto text = lumpy::ReadInputFile(file, lumpy::InputKind::kRunFile, "run file");
  if (!text.ok() || *text != bytes) std::abort();
  return 0;
}

}  // namespace lumpy::fuzz

#ifdef LUMPY_FUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lumpy::fuzz::CheckpointInput(data, size);
}
#endif
