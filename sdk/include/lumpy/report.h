#pragma once
// Optional capabilities of a loss term for the commands that show a trained
// metric (`lumpy report`, `lumpy probe`, `lumpy sky`). Training never asks
// for them; a term that has something to show implements the interface as
// well as LossTerm, and the commands find it with the functions below
// instead of knowing plugins by name:
//
//   class Chi2 : public lumpy::LossTerm, public lumpy::HubbleDiagramSource {
//     ...
//     absl::StatusOr<lumpy::HubbleDiagram> hubble_diagram(
//         lumpy::MetricModel& metric, const torch::TensorOptions& options,
//         const lumpy::Event& observer) override;
//   };

#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lumpy/export.h"
#include "lumpy/loss_term.h"
#include "lumpy/metric_model.h"

namespace lumpy {

// A distance dataset's Hubble diagram under a metric: each object's observed
// and model distance modulus (NaN where the model gives none: beyond its
// rays' reach) and the model's curve mu(z) along labelled rays.
struct LUMPY_API HubbleDiagram {
  struct Object {
    std::string name;
    double z = 0, ra = NAN, dec = NAN;  // ra, dec NaN where the catalogue has none
    double mu_obs = 0, sigma = 0, mu_model = NAN;
    bool reached = false;
    bool held_out = false;  // never entered the training loss (held out to judge the model)
  };
  struct CurvePoint {
    std::string ray;
    double z = 0, mu = 0;
  };
  std::vector<Object> objects;
  std::vector<CurvePoint> curve;
  std::string note;  // one line for the report's log (mode, objects out of reach)
};

// A term whose per-point value fills a column of the probe's and the
// report's point tables at any points ("efe_residual" for the Einstein
// equations' residual).
class LUMPY_API ProbeColumnSource {
 public:
  virtual ~ProbeColumnSource();
  virtual std::string probe_column() const = 0;
};

// A distance dataset's term: its Hubble diagram under `metric`, seen by an
// observer at `observer` (the experiment's [observer] event).
class LUMPY_API HubbleDiagramSource {
 public:
  virtual ~HubbleDiagramSource();
  virtual absl::StatusOr<HubbleDiagram> hubble_diagram(MetricModel& metric, const torch::TensorOptions& options,
                                                       const Event& observer) = 0;
};

// The term's probe column, or "" if it has none.
LUMPY_API std::string ProbeColumnOf(const LossTerm& term);
// The term as a Hubble diagram source, or null if it is none.
LUMPY_API HubbleDiagramSource* HubbleDiagramOf(LossTerm& term);

}  // namespace lumpy
