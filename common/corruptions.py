"""Mechanical corruptions of a reference solution (the corrupted-pairs control): every
single-site edit of one kind applied to the entry point's function, kept when its normal form
differs from the original's (:func:`common.pycode.normalize_code`). Whether a corruption really
fails the tests is for the sandbox to say.
"""
from __future__ import annotations

import ast

from common.pycode import docstring_node, normalize_code

CORRUPTIONS = ("range_off_by_one", "index_off_by_one", "compare_swap", "arith_swap", "wrong_return",
               "drop_line", "bool_flip")
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In}
_ARITH_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult}


def _sites(tree, kind: str) -> list:
    """Nodes of ``tree`` where corruption ``kind`` applies, in a stable (walk) order."""
    out = []
    for node in ast.walk(tree):
        if kind == "range_off_by_one" and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "range" and node.args:
            out.append(node)
        elif kind == "index_off_by_one" and isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Store):
            if not isinstance(node.slice, ast.Slice) or node.slice.upper is not None or node.slice.lower is not None:
                out.append(node)
        elif kind == "compare_swap" and isinstance(node, ast.Compare) and type(node.ops[0]) in _CMP_SWAP:
            out.append(node)
        elif kind == "arith_swap" and isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _ARITH_SWAP:
            out.append(node)
        elif kind == "wrong_return" and isinstance(node, ast.Return) and node.value is not None:
            out.append(node)
        elif kind == "drop_line" and isinstance(node, (ast.FunctionDef, ast.For, ast.While, ast.If, ast.With)):
            body = node.body[1:] if isinstance(node, ast.FunctionDef) and docstring_node(node) else node.body
            if len(body) > 1:
                out += [(node, s) for s in body]
        elif kind == "bool_flip" and isinstance(node, ast.Constant) and isinstance(node.value, bool):
            out.append(node)
    return out


def _minus_one(e):
    return ast.BinOp(left=e, op=ast.Sub(), right=ast.Constant(1))


def _plus_one(e):
    return ast.BinOp(left=e, op=ast.Add(), right=ast.Constant(1))


def _apply(tree, kind: str, site, fn_args: list[str]) -> bool:
    """Mutate ``tree`` at ``site``; False when the site admits no change."""
    if kind == "range_off_by_one":
        i = 0 if len(site.args) == 1 else 1
        site.args[i] = _minus_one(site.args[i])
    elif kind == "index_off_by_one":
        if isinstance(site.slice, ast.Slice):
            if site.slice.upper is not None:
                site.slice.upper = _minus_one(site.slice.upper)
            else:
                site.slice.lower = _plus_one(site.slice.lower)
        else:
            site.slice = _plus_one(site.slice)
    elif kind == "compare_swap":
        site.ops[0] = _CMP_SWAP[type(site.ops[0])]()
    elif kind == "arith_swap":
        site.op = _ARITH_SWAP[type(site.op)]()
    elif kind == "wrong_return":
        other = next((a for a in fn_args if not (isinstance(site.value, ast.Name) and site.value.id == a)), None)
        site.value = ast.Name(other, ast.Load()) if other else ast.Constant(None)
    elif kind == "drop_line":
        parent, stmt = site
        parent.body = [s for s in parent.body if s is not stmt]
    elif kind == "bool_flip":
        site.value = not site.value
    return True


def corruptions(code: str, entry_point: str) -> list[tuple[str, int, str]]:
    """Every single-site mechanical corruption of ``code``: (kind, site index, corrupted code).

    Kinds (:data:`CORRUPTIONS`): off-by-one in a ``range`` stop or an index/slice bound, a
    swapped comparison (< and <=, == and !=, in and not in), a swapped arithmetic operator, a
    return of the wrong variable (the first other parameter, else None), a dropped statement,
    a flipped boolean constant. Only the entry point's function is corrupted; results whose
    normal form equals the original's are left out. Whether a corruption really fails the
    tests is for the sandbox to say.
    """
    base_tree = ast.parse(code)
    base_norm = normalize_code(code)[0]
    fn_index = next((i for i, n in enumerate(base_tree.body)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry_point), None)
    if fn_index is None:
        raise ValueError(f"{entry_point!r} is not defined at top level")
    out = []
    for kind in CORRUPTIONS:
        n_sites = len(_sites(base_tree.body[fn_index], kind))
        for k in range(n_sites):
            tree = ast.parse(code)
            fn = tree.body[fn_index]
            site = _sites(fn, kind)[k]
            args = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            _apply(tree, kind, site, args)
            ast.fix_missing_locations(tree)
            try:
                new = ast.unparse(tree)
                ast.parse(new)
            except (SyntaxError, ValueError, AttributeError, TypeError):
                continue
            if normalize_code(new)[0] != base_norm:
                out.append((kind, k, new))
    return out
