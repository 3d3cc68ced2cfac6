#!/usr/bin/env python3
"""The layers of lumpyspace, checked on every #include of the sources.

Three libraries, each a layer, in this order (docs/sdk.md, README "Layout"):
  the SDK       sdk/include/lumpy (public: what plugins see, installed)
                sdk/src (its implementation: private)
  the engine    framework/{core,config,data,loader,physics,train}
  the CLI       framework/cli
and the plugins (plugins/, sdk/template/), which see only the SDK's public
headers and their own files. Every include, "..." or <...>, is resolved as
the build resolves it (the including file's folder for "...", then the
include roots sdk/include, sdk/src, framework) and judged by where the file
it names lives. A file may include its own layer and the layers below it;
the public headers and the plugins only the public headers. Exits 1 naming
every include that points upward.

  python3 scripts/check_layers.py [repository root]
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
ENGINE = ("core", "config", "data", "loader", "physics", "train")
SOURCES = (".h", ".hh", ".hpp", ".cc", ".cpp", ".in")


def layer_of_path(root, path):
    """The layer a file of the repository belongs to, or None outside them."""
    try:
        rel = path.resolve().relative_to(root).parts
    except ValueError:
        return None
    if rel[:2] == ("sdk", "include"):
        return "public SDK"
    if rel[:2] == ("sdk", "src"):
        return "SDK implementation"
    if rel[:2] == ("framework", "cli"):
        return "CLI"
    if rel[0] == "framework" and len(rel) > 2 and rel[1] in ENGINE:
        return "engine"
    if rel[0] == "plugins" or rel[:2] == ("sdk", "template"):
        return "plugin"
    return None


ALLOWED = {
    "public SDK": {"public SDK"},
    "plugin": {"public SDK", "plugin"},
    "SDK implementation": {"public SDK", "SDK implementation"},
    "engine": {"public SDK", "SDK implementation", "engine"},
    "CLI": {"public SDK", "SDK implementation", "engine", "CLI"},
}


def resolve(root, including, quote, name):
    """The repository file an include names, or None (a third-party header)."""
    candidates = [including.parent / name] if quote == '"' else []
    candidates += [root / "sdk" / "include" / name, root / "sdk" / "src" / name, root / "framework" / name]
    for c in candidates:
        if c.is_file():
            return c
    return None


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    checked, bad = 0, []
    for top in ("sdk", "framework", "plugins"):
        for path in sorted((root / top).rglob("*")):
            if path.suffix not in SOURCES or not path.is_file():
                continue
            layer = layer_of_path(root, path)
            if layer is None:
                continue
            checked += 1
            text = path.read_text(errors="replace")
            for m in INCLUDE.finditer(text):
                target = resolve(root, path, m.group(1), m.group(2))
                if target is None:
                    continue
                theirs = layer_of_path(root, target)
                if theirs is not None and theirs not in ALLOWED[layer]:
                    line = text.count("\n", 0, m.start()) + 1
                    close = ">" if m.group(1) == "<" else '"'
                    bad.append(f"{path.relative_to(root)}:{line}: a file of the {layer} includes "
                               f"{m.group(1)}{m.group(2)}{close}, "
                               f"which is the {theirs}'s ({target.resolve().relative_to(root)})")
    for b in bad:
        print(b)
    print(f"layers: {checked} files checked, {len(bad)} upward includes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
