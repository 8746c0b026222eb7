"""The house rules of the layout (issue 14), checked over every Python file of the repository.

- no function over ``MAX_FUNCTION_LINES`` lines and no signature over ``MAX_PARAMS`` parameters;
- no ``common/`` module over ``MAX_MODULE_LINES`` lines;
- nothing in ``common/`` takes an argparse Namespace: the only functions with an ``args``
  parameter are the ``from_args`` converters that sit next to the flag groups, and no
  ``SimpleNamespace`` fakes.
The sandbox worker (straight-line syscall code) is exempt.

Print the report (longest functions, widest signatures, largest modules) with
    python tests/test_house.py
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 80
MAX_PARAMS = 8
MAX_MODULE_LINES = 600
EXEMPT = {"common/_sandbox_worker.py"}
CODE_DIRS = ("common", "recipe", "evals", "tts", "experiments", "controls", "figures", "tests")


def python_files() -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in (REPO / d).rglob("*.py"))


def functions(path: Path):
    """(qualified name, first line, lines, number of parameters, Namespace-like parameters) of every
    function; a Namespace-like parameter is one named ``args`` not annotated as a dict."""
    tree = ast.parse(path.read_text(), str(path))

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = child.args
                params = [x for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
                names = [x.arg for x in params]
                # a parameter named args that is annotated as a dict is recorded flags, not a Namespace
                flags = [x.arg for x in params if x.arg == "args" and not (
                    x.annotation is not None and ast.unparse(x.annotation).startswith("dict"))]
                yield (prefix + child.name, child.lineno, child.end_lineno - child.lineno + 1, len(names), flags)
                yield from walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
    yield from walk(tree, "")


def report() -> dict:
    long_f, wide_f, big_m, namespace = [], [], [], []
    for path in python_files():
        rel = str(path.relative_to(REPO))
        if rel in EXEMPT:
            continue
        n_lines = len(path.read_text().splitlines())
        if rel.startswith("common/") and n_lines > MAX_MODULE_LINES:
            big_m.append((n_lines, rel))
        for name, line, length, n_params, names in functions(path):
            where = f"{rel}:{line} {name}"
            if length > MAX_FUNCTION_LINES:
                long_f.append((length, where))
            if n_params > MAX_PARAMS:
                wide_f.append((n_params, where))
            if rel.startswith("common/") and "args" in names and not name.split(".")[-1].endswith("from_args"):
                namespace.append((0, where))
        if rel.startswith("common/") and "SimpleNamespace" in path.read_text():
            namespace.append((0, f"{rel}: SimpleNamespace"))
    return {"functions": sorted(long_f, reverse=True), "signatures": sorted(wide_f, reverse=True),
            "modules": sorted(big_m, reverse=True), "namespace": namespace}


def test_function_length_limit():
    assert report()["functions"] == []


def test_signature_width_limit():
    assert report()["signatures"] == []


def test_common_module_size_limit():
    assert report()["modules"] == []


def test_common_takes_no_namespace():
    assert report()["namespace"] == []


def test_the_checker_sees_a_planted_violation(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    src = tmp_path / "f.py"
    src.write_text(f"def long(a, b, c, d, e, f, g, h, i):\n{body}\n")
    (name, _, length, n_params, _), = functions(src)
    assert name == "long" and length == MAX_FUNCTION_LINES + 2 and n_params == 9
    src.write_text("def f(args, x: dict):\n    pass\ndef g(args: dict):\n    pass\n")
    assert [flags for *_, flags in functions(src)] == [["args"], []]


def main() -> int:
    r = report()
    sizes = sorted(((len(p.read_text().splitlines()), str(p.relative_to(REPO))) for p in python_files()),
                   reverse=True)
    allf = sorted(((length, f"{p.relative_to(REPO)}:{line} {name}") for p in python_files()
                   for name, line, length, _, _ in functions(p)), reverse=True)
    print(f"longest functions (limit {MAX_FUNCTION_LINES}):")
    for length, where in allf[:10]:
        print(f"  {length:5d}  {where}")
    print(f"largest modules (limit {MAX_MODULE_LINES} in common/, {', '.join(sorted(EXEMPT))} exempt):")
    for n, rel in sizes[:10]:
        print(f"  {n:5d}  {rel}")
    for key, label in (("functions", "functions over the limit"), ("signatures", f"signatures over {MAX_PARAMS}"),
                       ("modules", "common/ modules over the limit"), ("namespace", "Namespace inside common/")):
        print(f"{label}: {len(r[key])}")
        for v, where in r[key]:
            print(f"  {v:5d}  {where}")
    return 0 if not any(r.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
