#!/usr/bin/env python3
"""The layers of lumpyspace, checked on every #include "..." of the sources.

Three libraries, each a layer, in this order (docs/sdk.md):
  the SDK       sdk/include/lumpy (public), sdk/src (its implementation)
  the engine    framework/{core,config,data,loader,physics,train}
  the CLI       framework/cli
and the plugins (plugins/, sdk/template/), which see only the SDK's public
headers. A file may include its own layer and the layers below it; plugins
and the public headers only lumpy/... and their own folder's files.
Exits 1 naming every include that points upward.

  python3 scripts/check_layers.py [repository root]
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
ENGINE = ("core", "config", "data", "loader", "physics", "train")
SOURCES = (".h", ".hh", ".hpp", ".cc", ".cpp", ".in")


def layer_of_include(root, including, name):
    """The layer an include resolves to, the way the build's paths resolve it."""
    if name.startswith("lumpy/"):
        return "sdk"
    if (including.parent / name).exists():
        return "local"
    if (root / "sdk" / "src" / name).exists() or name == "engine_export.h":
        return "sdk"
    head = name.split("/", 1)[0]
    if head == "cli":
        return "cli"
    if head in ENGINE and (root / "framework" / name).exists():
        return "engine"
    return "other"  # a third-party header


def rule(root, path):
    """(layer name, includes it may make) for a source file, or None."""
    rel = path.relative_to(root).parts
    if rel[0] == "plugins" or rel[:2] == ("sdk", "template") or rel[:2] == ("sdk", "include"):
        return "plugin or public SDK header", {"sdk", "local", "other"}
    if rel[:2] == ("sdk", "src"):
        return "SDK implementation", {"sdk", "local", "other"}
    if rel[0] == "framework" and len(rel) > 2 and rel[1] in ENGINE:
        return "engine", {"sdk", "engine", "local", "other"}
    if rel[:2] == ("framework", "cli"):
        return "CLI", {"sdk", "engine", "cli", "local", "other"}
    return None


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    checked, bad = 0, []
    for top in ("sdk", "framework", "plugins"):
        for path in sorted((root / top).rglob("*")):
            if path.suffix not in SOURCES or not path.is_file():
                continue
            which = rule(root, path)
            if which is None:
                continue
            name, allowed = which
            checked += 1
            text = path.read_text(errors="replace")
            for m in INCLUDE.finditer(text):
                layer = layer_of_include(root, path, m.group(1))
                if layer not in allowed:
                    line = text.count("\n", 0, m.start()) + 1
                    bad.append(f"{path.relative_to(root)}:{line}: a file of the {name} includes "
                               f"\"{m.group(1)}\", which is the {layer}'s")
    for b in bad:
        print(b)
    print(f"layers: {checked} files checked, {len(bad)} upward includes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
