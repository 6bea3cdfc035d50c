#!/usr/bin/env python3
"""check-layout.py: the layout rules the tree keeps (README, "Layout").

  1. each folder includes only from the folders it may use (the table below,
     DESIGN.md's layout table);
  2. no source file over 800 lines;
  3. no function over 80 lines outside tests/ and bench/ (a definition that
     starts at column 0 and ends at the next "}" at column 0);
  4. the table itself has no cycle: the arrows between folders point one way;
  5. every C++ file is formatted as .clang-format says (when clang-format is
     installed; scripts/setup.sh installs it).

Prints every breach and exits 1 if there is any; 0 and one summary line if
none. Usage: scripts/check-layout.py [REPO_ROOT]
"""
import pathlib
import re
import shutil
import subprocess
import sys

MAY_USE = {
    "crypto": set(),
    "dataplane": {"crypto"},
    "proto": {"common"},
    "common": set(),
    "farad": {"proto", "common"},
    "control": {"dataplane", "crypto", "proto", "common"},
    "faradayctl": {"proto", "common", "crypto"},
    "rkt": {"proto", "common"},
}
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 80
SOURCES = (".cpp", ".h", ".cc")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
NOT_A_FUNCTION = re.compile(r"^(namespace|struct|class|enum|union|extern|template\s*<[^>]*>\s*(struct|class))\b")


def folder_of(path):
    return path.split("/", 1)[0] if "/" in path else ""


def check_includes(root, rel, lines, problems):
    top = folder_of(rel)
    if top not in MAY_USE:
        return
    for n, line in enumerate(lines, 1):
        m = INCLUDE.match(line)
        if not m:
            continue
        target = m.group(1)
        other = folder_of(target)
        if other in ("", top) or other not in MAY_USE:
            continue  # config.h, own folder, generated or system headers
        if other not in MAY_USE[top]:
            problems.append(f"{rel}:{n}: {top}/ may not include {target}")


def check_functions(rel, lines, problems):
    start = None
    for n, line in enumerate(lines, 1):
        if start is None:
            if (line and not line[0].isspace() and line.rstrip().endswith("{")
                    and "(" in line and not NOT_A_FUNCTION.match(line)
                    and not line.startswith(("#", "//", "}"))):
                start = n
            continue
        if line.startswith("}"):
            length = n - start + 1
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{rel}:{start}: function of {length} lines (at most {MAX_FUNCTION_LINES})")
            start = None


def check_no_cycle(problems):
    state = {}  # folder -> "visiting" or "done"

    def visit(folder, path):
        if state.get(folder) == "done":
            return
        if state.get(folder) == "visiting":
            problems.append("layout table: folders include each other: " + " -> ".join(path + [folder]))
            return
        state[folder] = "visiting"
        for other in sorted(MAY_USE.get(folder, ())):
            visit(other, path + [folder])
        state[folder] = "done"

    for folder in sorted(MAY_USE):
        visit(folder, [])


def check_format(root, rels, problems):
    tool = shutil.which("clang-format")
    if not tool:
        print("check-layout: clang-format not installed, formatting not checked")
        return
    out = subprocess.run([tool, "--dry-run", "-Werror", *rels], cwd=root,
                         capture_output=True, text=True)
    unformatted = sorted({line.split(":", 1)[0] for line in out.stderr.splitlines()
                          if ": error: code should be clang-formatted" in line})
    for rel in unformatted:
        problems.append(f"{rel}: not formatted as .clang-format says (clang-format -i {rel})")
    if out.returncode != 0 and not unformatted:
        problems.append("clang-format failed: " + out.stderr.strip()[:500])


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    problems = []
    check_no_cycle(problems)
    files = 0
    formatted = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or not rel.endswith(SOURCES) or rel.startswith(("build", ".")):
            continue
        files += 1
        if rel.endswith((".cpp", ".h")):
            formatted.append(rel)
        lines = path.read_text(errors="replace").split("\n")
        if len(lines) - 1 > MAX_FILE_LINES:
            problems.append(f"{rel}: {len(lines) - 1} lines (at most {MAX_FILE_LINES})")
        check_includes(root, rel, lines, problems)
        if not rel.startswith(("tests/", "bench/")):
            check_functions(rel, lines, problems)
    check_format(root, formatted, problems)
    for p in problems:
        print(p)
    if problems:
        print(f"check-layout: {len(problems)} problem(s) in {files} files")
        return 1
    print(f"check-layout: {files} source files: includes, file and function sizes and formatting as the layout says")
    return 0


if __name__ == "__main__":
    sys.exit(main())
