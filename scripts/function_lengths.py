#!/usr/bin/env python3
"""File and function lengths of the C++ sources (standard library only).

Prints each file's line count (longest first, the top N) and every function
definition longer than a limit, as `path:line: name: N lines`. A function's
length runs from the line of its signature (after any `template <...>`
line) to its closing brace, both included; lambdas, local classes and every
other brace inside a body count as part of the enclosing function.
Namespaces, classes/structs/unions, enums, `extern "C"` blocks and
initializer braces are not functions (their member functions are, named
Class::member). A lambda bound at namespace or class scope
(`auto f = [](...) {...};`) is reported as `f (lambda)`.

The scanner matches braces after blanking comments, string and char literals
(raw strings R"d(...)d" included) and preprocessor lines; it does not expand
macros, so a function-like macro with a body (`TEST(Suite, Name) {...}`) is
reported under the macro's name with its arguments.

usage: function_lengths.py [FOLDER ...] [--root DIR] [--top N] [--limit L]
                           [--longest K] [--max N]

  FOLDER       folders (or single files) to scan, relative to --root unless
               absolute; default: framework sdk/src sdk/include plugins
  --root DIR   the repository root (default: this script's parent folder);
               paths are printed relative to it
  --top N      how many files to list by line count (default 10; 0: none)
  --limit L    list every function longer than L lines (default 80)
  --longest K  also list the K longest functions, whatever their length
  --max N      exit 1 if any function is longer than N lines (a test);
               the offenders are printed on stderr

Exit status: 0, or 1 when --max is exceeded, 2 on a usage error.
"""
import argparse
import bisect
import os
import re
import signal
import sys

EXTENSIONS = (".cc", ".cpp", ".cxx", ".c", ".h", ".hh", ".hpp", ".hxx", ".inl", ".ipp", ".cu", ".cuh")
DEFAULT_FOLDERS = ("framework", "sdk/src", "sdk/include", "plugins")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_RAW_PREFIX = re.compile(r"(?:u8|u|U|L)?R")
_CHAR_PREFIX = re.compile(r"(?:u8|u|U|L)$")


# ---------------------------------------------------------------------------
# Blanking: comments, literals and preprocessor lines become spaces (newlines
# are kept, so offsets and line numbers stay those of the source).


def _token_before(text, i):
    """The identifier/number characters just before index i."""
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "_'."):
        j -= 1
    return text[j:i]


def _literal_end(text, i, quote):
    """The offset just past the quoted literal opening at i (escapes skipped;
    an unterminated literal ends at its line)."""
    n = len(text)
    j = i + 1
    while j < n and text[j] != quote and text[j] != "\n":
        j += 2 if text[j] == "\\" else 1
    return min(j + 1, n)


def _blank_literals(text):
    out = list(text)
    n = len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    i = 0
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            j = i
            while j < n and text[j] != "\n":
                # A backslash-newline continues a line comment.
                if text[j] == "\\" and j + 1 < n and text[j + 1] == "\n":
                    j += 1
                j += 1
            blank(i, j)
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == '"':
            prefix = _token_before(text, i)
            if _RAW_PREFIX.fullmatch(prefix):
                open_paren = text.find("(", i + 1)
                delim = text[i + 1:open_paren] if open_paren >= 0 else ""
                end = text.find(")" + delim + '"', open_paren + 1) if open_paren >= 0 else -1
                j = n if end < 0 else end + len(delim) + 2
                blank(i - len(prefix), j)
            else:
                j = _literal_end(text, i, '"')
                blank(i, j)
            i = j
        elif c == "'":
            token = _token_before(text, i)
            if token and token[0].isdigit():
                i += 1  # a digit separator: 1'000'000
                continue
            if token and not _CHAR_PREFIX.fullmatch(token):
                i += 1  # not a literal (should not happen in valid code)
                continue
            j = _literal_end(text, i, "'")
            blank(i, j)
            i = j
        else:
            i += 1
    return "".join(out)


def _blank_preprocessor(text):
    out = []
    continued = False
    for line in text.split("\n"):
        if continued or line.lstrip().startswith("#"):
            continued = line.rstrip().endswith("\\")
            out.append(" " * len(line))
        else:
            out.append(line)
    return "\n".join(out)


