// A valid shared library that is not a lumpy plugin (no info record).
extern "C" __attribute__((visibility("default"))) int some_function() { return 42; }
