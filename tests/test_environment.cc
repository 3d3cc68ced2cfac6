// Process-wide test set-up: where the real Pantheon+ catalogue is. CI exports
// LUMPY_DATA_PATH (../shared/data); a local run without it uses the folder
// CMake was configured with (LUMPY_TEST_DATA_PATH). CLI tests inherit it.

#include <cstdlib>

namespace {

const bool kDataPathSet = [] {
  setenv("LUMPY_DATA_PATH", LUMPY_TEST_DATA_DIR, /*overwrite=*/0);
  return true;
}();

}  // namespace