def clean_source(text):
    return _blank_preprocessor(_blank_literals(text))


# ---------------------------------------------------------------------------
# Heads: the text between the previous `;`, `{` or `}` at declaration scope
# and a `{` decides what that brace opens.

_CLASS_KEYWORDS = re.compile(r"\b(namespace|class|struct|union|enum)\b")
_NOT_A_NAME = {
    "decltype", "alignas", "alignof", "sizeof", "noexcept", "throw", "__attribute__",
    "__declspec", "static_assert", "requires", "if", "for", "while", "switch", "return",
}
# A macro's name: all capitals, 4 characters or more (not I2 or R).
_MACRO = re.compile(r"[A-Z][A-Z0-9_]{3,}")
_QUALIFIER = re.compile(
    r"\s*(?:const\b|volatile\b|&&|&|override\b|final\b|mutable\b|constexpr\b|try\b|"
    r"noexcept\b|throw\b|\[\[.*?\]\]|__attribute__\b|[A-Z][A-Z0-9_]*\b)"
)


def _strip_template(head):
    """Removes a leading `template <...>` (possibly several) from head."""
    while True:
        m = re.match(r"\s*template\s*<", head)
        if not m:
            return head
        depth, i = 1, m.end()
        while i < len(head) and depth:
            if head[i] == "<":
                depth += 1
            elif head[i] == ">":
                depth -= 1
            elif head[i] in "({[":
                i = _match_group(head, i)
                continue
            i += 1
        head = head[i:]


def _strip_labels(head):
    return re.sub(r"^\s*(?:(?:public|private|protected)\s*:(?!:)\s*)+", "", head)


def _match_group(s, i):
    """Index just past the group opened by s[i] in '([{'."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[s[i]]]
    j = i + 1
    while j < len(s) and stack:
        if s[j] in pairs:
            stack.append(pairs[s[j]])
        elif s[j] == stack[-1]:
            stack.pop()
        j += 1
    return j


def _paren_groups(head):
    """The top-level parenthesized groups of head, as (start, end) offsets."""
    groups = []
    i = 0
    while i < len(head):
        if head[i] in "([{":
            j = _match_group(head, i)
            if head[i] == "(":
                groups.append((i, j))
            i = j
        else:
            i += 1
    return groups


def _unclosed(head):
    """Whether head leaves a parenthesis or bracket open (`f({...})`)."""
    depth = 0
    for ch in head:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
    return depth > 0


def _top_level_text(head):
    """head with every bracketed group blanked (keeps its length)."""
    out = list(head)
    i = 0
    while i < len(head):
        if head[i] in "([{":
            j = _match_group(head, i)
            for k in range(i + 1, min(j, len(head)) - 1):
                out[k] = " "
            i = j
        else:
            i += 1
    return "".join(out)


def _qualifiers_only(rest):
    """Whether rest (what follows a parameter list) is qualifiers, a trailing
    return type or a constructor's initializer list."""
    i = 0
    while True:
        while i < len(rest) and rest[i].isspace():
            i += 1
        if i == len(rest):
            return True
        if rest.startswith("->", i):
            return True
        if rest[i] == ":" and not rest.startswith("::", i):
            return True
        m = _QUALIFIER.match(rest, i)
        if not m:
            return False
        i = m.end()
        # noexcept(...), throw(...), __attribute__((...))
        while i < len(rest) and rest[i].isspace():
            i += 1
        if i < len(rest) and rest[i] == "(":
            i = _match_group(rest, i)


