#include "cli/cli.h"

int main(int argc, char** argv) { return lumpy::LumpyMain(argc, argv); }
