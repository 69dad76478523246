"""DESIGN's import layers, checked with an AST walk over bot/.

A module imports only from its own layer or lower ones; pure modules import no I/O library;
each foreign library has one owner module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"

LAYERS = {
    "ground": {"bot", "bot.errors", "bot.model"},
    "pure": {
        "bot.text",
        "bot.units",
        "bot.sources",
        "bot.rulebook",
        "bot.matcher",
        "bot.dedup",
        "bot.decide",
        "bot.explain",
        "bot.ruleschema",
        "bot.pacing",
        "bot.views",
        "bot.outbox_view",
        "bot.telegram.render",
        "bot.telegram.i18n",
        "bot.telegram.options",
    },
    "edge": {
        "bot.fetch",
        "bot.parse",
        "bot.rulefiles",
        "bot.store",
        "bot.store.schema",
        "bot.store.engine",
        "bot.store.feeds",
        "bot.store.chats",
        "bot.store.outbox",
        "bot.store.digests",
        "bot.store.stories",
        "bot.store.replay",
        "bot.store.prefs",
        "bot.telegram.chat",
        "bot.telegram.tuning",
        "bot.telegram",
        "bot.telegram.transport",
        "bot.telegram.commands",
        "bot.workers",
    },
    "orchestration": {"bot.pipeline", "bot.delivery", "bot.scheduler", "bot.replay"},
    "wiring": {"bot.config", "bot.logs", "bot.app", "bot.cli", "bot.__main__"},
}
ORDER = list(LAYERS)
LAYER_OF = {module: layer for layer, modules in LAYERS.items() for module in modules}

IO_LIBRARIES = {
    "asyncio",
    "httpx",
    "telegram",
    "sqlalchemy",
    "apscheduler",
    "feedparser",
    "aiosqlite",
    "socket",
    "subprocess",
}
OWNERS = {
    "httpx": {"bot.fetch"},
    "feedparser": {"bot.parse"},
    "sqlalchemy": {m for m in LAYERS["edge"] if m.startswith("bot.store")},
    "telegram": {
        "bot.telegram.transport",
        "bot.telegram.commands",
        "bot.telegram.chat",
        "bot.telegram.tuning",
        "bot.telegram",
    },
    "apscheduler": {"bot.scheduler"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(BOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports, type-checking-only imports included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    )
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = sorted(BOT.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unknown = {module_name(p) for p in MODULES} - set(LAYER_OF)
    assert not unknown, f"add these modules to a layer in DESIGN and here: {sorted(unknown)}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_respect_layers(path: Path) -> None:
    me = module_name(path)
    my_rank = ORDER.index(LAYER_OF[me])
    for name in imports(path):
        if name in LAYER_OF and name != "bot":
            assert ORDER.index(LAYER_OF[name]) <= my_rank, f"{me} ({LAYER_OF[me]}) imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_pure_modules_do_no_io(path: Path) -> None:
    me = module_name(path)
    if LAYER_OF[me] not in ("ground", "pure"):
        pytest.skip("not a pure module")
    used = {name.split(".")[0] for name in imports(path)} & IO_LIBRARIES
    assert not used, f"pure module {me} imports {sorted(used)}"


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_each_foreign_library_has_one_owner(library: str) -> None:
    users = {module_name(p) for p in MODULES if any(n.split(".")[0] == library for n in imports(p))}
    assert users <= OWNERS[library], (
        f"{library} used outside its owner: {sorted(users - OWNERS[library])}"
    )
