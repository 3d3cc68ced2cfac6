// Out-of-line destructors and defaults of the SDK interfaces, so that their
// type information lives in liblumpy and is shared across plugin libraries.
#include "lumpy/constraint_handler.h"
#include "lumpy/curriculum_weighter.h"
#include "lumpy/loss_term.h"
#include "lumpy/metric_model.h"
#include "lumpy/report.h"
#include "lumpy/step_context.h"

namespace lumpy {

MetricModel::~MetricModel() = default;
torch::Tensor MetricModel::in_domain(const torch::Tensor& x) {
  return torch::ones({x.size(0)}, x.options().dtype(torch::kBool));
}

AnalyticMetric::~AnalyticMetric() = default;
Jet AnalyticMetric::jet(const torch::Tensor& x, int order) {
  if (order == 0) return {metric(x), {}, {}, 0};
  return AutogradJet([this](const torch::Tensor& p) { return metric(p); }, x, order,
                     torch::GradMode::is_enabled());
}

std::vector<PhysicalParameter> MetricModel::physical_parameters() { return {}; }

StepContext::~StepContext() = default;
Shard StepContext::shard() const { return {}; }
Event StepContext::observer_event() const { return kDefaultObserver; }
LossTerm::~LossTerm() = default;
std::vector<PhysicalParameter> LossTerm::physical_parameters() { return {}; }
std::vector<std::pair<std::string, double>> LossTerm::telemetry() const { return {}; }

ProbeColumnSource::~ProbeColumnSource() = default;
HubbleDiagramSource::~HubbleDiagramSource() = default;
std::string ProbeColumnOf(const LossTerm& term) {
  const auto* source = dynamic_cast<const ProbeColumnSource*>(&term);
  return source == nullptr ? std::string() : source->probe_column();
}
HubbleDiagramSource* HubbleDiagramOf(LossTerm& term) { return dynamic_cast<HubbleDiagramSource*>(&term); }

ConstraintHandler::~ConstraintHandler() = default;
void ConstraintHandler::update(const torch::Tensor&, int64_t) {}
std::vector<std::pair<std::string, double>> ConstraintHandler::telemetry() const { return {}; }

CurriculumWeighter::~CurriculumWeighter() = default;
void CurriculumWeighter::set_bounds(const DomainBounds&) {}
void CurriculumWeighter::update(const torch::Tensor&, const torch::Tensor&, int64_t) {}
std::vector<std::pair<std::string, double>> CurriculumWeighter::telemetry() const { return {}; }

}  // namespace lumpy
