"""No import cycles among famt_mm's modules, counting imports inside functions too (a cycle means
one concept is split over two modules). famt_mm.bank imports nothing of famt_mm.engine (the
file storage gets the rank-agreement step passed in).
Edges as written (``import a.b`` -> a.b, ``from a import b`` -> a.b if that is a module, else
a; relative imports resolved), plus the packages whose ``__init__`` such an import runs."""
import ast
import os
import os.path as osp

from tests.conftest import REPO


def _modules():
    found = {}
    for d, _, files in os.walk(osp.join(REPO, 'famt_mm')):
        for f in files:
            if f.endswith('.py'):
                name = osp.relpath(osp.join(d, f), REPO)[:-3].replace(os.sep, '.')
                is_package = f == '__init__.py'
                found[name[:-9] if is_package else name] = (osp.join(d, f), is_package)
    return found


def _graph(modules, top_level_only):
    graph = {m: set() for m in modules}
    for mod, (path, is_pkg) in modules.items():
        tree = ast.parse(open(path).read())
        for node in tree.body if top_level_only else ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                src = node.module or ''
                if node.level:
                    base = mod.split('.')[:len(mod.split('.')) - node.level + is_pkg]
                    src = '.'.join(base + ([node.module] if node.module else []))
                targets = [f'{src}.{a.name}' if f'{src}.{a.name}' in modules else src
                           for a in node.names]
            else:
                continue
            for t in targets:
                while '.' in t and t not in modules:
                    t = t.rsplit('.', 1)[0]
                if t in modules and t != mod:
                    graph[mod].add(t)
                    graph[mod].update(_packages_run_first(t, mod))
    return graph


def _packages_run_first(target, mod):
    """The packages whose ``__init__`` importing ``target`` runs (famt_mm itself and ``mod``'s
    own packages are running already)."""
    parts = target.split('.')
    return {'.'.join(parts[:i]) for i in range(2, len(parts))} - {
        '.'.join(mod.split('.')[:i]) for i in range(1, len(mod.split('.')))}


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, out = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    modules = _modules()
    assert 'famt_mm.bank.storage' in modules and 'famt_mm.engine.rank_agreement' in modules
    assert _cycles(_graph(modules, top_level_only=True)) == []
    assert _cycles(_graph(modules, top_level_only=False)) == []
    bank = {m for m in modules if m.startswith('famt_mm.bank')}
    graph = _graph(modules, top_level_only=False)
    assert not {t for m in bank for t in graph[m] if t.startswith('famt_mm.engine')}
