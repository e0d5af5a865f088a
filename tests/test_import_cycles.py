"""No two famt_mm modules import each other, directly or around a loop (function-level imports
included): a cycle means one concept is split over two modules."""
import ast
import os
import os.path as osp

from tests.conftest import REPO

PACKAGE = osp.join(REPO, 'famt_mm')


def _modules():
    """Dotted name -> file of every module under famt_mm."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                dotted = osp.relpath(path[:-3], REPO).replace(os.sep, '.')
                found[dotted[:-len('.__init__')] if dotted.endswith('.__init__') else dotted] = path
    return found


def _imports(module, path, modules):
    """The famt_mm modules ``module`` imports (package __init__ files not followed)."""
    package = module if path.endswith('__init__.py') else module.rsplit('.', 1)[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parent = package.rsplit('.', node.level - 1)[0] if node.level > 1 else package
                base = f'{parent}.{base}' if base else parent
            for alias in node.names:
                out.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in modules and m != module
            and not modules[m].endswith('__init__.py')}


def test_no_import_cycle_between_famt_mm_modules():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    cycles = []
    for start in sorted(graph):  # a module that reaches itself is on a cycle
        parent, todo = {}, [start]
        while todo and start not in parent:
            node = todo.pop()
            for nxt in graph[node]:
                if nxt not in parent:
                    parent[nxt] = node
                    todo.append(nxt)
        if start in parent:
            loop, node = [start], parent[start]
            while node != start:
                loop.append(node)
                node = parent[node]
            cycles.append(' <- '.join(loop + [start]))
    assert not cycles, f'import cycles: {cycles[:5]}'
