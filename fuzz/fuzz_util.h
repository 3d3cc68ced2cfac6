#pragma once
// Shared by the libFuzzer harnesses: a private scratch folder, made once per
// process, and the input split into parts at lines "----" (so one input can
// hold an experiment and the file it extends, or a catalogue and its
// covariance, and stay readable as a seed).

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace lumpy::fuzz {

inline const std::filesystem::path& Scratch() {
  // Never destroyed, so the exit handler that removes it can still read it.
  static const std::filesystem::path* dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "lumpy-fuzz-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    return new std::filesystem::path(pattern);
  }();
  static const bool cleaned_at_exit = [] {
    return std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(*dir, ignored);
    }) == 0;
  }();
  (void)cleaned_at_exit;
  return *dir;
}

inline std::filesystem::path WriteScratch(const std::string& name, std::string_view text) {
  std::filesystem::path file = Scratch() / name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  return file;
}

// The harnesses (fuzz/*_fuzz.cc), also run by the test suite on every kept
// crash and seed. Each returns 0 or aborts on a broken property.
int ExperimentInput(const uint8_t* data, size_t size);
int TableInput(const uint8_t* data, size_t size);
int CatalogueInput(const uint8_t* data, size_t size);
int CheckpointInput(const uint8_t* data, size_t size);
int RunFilesInput(const uint8_t* data, size_t size);

inline std::vector<std::string_view> SplitParts(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  constexpr std::string_view kSeparator = "\n----\n";
  size_t begin = 0;
  while (true) {
    size_t at = all.find(kSeparator, begin);
    if (at == std::string_view::npos) {
      parts.push_back(all.substr(begin));
      return parts;
    }
    parts.push_back(all.substr(begin, at + 1 - begin));
    begin = at + kSeparator.size();
  }
}

}  // namespace lumpy::fuzz
