#pragma once
// Everything a plugin author needs.
#include "lumpy/build_info.h"
#include "lumpy/constraint_handler.h"
#include "lumpy/curriculum_weighter.h"
#include "lumpy/geometry.h"
#include "lumpy/jet.h"
#include "lumpy/loss_term.h"
#include "lumpy/metric_model.h"
#include "lumpy/params.h"
#include "lumpy/physical_parameter.h"
#include "lumpy/plugin.h"
#include "lumpy/registry.h"
#include "lumpy/step_context.h"