def _name_before(head, paren):
    """The (possibly qualified) name whose parameter list opens at paren."""
    i = paren
    while i > 0 and head[i - 1].isspace():
        i -= 1
    end = i
    m = re.search(r"operator\s*(?:\(\s*\)|\[\s*\]|[^\s\w(]+|\s+[\w:<>*&\s]+?)\s*$", head[:end])
    if m:
        start = m.start()
    else:
        while i > 0 and (head[i - 1].isalnum() or head[i - 1] == "_"):
            i -= 1
        if i == end:
            # A template-id's arguments: Foo<T>::bar(...) ends in an identifier,
            # but Foo<T>(...) (a deduction guide, or a cast) is not a function.
            return None, None
        start = i
    # The qualification: A::B<C>::~name
    j = start
    while True:
        k = j
        while k > 0 and head[k - 1].isspace():
            k -= 1
        if k > 0 and head[k - 1] == "~":
            k -= 1
            j = k
            continue
        if k >= 2 and head[k - 2:k] == "::":
            k -= 2
            while k > 0 and head[k - 1].isspace():
                k -= 1
            if k > 0 and head[k - 1] == ">":
                depth = 0
                while k > 0:
                    k -= 1
                    if head[k] == ">":
                        depth += 1
                    elif head[k] == "<":
                        depth -= 1
                        if depth == 0:
                            break
            while k > 0 and (head[k - 1].isalnum() or head[k - 1] == "_"):
                k -= 1
            j = k
            continue
        break
    name = re.sub(r"\s+", "", head[j:end]) if not m else re.sub(r"\s+", " ", head[j:end]).strip()
    return name, j


def classify(head):
    """What a `{` after head opens: ('function', name, offset of the
    signature in head), ('scope', kind, name) or ('init',)."""
    body = _strip_labels(_strip_template(head))
    offset = len(head) - len(body)
    if _unclosed(body):
        return ("init",)
    top = _top_level_text(body)
    stripped = top.strip()
    if not stripped:
        return ("init",)
    if stripped.endswith("="):
        return ("init",)
    # `extern "C" {` (the string is blanked)
    if re.fullmatch(r"extern", stripped):
        return ("scope", "extern", "")
    m = _CLASS_KEYWORDS.search(top)
    if m:
        kind = m.group(1)
        if kind == "enum":
            return ("scope", "enum", "")
        if kind == "namespace":
            return ("scope", "namespace", "")
        decl = re.split(r"(?<!:):(?!:)", top[m.end():], maxsplit=1)[0]
        decl = re.sub(r"\bfinal\b", " ", decl)
        idents = re.findall(r"[A-Za-z_][\w:]*", decl)
        idents = [x for x in idents if not re.fullmatch(r"[A-Z][A-Z0-9_]*_API|alignas|__attribute__", x)]
        return ("scope", "class", idents[-1] if idents else "<anonymous>")
    # A lambda bound to a name: auto f = [...](...) {
    if not re.search(r"\boperator\b", top):
        eq = re.search(r"(?<![=!<>+\-*/%&|^])=(?!=)", top)
        if eq:
            rhs = body[eq.end():].lstrip()
            if rhs.startswith("["):
                names = _IDENT.findall(top[:eq.start()])
                name = (names[-1] if names else "<lambda>") + " (lambda)"
                lead = len(body) - len(body.lstrip())
                return ("function", name, offset + lead)
            return ("init",)
    groups = _paren_groups(body)
    for start, end in groups:
        name, name_start = _name_before(body, start)
        if not name or name in _NOT_A_NAME:
            continue
        if not _qualifiers_only(body[end:]):
            continue
        if _MACRO.fullmatch(name):  # a macro: TEST(Suite, Name)
            name += re.sub(r"\s+", " ", body[start:end])
        # The signature starts at the head's start, or below a macro invocation
        # without a semicolon (LUMPY_SOMETHING(x) on the lines above).
        sig = 0
        for s2, e2 in groups:
            if s2 >= start:
                break
            macro, _ = _name_before(body, s2)
            if macro and _MACRO.fullmatch(macro) and "\n" in body[e2:name_start]:
                sig = e2
        lead = sig
        while lead < len(body) and body[lead].isspace():
            lead += 1
        return ("function", name, offset + lead)
    return ("init",)


# ---------------------------------------------------------------------------
# The scan.


class Function:
    def __init__(self, path, line, name, length):
        self.path, self.line, self.name, self.length = path, line, name, length

    def __str__(self):
        return f"{self.path}:{self.line}: {self.name}: {self.length} lines"


