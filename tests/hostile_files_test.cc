// Run and sweep folders live in shared scratch space: nothing planted there
// may make lumpy write elsewhere. Every file lumpy creates in them is
// created without following a symbolic link (core/atomic_file.h: OpenOwnFile,
// and the atomic writers' temporaries), and a link in its place is refused
// or replaced, never written through. One test per writer: the lock, the
// metrics table, the atomic writers (summary, experiment copy), the sweep's
// table. And the other classes of issue 33: bounds on what a file can make
// the tool do (the extends chain), no file text reaching a shell.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "cli_runner.h"
#include "lumpy/supernovae.h"
#include "temp_dir.h"

namespace lumpy {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunLumpy;
using HostileFilesTest = testing::TempDirTest;

const std::string kTiny = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/tiny.toml";

// A file outside the run folder, which a link planted in the folder points at.
fs::path Target(const fs::path& dir, const std::string& name) {
  const fs::path t = dir / ("outside_" + name);
  std::ofstream(t) << "precious\n";
  return t;
}

void Plant(const fs::path& target, const fs::path& link) {
  fs::create_directories(link.parent_path());
  fs::create_symlink(target, link);
}

TEST_F(HostileFilesTest, ALockLinkIsRefusedAndItsTargetUntouched) {
  const auto target = Target(dir_, "lock");
  Plant(target, dir_ / "r" / ".lock");
  auto r = RunLumpy("run '" + kTiny + "' --out r", dir_);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("r/.lock: is a symbolic link"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(target), "precious\n");
}

TEST_F(HostileFilesTest, ADanglingMetricsLinkInAFreshFolderIsRefused) {
  const fs::path elsewhere = dir_ / "elsewhere.csv";
  Plant(elsewhere, dir_ / "m" / "metrics.csv");
  auto r = RunLumpy("run '" + kTiny + "' --out m", dir_);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("m/metrics.csv: is a symbolic link"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(elsewhere));
}

// A stale temporary planted as a link (summary.json.tmp), and the run's own
// files replaced by links between a run and its resume: the resume writes
// its own files in their place and the targets keep their content.
TEST_F(HostileFilesTest, TheAtomicWritersReplaceLinksAndNeverWriteThroughThem) {
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --steps 3 --out a", dir_).exit_code, 0);
  const auto tmp_target = Target(dir_, "tmp");
  const auto summary_target = Target(dir_, "summary");
  Plant(tmp_target, dir_ / "a" / "summary.json.tmp");
  fs::remove(dir_ / "a" / "summary.json");
  Plant(summary_target, dir_ / "a" / "summary.json");
  auto r = RunLumpy("resume a --steps 6", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(tmp_target), "precious\n");
  EXPECT_EQ(ReadFile(summary_target), "precious\n");
  EXPECT_FALSE(fs::is_symlink(dir_ / "a" / "summary.json"));
  EXPECT_NE(ReadFile(dir_ / "a" / "summary.json").find("\"completed\""), std::string::npos);
}

// The sweep's table replaced by a link before `ablate --collect`: the
// collect writes its own table in its place; the target keeps its content.
TEST_F(HostileFilesTest, ASweepNeverWritesThroughLinks) {
  ASSERT_EQ(RunLumpy("ablate '" + kTiny + "' --vary optimizer.lr=1e-3 --set runtime.steps=2 --out s", dir_).exit_code, 0);
  const auto csv_target = Target(dir_, "csv");
  const auto md_target = Target(dir_, "md");
  fs::remove(dir_ / "s" / "ablation.csv");
  fs::remove(dir_ / "s" / "ablation.md");
  Plant(csv_target, dir_ / "s" / "ablation.csv");
  Plant(md_target, dir_ / "s" / "ablation.md");
  auto r = RunLumpy("ablate --collect s", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(csv_target), "precious\n");
  EXPECT_EQ(ReadFile(md_target), "precious\n");
  EXPECT_FALSE(fs::is_symlink(dir_ / "s" / "ablation.csv"));
  EXPECT_NE(ReadFile(dir_ / "s" / "ablation.csv").find("variant"), std::string::npos);
}

// Issue 33, class 2: no text from a file or an option reaches a shell. A
// job id in sweep.json was pasted into a squeue command line ("1; touch
// pwned #" ran touch); programs now run from an argument vector and a job
// id that is not digits is refused. A line break in an #SBATCH value would
// inject a line into sweep.sbatch: refused before anything is written.
TEST_F(HostileFilesTest, NoFileOrOptionTextReachesAShell) {
  ASSERT_EQ(RunLumpy("ablate '" + kTiny + "' --vary optimizer.lr=1e-3 --set runtime.steps=2 --out s", dir_).exit_code, 0);
  std::string sweep = ReadFile(dir_ / "s" / "sweep.json");
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = sweep.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    sweep.replace(at, from.size(), to);
  };
  replace("\"executor\": \"local\"", "\"executor\": \"slurm\"");
  replace("\"job_id\": \"\"", "\"job_id\": \"1; touch pwned #\"");
  std::ofstream(dir_ / "s" / "sweep.json") << sweep;
  auto collect = RunLumpy("ablate --collect s", dir_);
  EXPECT_FALSE(fs::exists(dir_ / "pwned"));
  EXPECT_EQ(collect.exit_code, 2) << collect.err;
  EXPECT_NE(collect.err.find("is not a Slurm job id"), std::string::npos) << collect.err;

