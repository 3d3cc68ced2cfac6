// The supernova catalogue reader and its covariance: input "CATALOGUE" or
// "CATALOGUE\n----\nCOVARIANCE". A loaded catalogue holds only finite
// values, positive errors and redshifts, and a Cholesky factor of its size.

#include <cstdint>
#include <cstdlib>

#include "fuzz_util.h"
#include "lumpy/supernovae.h"

namespace lumpy::fuzz {

int CatalogueInput(const uint8_t* data, size_t size) {
  auto parts = lumpy::fuzz::SplitParts(data, size);
  lumpy::SupernovaOptions options;
  auto file = lumpy::fuzz::WriteScratch("catalogue.dat", parts[0]);
  if (parts.size() > 1) {
    options.covariance = lumpy::fuzz::WriteScratch("covariance.cov", parts[1]).string();
  }
  for (bool drop_calibrators : {false, true}) {
    options.drop_calibrators = drop_calibrators;
    auto sn = lumpy::LoadSupernovae(file, options);
    if (!sn.ok()) {
      if (sn.status().message().empty()) std::abort();
      continue;
    }
    const int64_t n = sn->size();
    if (n == 0 || sn->names.size() != static_cast<size_t>(n)) std::abort();
    if (!sn->z.isfinite().all().item<bool>() || !sn->mu.isfinite().all().item<bool>()) std::abort();
    if (!(sn->sigma > 0).all().item<bool>() || !(sn->z > 0).all().item<bool>()) std::abort();
    if (sn->covariance_cholesky.defined()) {
      if (sn->covariance_cholesky.size(0) != n || sn->covariance_cholesky.size(1) != n) std::abort();
      if (!sn->covariance_cholesky.isfinite().all().item<bool>()) std::abort();
    }
  }
  return 0;
}

}  // namespace lumpy::fuzz

#ifdef LUMPY_FUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lumpy::fuzz::CatalogueInput(data, size);
}
#endif
