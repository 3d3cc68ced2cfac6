// Process-wide test set-up: where the real Pantheon+ catalogue is: the
// repository's data/ unless LUMPY_DATA_PATH is set (LUMPY_TEST_DATA_PATH, as
// CMake was configured). CLI tests inherit it.

#include <cstdlib>

namespace {

const bool kDataPathSet = [] {
  setenv("LUMPY_DATA_PATH", LUMPY_TEST_DATA_DIR, /*overwrite=*/0);
  return true;
}();

}  // namespace
