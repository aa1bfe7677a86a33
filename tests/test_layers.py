"""The layers of docs/architecture.md, checked on the source (with `ast`, nothing is run).

- A hub module imports only its own layer and the layers below it (`LAYERS`), so no
  import cycle can run between two layers.
- No import cycle between two hub sub-packages but the two `hub.ws` makes by spanning
  two layers (`SPLIT_CYCLES`), and no cycle of modules across sub-packages at all.
- `hub/rules/*` is pure: it imports no I/O library.
- `payments` imports nothing from `hub`; `supporthub_core` nothing from either.
- SQL is issued only by the store: `hub/store/`, payments' own store modules and the
  shared pool, migration and audit code of `supporthub_core`.

Imports under `if TYPE_CHECKING:` are left out: they name a type for the checker and do
not run. Imports inside functions count: they run when the function does.

Each checker is a plain function over `{module name: source}`, so the tests below also
feed it a synthetic offender to show that it does catch one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hub", "payments", "supporthub_core")

# The hub's layers, lowest first. A module belongs to the layer of the longest prefix
# that names it (`hub.ws.protocol` is a leaf, the rest of `hub.ws` is an edge).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # pure cores and the small parts everything may use
    ("leaves", (
        "hub.rules", "hub.helpbot", "hub.cluster.ring", "hub.cluster.replay",
        "hub.ws.protocol", "hub.push.config", "hub.push.subscriptions", "hub.attachments",
        "hub.metrics", "hub.background", "hub.logs",
    )),
    ("store", ("hub.store",)),
    # the nodes together, and what reaches a socket or a device from them
    ("cluster", (
        "hub.cluster", "hub.ws.connection", "hub.ws.registry", "hub.ws.uvicorn_fast",
        "hub.push", "hub.limits",
    )),
    ("services", ("hub.services",)),
    ("edges", ("hub.http", "hub.ws", "hub.helpbot.routes")),
    ("processes", (
        "hub.composition", "hub.app", "hub.cli", "hub.cli_campaigns", "hub.runtime", "hub.embedded",
        "hub.datadir", "hub.doctor", "hub.preflight", "hub.simulate",
    )),
)  # fmt: skip

# `hub.ws` holds the wire (protocol, connection, registry: below and beside the cluster,
# which delivers through them) and the edge (endpoint, handlers: above the services, which
# they call). Its two halves make these sub-package cycles, and only these.
SPLIT_CYCLES = (
    "hub.cluster -> hub.ws -> hub.cluster",
    "hub.services -> hub.ws -> hub.services",
)

IO_LIBRARIES = (
    "asyncio", "socket", "subprocess", "urllib.request", "http.client", "asyncpg", "redis",
    "hiredis", "starlette", "uvicorn", "websockets", "httpx", "aioboto3", "botocore",
    "pywebpush", "limits", "prometheus_client",
)  # fmt: skip

# Modules outside hub/store/ that may issue SQL, each for its reason.
SQL_ALLOWED = (
    "hub.store",
    "payments.ledger",  # payments' store: accounts, transactions, postings
    "payments.outbox",  # the transactional outbox
    "payments.settlement",  # the settlement worker's queries over transactions
    "payments.seed",  # demo accounts and history
    "supporthub_core.db",  # the pool, migrations, ping
    "supporthub_core.audit",  # the audit insert hub and payments share
    "hub.embedded",  # psql creates the embedded server's database
)

SQL_CALLS = frozenset({
    "execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table",
    "copy_to_table", "copy_from_table", "copy_from_query",
})  # fmt: skip
# a string that starts as a statement does: `select` and a first column (not a word of a
# sentence), `insert into`, `update t set`, `delete from`, `with x as (`
SQL_TEXT = re.compile(
    r"^\s*\(?\s*(?:select\s+(?:distinct\s+)?(?:\*|\d+\b|\w+\(|[a-z_][\w.]*\*?\s*(?:,|\s+as\s|\s+from\s))"
    r"|insert\s+into\s|update\s+[a-z_]\w*\s+(?:\w+\s+)?set\s|delete\s+from\s|with\s+\w+\s+as\s*\()",
    re.IGNORECASE,
)


# --- reading the source --------------------------------------------------------------------


def project_sources(root: Path = ROOT) -> dict[str, str]:
    """{module name: source} of every module of the packages."""
    sources = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            sources[".".join(parts)] = path.read_text("utf-8")
    return sources


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, less the bodies of `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for other in node.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield node
        yield from _runtime_nodes(node)


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, name] if name else base)


def imports_of(module: str, source: str, known: Iterable[str]) -> set[str]:
    """The modules `module` imports when it runs: `from a import b` is `a.b` when that is
    a module of the project, `a` otherwise."""
    known = set(known)
    is_package = any(other.startswith(module + ".") for other in known)
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _absolute(module, is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    found.discard(module)
    return found


def import_graph(sources: Mapping[str, str]) -> dict[str, set[str]]:
    return {module: imports_of(module, source, sources) for module, source in sources.items()}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# --- the checks --------------------------------------------------------------------------


def layer_of(module: str) -> int | None:
    if module == "hub":  # hub/__init__.py
        return 0
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank)
    return None if best is None else best[1]


def layer_violations(graph: Mapping[str, set[str]]) -> list[str]:
    """Hub modules without a layer, and hub imports that go up a layer."""
    found = []
    for module in sorted(m for m in graph if _within(m, "hub")):
        rank = layer_of(module)
        if rank is None:
            found.append(f"{module}: in no layer (add it to LAYERS in tests/test_layers.py)")
            continue
        for target in sorted(t for t in graph[module] if _within(t, "hub")):
            target_rank = layer_of(target)
            if target_rank is not None and target_rank > rank:
                found.append(
                    f"{module} ({LAYERS[rank][0]}) imports {target}"
                    f" ({LAYERS[target_rank][0]}, a layer above)"
                )
    return found


def subpackage(module: str) -> str:
    """`hub.store.queue` -> `hub.store`; a module directly under hub is its own."""
    return ".".join(module.split(".")[:2])


def subpackage_cycles(graph: Mapping[str, set[str]]) -> list[str]:
    """Cycles in the graph of hub sub-packages (an edge: some module of one imports
    some module of the other), each as `a -> b -> a`."""
    edges: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if not _within(module, "hub"):
            continue
        for target in targets:
            if _within(target, "hub") and subpackage(target) != subpackage(module):
                edges.setdefault(subpackage(module), set()).add(subpackage(target))
    cycles = []
    for start in sorted(edges):
        path = _path(edges, start, start)
        if path is not None and min(path) == start:  # each cycle once, from its least node
            cycles.append(" -> ".join([start, *path]))
    return cycles


def _path(edges: Mapping[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A shortest path from `start` to `goal` (at least one step), or None."""
    frontier = [(start, [])]
    seen = set()
    while frontier:
        following = []
        for node, path in frontier:
            for nxt in sorted(edges.get(node, ())):
                if nxt == goal:
                    return [*path, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    following.append((nxt, [*path, nxt]))
        frontier = following
    return None


def module_cycles_across_subpackages(graph: Mapping[str, set[str]]) -> list[str]:
    """Groups of hub modules that import each other in a circle (directly or not) and lie
    in more than one sub-package."""
    hub = {m: {t for t in graph[m] if t in graph and _within(t, "hub")}
           for m in graph if _within(m, "hub")}  # fmt: skip
    return [
        " <-> ".join(group)
        for group in _strongly_connected(hub)
        if len({subpackage(m) for m in group}) > 1
    ]


def _strongly_connected(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The cycles' members (Tarjan's algorithm), each group sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(groups)


def forbidden_imports(
    graph: Mapping[str, set[str]], package: str, forbidden: tuple[str, ...]
) -> list[str]:
    """`module imports target` for each import of `package` from a `forbidden` package."""
    return [
        f"{module} imports {target}"
        for module in sorted(m for m in graph if _within(m, package))
        for target in sorted(graph[module])
        if any(_within(target, f) for f in forbidden)
    ]


def io_in_rules(graph: Mapping[str, set[str]]) -> list[str]:
    return forbidden_imports(graph, "hub.rules", IO_LIBRARIES)


def sql_outside_store(sources: Mapping[str, str]) -> list[str]:
    """Modules not in `SQL_ALLOWED` that call a database method with a statement, or hold
    a string that reads as SQL. (A Redis pipeline's `execute()` takes no argument.)"""
    found = []
    for module, source in sorted(sources.items()):
        if any(_within(module, allowed) for allowed in SQL_ALLOWED):
            continue
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
                and node.args
            ):
                found.append(f"{module}:{node.lineno}: .{node.func.attr}(...) issues SQL")
            else:
                text = _string(node)
                if text is not None and SQL_TEXT.search(text):
                    found.append(f"{module}:{node.lineno}: SQL text {text[:50]!r}")
    return found


