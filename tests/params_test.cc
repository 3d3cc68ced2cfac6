#include "lumpy/params.h"

#include <gtest/gtest.h>

namespace lumpy {
namespace {

TEST(ParamSpec, IntegerIsAcceptedForFloatAndConverted) {
  auto spec = ParamSpec::Double("mu0", "").Greater(0);
  ParamValue v = int64_t{3};
  EXPECT_FALSE(spec.Check(v).has_value());
  EXPECT_TRUE(std::holds_alternative<double>(v));
  EXPECT_EQ(std::get<double>(v), 3.0);
}

TEST(ParamSpec, FloatIsRejectedForInt) {
  auto spec = ParamSpec::Int("steps", "");
  ParamValue v = 1.5;
  EXPECT_EQ(*spec.Check(v), "expected int, got float 1.5");
}

TEST(ParamSpec, BoundsNameTheRuleAndTheValue) {
  ParamValue v = -1.0;
  EXPECT_EQ(*ParamSpec::Double("mu0", "").Greater(0).Check(v), "must be > 0, got -1");
  v = 0.5;
  EXPECT_EQ(*ParamSpec::Double("o", "").AtLeast(0.05).AtMost(0.3).Check(v),
            "must be in [0.05, 0.3], got 0.5");
  v = 0.3;
  EXPECT_FALSE(ParamSpec::Double("o", "").AtLeast(0.05).AtMost(0.3).Check(v).has_value());
  v = 1.0;
  EXPECT_EQ(*ParamSpec::Double("b", "").AtLeast(0).Less(1).Check(v), "must be in [0, 1), got 1");
  v = std::numeric_limits<double>::infinity();
  EXPECT_EQ(*ParamSpec::Double("x", "").Check(v), "must be finite, got inf");
}

TEST(ParamSpec, ChoicesSuggestTheNearest) {
  ParamValue v = std::string("mixd");
  EXPECT_EQ(*ParamSpec::String("form", "").OneOf({"mixed", "covariant"}).Check(v),
            "must be one of mixed, covariant, got \"mixd\"; did you mean \"mixed\"?");
}

TEST(ParamSpec, ListLengthAndElements) {
  auto spec = ParamSpec::DoubleList("t", "").Length(2).AtLeast(-5);
  ParamValue v = std::vector<double>{1, 2, 3};
  EXPECT_EQ(*spec.Check(v), "must have 2 elements, got 3");
  v = std::vector<double>{-6, 1};
  EXPECT_EQ(*spec.Check(v), "must be >= -5, got -6");
}

TEST(ParamSpec, DefaultThatFailsItsOwnRangeIsAProgrammingError) {
  EXPECT_THROW(ParamSpec::Double("w", "").AtLeast(0).Default(-1.0), std::logic_error);
}

TEST(Params, ReadingUndeclaredOrMistypedKeysThrows) {
  Params p;
  p.Set("w", 1.0);
  EXPECT_EQ(p.GetDouble("w"), 1.0);
  EXPECT_THROW(p.GetDouble("nope"), std::logic_error);
  EXPECT_THROW(p.GetInt("w"), std::logic_error);
}

// A factory's refusal located at one of its keys: the engine reads the key
// from the status (no parsing of the message), the message still names it
// where there is no file; any other status is not a ParamError.
TEST(ParamError, CarriesItsKeyApartFromTheMessage) {
  absl::Status st = ParamError("sample_bins", "3 is more than the 2 bins: at most bins");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "sample_bins: 3 is more than the 2 bins: at most bins");
  auto info = ParamErrorOf(st);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->key, "sample_bins");
  EXPECT_EQ(info->message, "3 is more than the 2 bins: at most bins");
  EXPECT_FALSE(ParamErrorOf(absl::InvalidArgumentError("sample_bins: looks like one")).has_value());
  EXPECT_FALSE(ParamErrorOf(absl::OkStatus()).has_value());
}

TEST(NearestName, TyposOnly) {
  EXPECT_EQ(NearestName("augmented_lagrange", {"augmented_lagrangian", "linear"}),
            "augmented_lagrangian");
  EXPECT_EQ(NearestName("hiden", {"hidden", "layers"}), "hidden");
  EXPECT_FALSE(NearestName("completely_else", {"hidden", "layers"}).has_value());
}

TEST(FormatParamValue, ShortestRoundTrip) {
  EXPECT_EQ(FormatParamValue(0.3), "0.3");
  EXPECT_EQ(FormatParamValue(1e-24), "1e-24");
  EXPECT_EQ(FormatParamValue(2.0), "2.0");
  EXPECT_EQ(FormatParamValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatParamValue(std::vector<std::string>{"a"}), "[\"a\"]");
}

}  // namespace
}  // namespace lumpy