  auto partition = RunLumpy("ablate '" + kTiny + "' --vary optimizer.lr=1e-3 --executor slurm --out t "
                            "--partition \"$(printf 'debug\\n#SBATCH --wrap=touch_pwned')\"", dir_);
  EXPECT_EQ(partition.exit_code, 2) << partition.err;
  EXPECT_NE(partition.err.find("--partition: a line break cannot go into sweep.sbatch"), std::string::npos)
      << partition.err;
  EXPECT_FALSE(fs::exists(dir_ / "t" / "sweep.sbatch"));
  auto arg = RunLumpy("ablate '" + kTiny + "' --vary optimizer.lr=1e-3 --executor slurm --out u "
                      "--sbatch-arg=\"$(printf -- '--exclusive\\nrm -rf x')\"", dir_);
  EXPECT_EQ(arg.exit_code, 2) << arg.err;
  EXPECT_NE(arg.err.find("--sbatch-arg: a line break"), std::string::npos) << arg.err;
}

// Issue 33, class 7: a run's name makes its folder under runs/; "../../x"
// or an absolute name put the run elsewhere. A name is one path component.
TEST_F(HostileFilesTest, ANameIsANameNeverAPath) {
  fs::create_directories(dir_ / "a" / "b");
  for (const std::string name : {"../../x", "/tmp/lumpy_name_test_x", "..", "a/b"}) {
    auto r = RunLumpy("run '" + kTiny + "' --steps 1 --set 'name=\"" + name + "\"'", dir_ / "a" / "b");
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.err;
    EXPECT_NE(r.err.find("name: \"" + name + "\" is not a name"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir_ / "a" / "x"));  // runs/../../x from a/b
  EXPECT_FALSE(fs::exists("/tmp/lumpy_name_test_x"));
  EXPECT_FALSE(fs::exists(dir_ / "a" / "b" / "runs"));
}

// Issue 33, class 5: one flipped byte in a tensor of checkpoints/latest.pt
// (the archive's CRC-32 no longer matches) was resumed and trained on, and
// the run reported "completed". Every checkpoint read now checks the
// archive's CRCs first (core/input_file.h), so resume refuses it, names the
// file and the entry, and leaves the completed summary as it was.
TEST_F(HostileFilesTest, ADamagedCheckpointIsRefusedNeverTrainedOn) {
  auto run = RunLumpy("run '" + kTiny + "' --steps 4 --out r", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const fs::path ckpt = dir_ / "r" / "checkpoints" / "latest.pt";
  std::string bytes = ReadFile(ckpt);
  // The first tensor entry (".../data/N") of the zip: flip a byte of its data.
  size_t flipped = std::string::npos;
  for (size_t at = bytes.find("PK\x03\x04"); at != std::string::npos && at + 30 < bytes.size();
       at = bytes.find("PK\x03\x04", at + 4)) {
    auto u16 = [&](size_t i) { return static_cast<unsigned char>(bytes[i]) | static_cast<unsigned char>(bytes[i + 1]) << 8; };
    const std::string name = bytes.substr(at + 30, u16(at + 26));
    if (name.find("/data/") == std::string::npos) continue;
    flipped = at + 30 + u16(at + 26) + u16(at + 28) + 4;  // every tensor holds at least 8 bytes
    break;
  }
  ASSERT_NE(flipped, std::string::npos) << "no tensor entry in the checkpoint";
  bytes[flipped] = static_cast<char>(bytes[flipped] ^ 0x10);
  std::ofstream(ckpt, std::ios::binary | std::ios::trunc) << bytes;
  const std::string summary = ReadFile(dir_ / "r" / "summary.json");
  auto resume = RunLumpy("resume r --steps 8", dir_);
  EXPECT_EQ(resume.exit_code, 2) << resume.err;
  EXPECT_NE(resume.err.find("latest.pt: truncated or corrupt checkpoint (entry "), std::string::npos) << resume.err;
  EXPECT_NE(resume.err.find("do not match their CRC-32"), std::string::npos) << resume.err;
  EXPECT_EQ(ReadFile(dir_ / "r" / "summary.json"), summary);
  auto probe = RunLumpy("report r --checkpoint latest --no-figures", dir_);
  EXPECT_EQ(probe.exit_code, 2) << probe.err;
  EXPECT_NE(probe.err.find("truncated or corrupt checkpoint"), std::string::npos) << probe.err;
}

// Issue 33, class 3: reads that never end. A FIFO planted as a run folder's
// summary.json made resume wait for ever (holding the run's lock), so did a
// FIFO sweep.json for ablate --collect and a FIFO named as a plugin; a
// variant's log linked to /dev/zero was read without limit. Every file of a
// run or sweep folder is now read through ReadInputFile (core/input_file.h:
// regular files only, bounded) and a plugin passes the same check.
TEST_F(HostileFilesTest, NoReadNeverEnds) {
  auto run = RunLumpy("run '" + kTiny + "' --steps 4 --out r", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  fs::remove(dir_ / "r" / "summary.json");
  ASSERT_EQ(::mkfifo((dir_ / "r" / "summary.json").c_str(), 0644), 0);
  auto resume = RunLumpy("resume r --steps 8", dir_);
  EXPECT_EQ(resume.exit_code, 2) << resume.err;
  EXPECT_NE(resume.err.find("summary.json: is a FIFO (named pipe)"), std::string::npos) << resume.err;

  ASSERT_EQ(RunLumpy("ablate '" + kTiny + "' --vary optimizer.lr=1e-3,2e-3 --set runtime.steps=2 --out s", dir_).exit_code,
            0);
  // A variant whose summary is gone and whose log is endless: the table
  // marks it failed and reads no more than the log's limit.
  for (const auto& e : fs::directory_iterator(dir_ / "s")) {
    if (e.is_directory() && fs::exists(e.path() / "summary.json")) {
      fs::remove(e.path() / "summary.json");
      fs::remove(e.path().string() + ".log");
      fs::create_symlink("/dev/zero", e.path().string() + ".log");
      break;
    }
  }
  auto collect = RunLumpy("ablate --collect s", dir_);
  EXPECT_EQ(collect.exit_code, 1) << collect.err;  // one run failed
  EXPECT_NE(ReadFile(dir_ / "s" / "ablation.csv").find("variant"), std::string::npos);
  fs::remove(dir_ / "s" / "sweep.json");
  ASSERT_EQ(::mkfifo((dir_ / "s" / "sweep.json").c_str(), 0644), 0);
  auto fifo = RunLumpy("ablate --collect s", dir_);
  EXPECT_EQ(fifo.exit_code, 2) << fifo.err;
  EXPECT_NE(fifo.err.find("sweep.json: is a FIFO (named pipe)"), std::string::npos) << fifo.err;

  ASSERT_EQ(::mkfifo((dir_ / "lumpy_plugin.so").c_str(), 0644), 0);
  std::ofstream(dir_ / "p.toml") << ReadFile(kTiny) << "\n[plugins]\npaths = [\"lumpy_plugin.so\"]\n";
  auto plugin = RunLumpy("check p.toml", dir_);
  EXPECT_EQ(plugin.exit_code, 2) << plugin.err;
  EXPECT_NE(plugin.err.find("lumpy_plugin.so: is a FIFO (named pipe)"), std::string::npos) << plugin.err;
}

// Issue 33, class 6: sizes a user can make huge are stated and bounded. Six
// --vary axes of ten values (a million runs) hung silently while being
// planned; now the size is stated and refused above --max-runs, at once.
// loss.<sn>.bins and certify.points have the bounds of their CLI twins.
TEST_F(HostileFilesTest, HugeSizesAreStatedAndBounded) {
  std::string vary;
  for (const char* key : {"optimizer.lr", "optimizer.clip_norm", "runtime.seed", "certify.points",
                          "telemetry.every", "checkpoint.every"}) {
    vary += std::string(" --vary ") + key + "=1,2,3,4,5,6,7,8,9,10";
  }
  const auto start = std::chrono::steady_clock::now();
  auto sweep = RunLumpy("ablate '" + kTiny + "'" + vary + " --out s", dir_);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
  EXPECT_EQ(sweep.exit_code, 2) << sweep.err;
  EXPECT_NE(sweep.err.find("the sweep is 1000000 run(s): 10 (optimizer.lr) x 10 (optimizer.clip_norm)"),
            std::string::npos) << sweep.err;
  EXPECT_NE(sweep.err.find("give --max-runs 1000000"), std::string::npos) << sweep.err;
  EXPECT_FALSE(fs::exists(dir_ / "s"));
  const std::string sky = std::string(LUMPY_TEST_SOURCE_DIR) + "/../experiments/blog/06_real_sky.toml";
  auto bins = RunLumpy("check '" + sky + "' --set loss.sn.bins=100000000", dir_);
  EXPECT_EQ(bins.exit_code, 2) << bins.err;
  EXPECT_NE(bins.err.find("loss.sn.bins: must be in [0, 100000], got 100000000"), std::string::npos) << bins.err;
  auto points = RunLumpy("check '" + kTiny + "' --set certify.points=1000000000000", dir_);
  EXPECT_EQ(points.exit_code, 2) << points.err;
  EXPECT_NE(points.err.find("certify.points: must be in [0, 100000000], got 1000000000000"), std::string::npos)
      << points.err;
}

// Issue 33, class 8: text written into a data file is escaped for its
// format. A line break in --set text went verbatim into mock-sn's
// provenance comment: the next line was read as the catalogue's header and
// the catalogue it reported as written could not be read back. Now the
// comment escapes it, and mock-sn reads its catalogue back before it says
// it wrote it.
TEST_F(HostileFilesTest, TextWrittenIntoADataFileIsEscapedAndReadBack) {
  const std::string flrw = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/flrw_probe.toml";
  // The shell's printf makes the line break: --set description='''a<LF>CID zHD'''.
  auto r = RunLumpy("mock-sn '" + flrw + "' --out mock.dat --n 20 --no-noise --set \"$(printf \"description='''a\\nCID zHD'''\")\"",
                    dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = ReadFile(dir_ / "mock.dat");
  EXPECT_NE(text.find("--set description='''a\\nCID zHD'''"), std::string::npos) << text.substr(0, 300);
  auto cat = LoadSupernovae(dir_ / "mock.dat", {});
  ASSERT_TRUE(cat.ok()) << cat.status();
  EXPECT_EQ(cat->size(), 20);
  auto seed = RunLumpy("mock-sn '" + flrw + "' --out m2.dat --n 5 --seed -1", dir_);
  EXPECT_EQ(seed.exit_code, 2) << seed.err;  // once wrapped to 2^64 - 1
  EXPECT_FALSE(fs::exists(dir_ / "m2.dat"));
}

// Issue 33 (also): an output that is an input, or not a folder, is a usage
// error (exit 2) before anything runs: probe --out naming its own --points
// file overwrote it; ablate --out naming an empty file exited 1 after
// planning the sweep.
TEST_F(HostileFilesTest, AnOutputThatIsAnInputOrNotAFolderIsRefused) {
  std::ofstream(dir_ / "points.csv") << "t,x,y,z\n1,0,0,0\n";
  const std::string flrw = std::string(LUMPY_TEST_SOURCE_DIR) + "/data/flrw_probe.toml";
  auto probe = RunLumpy("probe '" + flrw + "' --points points.csv --out ./points.csv", dir_);
  EXPECT_EQ(probe.exit_code, 2) << probe.err;
  EXPECT_NE(probe.err.find("is the --points file itself"), std::string::npos) << probe.err;
  EXPECT_EQ(ReadFile(dir_ / "points.csv"), "t,x,y,z\n1,0,0,0\n");
  std::ofstream(dir_ / "empty_file");
  auto ablate = RunLumpy("ablate '" + kTiny + "' --vary optimizer.lr=1e-3 --out empty_file", dir_);
  EXPECT_EQ(ablate.exit_code, 2) << ablate.err;
  EXPECT_NE(ablate.err.find("exists and is not a folder"), std::string::npos) << ablate.err;
}

// Issue 33 (also): extends naming a folder or a FIFO said "no such file";
// now it says what the path is (and a FIFO is never opened).
TEST_F(HostileFilesTest, ExtendsNamingAFolderOrAFifoSaysWhatItIs) {
  fs::create_directories(dir_ / "folder.toml");
  ASSERT_EQ(::mkfifo((dir_ / "pipe.toml").c_str(), 0644), 0);
  std::ofstream(dir_ / "a.toml") << "extends = \"folder.toml\"\n";
  std::ofstream(dir_ / "b.toml") << "extends = \"pipe.toml\"\n";
  auto a = RunLumpy("check a.toml", dir_);
  EXPECT_EQ(a.exit_code, 2);
  EXPECT_NE(a.err.find("a.toml:1:11: extends: folder.toml: is a directory"), std::string::npos) << a.err;
  auto b = RunLumpy("check b.toml", dir_);
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("b.toml:1:11: extends: pipe.toml: is a FIFO (named pipe)"), std::string::npos) << b.err;
}

// Issue 33 (also): a metrics.csv row whose step is not a number ("abc")
// was read as step 0 and kept on resume; it is dropped, with a warning.
TEST_F(HostileFilesTest, AMetricsRowWithoutAStepIsDroppedOnResume) {
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --steps 4 --out r", dir_).exit_code, 0);
  std::string metrics = ReadFile(dir_ / "r" / "metrics.csv");
  const size_t second = metrics.find('\n', metrics.find('\n') + 1) + 1;  // the second data row
  const std::string row = metrics.substr(second, metrics.find('\n', second) - second + 1);
  std::string forged = row;
  forged.replace(0, forged.find(','), "abc");
  metrics.insert(second, forged);
  std::ofstream(dir_ / "r" / "metrics.csv") << metrics;
  auto resume = RunLumpy("resume r --steps 6", dir_);
  ASSERT_EQ(resume.exit_code, 0) << resume.err;
  EXPECT_NE(resume.err.find("dropped a row whose step \"abc\" is not a whole number"), std::string::npos)
      << resume.err;
  EXPECT_EQ(ReadFile(dir_ / "r" / "metrics.csv").find("\nabc,"), std::string::npos);
}

// Issue 33 (also): a catalogue row with a negative redshift was dropped
// silently (by the z_min filter) and a C hexadecimal float was read as a
// redshift; both are located errors now.
TEST_F(HostileFilesTest, ACatalogueSaysWhereARedshiftIsNotOne) {
  const std::string header = "CID zCMB MU_SH0ES MU_SH0ES_ERR_DIAG IS_CALIBRATOR\n";
  std::ofstream(dir_ / "neg.dat") << header << "a 0.1 38.3 0.1 0\nb -0.1 38.3 0.1 0\n";
  std::ofstream(dir_ / "hex.dat") << header << "a 0.1 38.3 0.1 0\nb 0x1p-3 38.3 0.1 0\n";
  auto neg = LoadSupernovae(dir_ / "neg.dat", {});
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("neg.dat:3:2: column zCMB: a redshift must be positive, got -0.1"),
            std::string::npos) << neg.status();
  auto hex = LoadSupernovae(dir_ / "hex.dat", {});
  ASSERT_FALSE(hex.ok());
  EXPECT_NE(hex.status().message().find("hex.dat:3:2: column zCMB: not a decimal number: \"0x1p-3\""),
            std::string::npos) << hex.status();
}

// Issue 33 (also): a run folder or plugin folder that is a symbolic-link
// loop ended in "internal error: filesystem error"; it is the user's path,
// said as such (exit 2).
TEST_F(HostileFilesTest, ASymlinkLoopIsNamedNotAnInternalError) {
  fs::create_symlink("loop", dir_ / "loop");
  for (const std::string command : {"resume loop", "report loop --no-figures"}) {
    auto r = RunLumpy(command, dir_);
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.err;
    EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("loop"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Too many levels of symbolic links"), std::string::npos) << r.err;
  }
  std::ofstream(dir_ / "p.toml") << ReadFile(kTiny) << "\n[plugins]\npaths = [\"loop\"]\n";
  auto plugin = RunLumpy("check p.toml", dir_);
  EXPECT_EQ(plugin.exit_code, 2) << plugin.err;
  EXPECT_EQ(plugin.err.find("internal error"), std::string::npos) << plugin.err;
}

// Issue 33 (also): certify (or sky, report) on a run still going read
// checkpoints/latest.pt and wrote *_final.json without saying which step.
// Now it says the step and names what it writes "latest".
TEST_F(HostileFilesTest, ARunStillGoingIsReadAsLatestWithItsStep) {
  ASSERT_EQ(RunLumpy("run '" + kTiny + "' --steps 4 --out r", dir_).exit_code, 0);
  fs::remove(dir_ / "r" / "model.pt");  // as a run that has not finished
  auto certify = RunLumpy("certify r --checkpoint final --points 16", dir_);
  ASSERT_EQ(certify.exit_code, 0) << certify.err;
  EXPECT_NE(certify.err.find("latest.pt (step 3); what follows is named \"latest\""), std::string::npos)
      << certify.err;
  EXPECT_TRUE(fs::exists(dir_ / "r" / "certificate_latest.json"));
  EXPECT_FALSE(fs::exists(dir_ / "r" / "certificate_final.json"));
}

// Issue 33, class 4: an `extends` chain is followed by recursion; 7000 files
// overflowed the stack. A bound with a located error, as for nested tables.
TEST_F(HostileFilesTest, AnExtendsChainHasABoundAndALocatedError) {
  auto chain = [&](int n) {
    std::ofstream(dir_ / "f0.toml") << ReadFile(kTiny);
    for (int i = 1; i < n; ++i) {
      std::ofstream(dir_ / ("f" + std::to_string(i) + ".toml")) << "extends = \"f" << i - 1 << ".toml\"\n";
    }
    return "f" + std::to_string(n - 1) + ".toml";
  };
  auto ok = RunLumpy("check " + chain(64), dir_);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;  // 64 files: the top one and 63 it extends
  auto deep = RunLumpy("check " + chain(7000), dir_);
  EXPECT_EQ(deep.exit_code, 2) << deep.err;
  EXPECT_NE(deep.err.find("f6936.toml:1:11: extends: more than 64 files deep (from f6999.toml)"), std::string::npos)
      << deep.err;
}

}  // namespace
}  // namespace lumpy
