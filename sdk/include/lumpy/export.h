#pragma once
// Symbol visibility: everything is hidden by default; LUMPY_API marks the
// SDK's public types and functions, implemented in liblumpy_sdk.
#define LUMPY_API __attribute__((visibility("default")))
