#include "lumpy/physical_parameter.h"

#include "absl/strings/str_cat.h"

namespace lumpy {

std::vector<ParamSpec> PhysicalScalar::Specs(ParamSpec value, std::vector<double> bounds,
                                             double lr_factor) {
  const std::string name = value.name();
  return {
      std::move(value),
      ParamSpec::Bool(name + "_trainable", "fit " + name + " with the network").Default(false),
      ParamSpec::DoubleList(name + "_bounds", "[min, max]: while fitted, " + name +
                                                  " is projected back into this interval "
                                                  "after every step")
          .Default(std::move(bounds))
          .Length(2),
      ParamSpec::Double(name + "_lr_factor", name + "'s learning rate over the network's")
          .Default(lr_factor)
          .Greater(0),
  };
}

absl::Status PhysicalScalar::Check(const Params& p, const std::string& name) {
  const auto& b = p.GetDoubleList(name + "_bounds");
  if (!(b[0] < b[1])) {
    return ParamError(name + "_bounds", "must be [min, max] with min < max");
  }
  const double v = p.GetDouble(name);
  if (p.GetBool(name + "_trainable") && (v < b[0] || v > b[1])) {
    return ParamError(name, absl::StrCat("the initial value must lie within ", name, "_bounds [", b[0],
                                         ", ", b[1], "], got ", v));
  }
  return absl::OkStatus();
}

PhysicalScalar::PhysicalScalar(const Params& p, const std::string& name)
    : name_(name),
      value_(torch::tensor(p.GetDouble(name), torch::kFloat64)),
      initial_(p.GetDouble(name)),
      min_(p.GetDoubleList(name + "_bounds")[0]),
      max_(p.GetDoubleList(name + "_bounds")[1]),
      lr_factor_(p.GetDouble(name + "_lr_factor")),
      trainable_(p.GetBool(name + "_trainable")) {
  if (trainable_) value_.requires_grad_(true);
}

std::vector<PhysicalParameter> PhysicalScalar::parameters() const {
  if (!trainable_) return {};
  return {{name_, value_, min_, max_, lr_factor_}};
}

}  // namespace lumpy
