// The header-named text tables (`lumpy probe`'s points files, the BAO table):
// any bytes either load or are refused with a located error; every cell of a
// loaded table is read as a number or refused with its column named.

#include <cstdint>
#include <cmath>
#include <cstdlib>

#include "data/table.h"
#include "fuzz_util.h"
#include "lumpy/supernovae.h"

namespace lumpy::fuzz {

int TableInput(const uint8_t* data, size_t size) {
  using lumpy::TextTable;
  auto file = lumpy::fuzz::WriteScratch("table.csv", {reinterpret_cast<const char*>(data), size});
  for (auto separator : {TextTable::Separator::kComma, TextTable::Separator::kWhitespace}) {
    auto table = TextTable::Read(file, separator, "points file");
    if (!table.ok()) {
      if (table.status().message().empty()) std::abort();  // every refusal says why
      continue;
    }
    for (size_t row = 0; row < table->rows(); ++row) {
      for (size_t col = 0; col < table->header().size(); ++col) {
        auto value = table->Number(row, static_cast<int>(col));
        if (value.ok() && !std::isfinite(*value)) std::abort();  // only finite numbers pass
        (void)table->Where(row, static_cast<int>(col));
      }
    }
    (void)table->Columns({"t", "x", "y", "z"});
  }
  auto bao = lumpy::LoadBao(file);
  if (bao.ok() && bao->size() == 0) std::abort();  // a table with no rows is refused
  return 0;
}

}  // namespace lumpy::fuzz

#ifdef LUMPY_FUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lumpy::fuzz::TableInput(data, size);
}
#endif
