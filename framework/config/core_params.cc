// The core's own sections of an experiment file (config/core_params.h,
// config/experiment.h).
#include "config/core_params.h"

#include <limits>
#include <string>
#include <vector>

#include "config/experiment.h"

namespace lumpy {

const ParamSpecs& RuntimeParams() {
  static const ParamSpecs specs = {
      ParamSpec::String("dtype", "floating-point type of the model and all tensors")
          .Default(std::string("float64"))
          .OneOf({"float32", "float64"}),
      ParamSpec::Int("threads", "LibTorch intra-op threads (0 = all cores, shared among the ranks on a machine)").Default(int64_t{0}).AtLeast(0).AtMost(1024),
      ParamSpec::Int("seed", "seed of every random draw (same seed, same run)").Default(int64_t{0}).AtLeast(0),
      ParamSpec::String("device", "torch device: cpu, cuda, cuda:N").Default(std::string("cpu")),
      ParamSpec::Int("steps", "optimizer steps").Default(int64_t{1000}).AtLeast(1),
  };
  return specs;
}

const ParamSpecs& TelemetryParams() {
  static const ParamSpecs specs = {
      ParamSpec::Int("every", "write a metrics.csv row every N steps").Default(int64_t{10}).AtLeast(1),
      ParamSpec::Bool("progress", "show a progress display on stderr").Default(true),
  };
  return specs;
}

const ParamSpecs& OptimizerParams() {
  static const ParamSpecs specs = {
      ParamSpec::Double("lr", "Adam learning rate").Default(1e-3).Greater(0),
      ParamSpec::Double("clip_norm", "global gradient-norm clip of the network parameters")
          .Default(1.0)
          .Greater(0),
      ParamSpec::Double("beta1", "Adam beta1").Default(0.9).AtLeast(0).Less(1),
      ParamSpec::Double("beta2", "Adam beta2").Default(0.999).AtLeast(0).Less(1),
      ParamSpec::Double("eps", "Adam epsilon").Default(1e-8).Greater(0),
      ParamSpec::String("schedule",
                        "learning-rate schedule: constant (lr), or warm_restarts (cycles that start "
                        "at peak_lr and fall by a cosine to lr over decay_fraction of the cycle)")
          .Default(std::string("constant"))
          .OneOf({"constant", "warm_restarts"}),
      ParamSpec::Double("peak_lr", "warm_restarts: the rate at the start of each cycle (>= lr)")
          .Default(1e-3)
          .Greater(0),
      ParamSpec::Int("cycle_steps", "warm_restarts: length of the first cycle in steps")
          .Default(int64_t{200})
          .AtLeast(1),
      ParamSpec::Double("cycle_growth",
                        "warm_restarts: each cycle is this factor longer (1 = fixed cycles)")
          .Default(1.0)
          .AtLeast(1),
      ParamSpec::Double("decay_fraction",
                        "warm_restarts: fraction of each cycle spent falling from peak_lr to lr")
          .Default(0.2)
          .Greater(0)
          .AtMost(1),
      ParamSpec::Bool("penalty_decay",
                      "halve the learning rate whenever a constraint handler raises its penalty mu")
          .Default(false),
  };
  return specs;
}

const ParamSpecs& CheckpointParams() {
  static const ParamSpecs specs = {
      ParamSpec::Int("every",
                     "write checkpoints/latest.pt every N steps (and at the end); 0 = only at the end")
          .Default(int64_t{500})
          .AtLeast(0),
      ParamSpec::Double("every_minutes",
                        "also write checkpoints/latest.pt once this many minutes of wall time have passed "
                        "since the last checkpoint (a slow run never loses more); 0 = off")
          .Default(10.0)
          .AtLeast(0),
  };
  return specs;
}

const ParamSpecs& StoppingParams() {
  static const ParamSpecs specs = {
      ParamSpec::Double("target_loss",
                        "stop once the total loss is at or below this (the default, -1e300, never "
                        "stops: a loss with learned weights can be negative)")
          .Default(-1e300),
      ParamSpec::Int("patience",
                     "stop after N steps in a row without a new best total loss (leave it out to "
                     "never stop early)")
          .Optional()
          .AtLeast(1),
      ParamSpec::Bool("best_step_checkpoint",
                      "keep the model of the single step with the lowest total loss in "
                      "checkpoints/best_step.pt (as the reference saved it)")
          .Default(true),
      ParamSpec::String("best_step_model",
                        "which model best_step.pt holds: before_update (the one whose loss was "
                        "the best) or after_update (after that step's optimizer update, what the "
                        "reference saved)")
          .Default(std::string("before_update"))
          .OneOf({"before_update", "after_update"}),
  };
  return specs;
}

const ParamSpecs& CertifyParams() {
  static const ParamSpecs specs = {
      ParamSpec::Int("points",
                     "held-out grid size per constrained domain (a t,x,y,z grid through the "
                     "domain's faces, edges and corners that training never samples); 0 = no "
                     "held-out checks")
          .Default(int64_t{32768})
          .AtLeast(0)
          .AtMost(100000000),  // as lumpy certify --points
      ParamSpec::Bool("on_best", "also certify at every new best checkpoint").Default(true),
      ParamSpec::Int("refine_worst",
                     "refinement: start a bounded descent (float64) from the K worst grid points "
                     "of R and of every constraint; 0 = grid only")
          .Default(int64_t{16})
          .AtLeast(0)
          .AtMost(4096),
      ParamSpec::Int("refine_random", "refinement: and from M random points of the domain")
          .Default(int64_t{16})
          .AtLeast(0)
          .AtMost(4096),
      ParamSpec::Int("refine_iterations", "refinement: descent iterations per start")
          .Default(int64_t{60})
          .AtLeast(1)
          .AtMost(10000),
  };
  return specs;
}

const ParamSpecs& ReportParams() {
  static const ParamSpecs specs = {
      ParamSpec::String("checkpoint",
                        "what `lumpy report` draws unless --checkpoint says otherwise: final "
                        "(model.pt), latest, best (the best checkpoint interval) or best_step "
                        "(the single best step's model)")
          .Default(std::string("final"))
          .OneOf({"final", "latest", "best", "best_step"}),
      ParamSpec::Bool("notebook_kinematics",
                      "also draw H_mean and shear along the world line as the part-1 notebook "
                      "computed them (d_c g_a0 in place of d_t gamma_ij; a bug of the reference)")
          .Default(false),
  };
  return specs;
}

const ParamSpecs& ObserverParams() {
  static const ParamSpecs specs = {
      ParamSpec::DoubleList("event",
                            "where the observer sits, (t, x, y, z): rays start there, the field "
                            "equations' H today and the summary's kinematics today are taken there, "
                            "the report's world line and planes pass through it (t = 1 is today)")
          .Default(std::vector<double>(kDefaultObserver.begin(), kDefaultObserver.end()))
          .Length(4),
  };
  return specs;
}

namespace {

ParamSpec HandlerOn() {
  return ParamSpec::String("handler_on",
                           "what the handler sees: each point's value (points) or the domain's "
                           "mean (mean: lambda mean(v) + mu/2 mean(v)^2, as the reference's CMB "
                           "priors)")
      .Default(std::string("points"))
      .OneOf({"points", "mean"});
}

}  // namespace

const ParamSpecs& TopParams() {
  static const ParamSpecs specs = {
      ParamSpec::String("name", "run name (default: the file's stem)").Default(std::string("")),
      ParamSpec::String("description", "what this experiment is for").Default(std::string("")),
  };
  return specs;
}

const ParamSpecs& PluginsParams() {
  static const ParamSpecs specs = {
      ParamSpec::StringList("paths",
                            "extra plugin folders or libraries, relative to the file that names them")
          .Default(std::vector<std::string>{}),
  };
  return specs;
}

const ParamSpecs& DomainParams() {
  static const ParamSpecs specs = {
      ParamSpec::DoubleList("x", "[min, max] of x").Default(std::vector<double>{-1.0, 1.0}).Length(2),
      ParamSpec::DoubleList("y", "[min, max] of y").Default(std::vector<double>{-1.0, 1.0}).Length(2),
      ParamSpec::DoubleList("z", "[min, max] of z").Default(std::vector<double>{-1.0, 1.0}).Length(2),
      ParamSpec::Int("ray_points",
                     "points drawn each step from the states of the rays traced in the previous step "
                     "(every state a ray stopped on because it was bad first), besides the strata's; "
                     "a constraint on the domain is then checked where the rays go")
          .Default(int64_t{0})
          .AtLeast(0)
          .AtMost(10000000),
  };
  return specs;
}

const ParamSpecs& StratumParams() {
  static const ParamSpecs specs = {
      ParamSpec::Int("count", "points drawn from this stratum each step").AtLeast(1).AtMost(10000000),
      ParamSpec::DoubleList("t", "[min, max] of t").Length(2),
  };
  return specs;
}

const ParamSpecs& ObjectiveEntryParams() {
  static const ParamSpecs specs = {
      ParamSpec::String("domain", "the point domain the term is evaluated on"),
      ParamSpec::Double("weight", "factor of the term in the loss (before any weighting)").Default(1.0).AtLeast(0),
      HandlerOn(),
  };
  return specs;
}

const ParamSpecs& DatasetEntryParams() {
  static const ParamSpecs specs = {
      ParamSpec::Double("weight", "factor of the term in the loss (before any weighting)").Default(1.0).AtLeast(0),
  };
  return specs;
}

const ParamSpecs& ConstraintEntryParams() {
  static const ParamSpecs specs = {
      ParamSpec::String("domain", "the point domain the constraint is evaluated on"),
      HandlerOn(),
  };
  return specs;
}

}  // namespace lumpy