def _string(node: ast.AST) -> str | None:
    """The text of a string literal; an f-string with `x` for each value put in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "x" for part in node.values
        )
    return None


def _report(found: list[str]) -> str:
    return "\n".join(found)


# --- the project as it is ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return project_sources()


@pytest.fixture(scope="module")
def graph(sources: dict[str, str]) -> dict[str, set[str]]:
    return import_graph(sources)


def test_hub_modules_import_only_their_layer_and_below(graph):
    found = layer_violations(graph)
    assert not found, _report(found)


def test_no_import_cycle_between_hub_subpackages(graph):
    found = [cycle for cycle in subpackage_cycles(graph) if cycle not in SPLIT_CYCLES]
    assert not found, _report(found)


def test_no_modules_import_each_other_across_subpackages(graph):
    found = module_cycles_across_subpackages(graph)
    assert not found, _report(found)


def test_the_rules_import_no_io_library(graph):
    found = io_in_rules(graph)
    assert not found, _report(found)


def test_payments_imports_nothing_from_hub(graph):
    found = forbidden_imports(graph, "payments", ("hub",))
    assert not found, _report(found)


def test_the_shared_core_imports_neither_hub_nor_payments(graph):
    found = forbidden_imports(graph, "supporthub_core", ("hub", "payments"))
    assert not found, _report(found)


def test_only_the_store_issues_sql(sources):
    found = sql_outside_store(sources)
    assert not found, _report(found)


def test_every_layer_prefix_names_real_modules(sources):
    """A renamed package must not leave a stale prefix behind that covers nothing."""
    stale = [
        prefix
        for _, prefixes in LAYERS
        for prefix in prefixes
        if not any(_within(module, prefix) for module in sources)
    ]
    assert not stale, f"prefixes in LAYERS that name no module: {stale}"


# --- each check catches an offender -------------------------------------------------------

BASE = {
    "hub": "",
    "hub.rules": "",
    "hub.rules.routing": "import math\n",
    "hub.store": "",
    "hub.store.queue": "from hub.rules import routing\n",
    "hub.services": "",
    "hub.services.chat": "from hub.store import queue\n",
    "hub.ws": "",
    "hub.ws.endpoint": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hub.composition import Hub\n"
    ),
    "hub.composition": "from hub.services import chat\n",
    "payments": "",
    "payments.ledger": "from supporthub_core import errors\n",
    "supporthub_core": "",
    "supporthub_core.errors": "",
}


def _with(**changes: str) -> dict[str, str]:
    return {**BASE, **{name.replace("__", "."): source for name, source in changes.items()}}


def test_the_synthetic_project_passes_every_check():
    sources = BASE
    graph = import_graph(sources)
    assert layer_violations(graph) == []
    assert subpackage_cycles(graph) == []
    assert module_cycles_across_subpackages(graph) == []
    assert io_in_rules(graph) == []
    assert forbidden_imports(graph, "payments", ("hub",)) == []
    assert sql_outside_store(sources) == []


@pytest.mark.parametrize(
    ("source", "offence"),
    [
        ("from hub.services import chat\n", "hub.store.queue (store) imports hub.services.chat"),
        ("import hub.composition\n", "hub.store.queue (store) imports hub.composition"),
        ("def later():\n    from hub.ws import endpoint\n", "imports hub.ws.endpoint"),
        ("from ..services import chat\n", "hub.store.queue (store) imports hub.services.chat"),
    ],
)
def test_an_import_up_a_layer_is_caught(source, offence):
    found = layer_violations(import_graph(_with(hub__store__queue=source)))
    assert any(offence in line for line in found), found


def test_a_module_in_no_layer_is_caught():
    found = layer_violations(import_graph(_with(hub__newthing="")))
    assert found == ["hub.newthing: in no layer (add it to LAYERS in tests/test_layers.py)"]


def test_a_type_checking_import_is_not_a_dependency():
    graph = import_graph(BASE)
    assert "hub.composition" not in graph["hub.ws.endpoint"]


def test_a_cycle_between_subpackages_is_caught():
    # both in one layer, so only the cycle check can see it
    sources = _with(hub__ws__endpoint="from hub.http import api\n", hub__http="",
                    hub__http__api="from hub.ws import endpoint\n")  # fmt: skip
    assert subpackage_cycles(import_graph(sources)) == ["hub.http -> hub.ws -> hub.http"]


def test_modules_importing_each_other_across_subpackages_are_caught():
    sources = _with(hub__rules__routing="def later():\n    from hub.store import queue\n")
    found = module_cycles_across_subpackages(import_graph(sources))
    assert found == ["hub.rules.routing <-> hub.store.queue"]


@pytest.mark.parametrize("library", ["asyncpg", "redis.asyncio", "starlette.requests", "httpx"])
def test_io_in_the_rules_is_caught(library):
    found = io_in_rules(import_graph(_with(hub__rules__routing=f"import {library}\n")))
    assert found == [f"hub.rules.routing imports {library}"]


def test_payments_importing_hub_is_caught():
    sources = _with(payments__ledger="def f():\n    from hub.store import queue\n")
    found = forbidden_imports(import_graph(sources), "payments", ("hub",))
    assert found == ["payments.ledger imports hub.store.queue"]


def test_the_core_importing_payments_is_caught():
    sources = _with(supporthub_core__errors="from payments import ledger\n")
    found = forbidden_imports(import_graph(sources), "supporthub_core", ("hub", "payments"))
    assert found == ["supporthub_core.errors imports payments.ledger"]


@pytest.mark.parametrize(
    "source",
    [
        "async def f(db):\n    await db.fetchrow(query, 1)\n",
        "async def f(conn):\n    await conn.execute(STATEMENT)\n",
        "async def f(conn):\n    await conn.copy_records_to_table('t', records=[])\n",
        "Q = 'select id from users where id = $1'\n",
        "Q = 'INSERT INTO audit_log (a) VALUES ($1)'\n",
        "Q = 'update conversations set status = $2'\n",
        "Q = 'delete from notes where id = $1'\n",
        "Q = f'select {COLUMNS} from messages m where m.seq > $1'\n",
        "Q = 'with c as (select * from conversations) select count(*) from c'\n",
    ],
)
def test_sql_outside_the_store_is_caught(source):
    found = sql_outside_store(_with(hub__services__chat=source))
    assert len(found) == 1 and found[0].startswith("hub.services.chat:"), found


@pytest.mark.parametrize(
    "source",
    [
        "async def f(pipe):\n    await pipe.execute()\n",  # a Redis pipeline
        "TEXT = 'Select the account you want to pay from'\n",  # words, no statement
        "TEXT = 'please update your app'\n",
    ],
)
def test_what_is_not_sql_passes(source):
    assert sql_outside_store(_with(hub__services__chat=source)) == []