def scan(text, path="<text>"):
    """Every function definition in text, as Function objects."""
    src = clean_source(text)
    newlines = [i for i, ch in enumerate(src) if ch == "\n"]

    def line_of(offset):
        return bisect.bisect_right(newlines, offset - 1) + 1

    functions = []
    # Each entry: (kind, payload). Declaration scopes: 'file', 'namespace',
    # 'extern', 'class'. Others: 'function', 'init', 'enum', 'ctorinit'.
    stack = [("file", None)]
    head_start = 0
    i = 0
    n = len(src)
    while i < n:
        ch = src[i]
        kind = stack[-1][0]
        if kind in ("file", "namespace", "extern", "class"):
            if ch == ";":
                head_start = i + 1
            elif ch == "{":
                head = src[head_start:i]
                what = classify(head)
                prev = head.rstrip()[-1:] if head.strip() else ""
                if what[0] == "function" and (prev.isalnum() or prev in "_>") and \
                        re.search(r"\)\s*:(?!:)", _top_level_text(head)):
                    # A brace initializer in a constructor's initializer list.
                    stack.append(("ctorinit", None))
                elif what[0] == "function":
                    classes = [p for k, p in stack if k == "class"]
                    name = "::".join(classes + [what[1]])
                    stack.append(("function", (name, line_of(head_start + what[2]))))
                elif what[0] == "scope":
                    stack.append((what[1] if what[1] != "enum" else "enum", what[2]))
                    head_start = i + 1
                else:
                    stack.append(("init", None))
            elif ch == "}":
                if len(stack) > 1:
                    stack.pop()
                head_start = i + 1
        else:
            if ch == "{":
                stack.append(("inner", None))
            elif ch == "}":
                closing = stack.pop()
                if closing[0] == "function":
                    name, first = closing[1]
                    functions.append(Function(path, first, name, line_of(i) - first + 1))
                    head_start = i + 1
                elif closing[0] == "enum":
                    head_start = i + 1
                # 'init' and 'ctorinit': the head goes on (`= {...};`, `: a_{x} {`)
        i += 1
    return functions


def source_files(root, folders):
    for folder in folders:
        path = folder if os.path.isabs(folder) else os.path.join(root, folder)
        if os.path.isfile(path):
            yield path
            continue
        if not os.path.isdir(path):
            print(f"function_lengths.py: no such folder: {path}", file=sys.stderr)
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.endswith(EXTENSIONS):
                    yield os.path.join(dirpath, name)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="File line counts and functions longer than a limit in C++ sources.")
    parser.add_argument("folders", nargs="*", default=list(DEFAULT_FOLDERS),
                        help="folders or files (default: %(default)s)")
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="repository root (default: this script's parent folder)")
    parser.add_argument("--top", type=int, default=10, help="files to list by line count (default 10)")
    parser.add_argument("--limit", type=int, default=80,
                        help="list functions longer than this many lines (default 80)")
    parser.add_argument("--longest", type=int, default=0, help="also list the K longest functions")
    parser.add_argument("--max", type=int, default=None,
                        help="exit 1 if any function is longer than this many lines")
    args = parser.parse_args(argv)

    root = os.path.abspath(args.root)
    files = list(source_files(root, args.folders))
    if not files:
        print("function_lengths.py: no C++ files found", file=sys.stderr)
        return 2
    sizes, functions = [], []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        rel = os.path.relpath(path, root)
        sizes.append((text.count("\n") + (0 if text.endswith("\n") or not text else 1), rel))
        functions.extend(scan(text, rel))

    if args.top > 0:
        print(f"# {len(files)} files; the {min(args.top, len(files))} longest (lines):")
        for lines, rel in sorted(sizes, key=lambda s: (-s[0], s[1]))[:args.top]:
            print(f"{lines:7d}  {rel}")
    long_ones = [f for f in functions if f.length > args.limit]
    print(f"# {len(functions)} functions; {len(long_ones)} longer than {args.limit} lines:")
    for fn in sorted(long_ones, key=lambda f: (f.path, f.line)):
        print(fn)
    if args.longest > 0:
        print(f"# the {args.longest} longest functions:")
        for fn in sorted(functions, key=lambda f: (-f.length, f.path, f.line))[:args.longest]:
            print(fn)
    if args.max is not None:
        over = [f for f in functions if f.length > args.max]
        if over:
            print(f"function_lengths.py: {len(over)} function(s) longer than {args.max} lines:",
                  file=sys.stderr)
            for fn in sorted(over, key=lambda f: -f.length):
                print(f"  {fn}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
    sys.exit(main())
