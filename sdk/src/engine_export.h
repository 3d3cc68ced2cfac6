#pragma once
// Engine entry points exported from liblumpy for the CLI and the tests. Their
// headers are not installed: plugins see only sdk/include/lumpy.
#define LUMPY_ENGINE_API __attribute__((visibility("default")))
