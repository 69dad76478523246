"""The command line; thin: parse arguments, load settings, call the app.

Exit codes: 0 success; 1 invalid rules (``rules check``, or rules that stop start-up);
2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from bot import __version__
from bot.app import build
from bot.config import Settings, config_path, load_settings
from bot.errors import ConfigError, NewsbotError, RuleError
from bot.logs import setup_logging
from bot.matcher import Matcher
from bot.model import Entry, Feed
from bot.rulebook import Rulebook
from bot.rulefiles import check_rules
from bot.store import Store
from bot.units import parse_duration
from bot.views import feeds_table

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsbot", description="Watch news feeds and push matching stories to Telegram."
    )
    parser.add_argument("--version", action="version", version=f"newsbot {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML config (default: newsbot.toml)")
    parser.add_argument(
        "--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR (env NEWSBOT_LOG_LEVEL)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="poll feeds, answer chat commands, send alerts")
    run.add_argument("--once", action="store_true", help="poll every feed once, send, exit")
    run.add_argument(
        "--deadline",
        default="5m",
        metavar="DURATION",
        help="with --once: stop retrying sends after this long (default 5m)",
    )
    rules = sub.add_parser("rules", help="check or try the rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rules_sub.add_parser("check", help="validate rules/: FILE:LINE: message per problem")
    test = rules_sub.add_parser("test", help="show which topics match a text")
    test.add_argument("text", help="a headline or any text")
    sub.add_parser("feeds", help="each feed's health")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    level = (args.log_level or env.get("NEWSBOT_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        print(f"newsbot: unknown log level {level!r}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        settings = load_settings(config_path(args.config, env), env)
    except ConfigError as e:
        setup_logging(level)
        log.error("configuration error: %s", e)
        return 2
    setup_logging(level, secrets=[settings.telegram.token])
    try:
        if args.command == "run":
            deadline = timedelta(seconds=parse_duration(args.deadline))
            return asyncio.run(_run(settings, once=args.once, deadline=deadline))
        if args.command == "rules":
            return _rules(settings, args)
        return asyncio.run(_feeds(settings))
    except RuleError as e:
        log.error("invalid rules, not starting:\n%s", e)
        return 1
    except (ConfigError, ValueError) as e:
        log.error("configuration error: %s", e)
        return 2
    except NewsbotError as e:
        log.error("%s", e)
        return 2


async def _run(settings: Settings, *, once: bool, deadline: timedelta) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = await build(settings)
    try:
        if once:
            await app.run_once(deadline, stop)
        else:
            await app.serve(stop)
    finally:
        await app.close()
    return 0


def _rules(settings: Settings, args: argparse.Namespace) -> int:
    rulebook, problems = check_rules(settings.rules_dir)
    for problem in problems:
        print(f"{problem}{' (warning)' if problem.warning else ''}")  # noqa: T201
    if rulebook is None:
        return 1
    if args.rules_command == "check":
        counts = f"{len(rulebook.topics)} topics, {len(rulebook.feeds)} feeds"
        print(f"ok: {counts} in {settings.rules_dir}")  # noqa: T201
        return 0
    return _rules_test(rulebook, args.text)


def _rules_test(rulebook: Rulebook, text: str) -> int:
    """Which topics match ``text`` as a headline, trying every feed so scoped topics count."""
    matcher = Matcher.compile(rulebook)
    entry = Entry(id=None, link="", title=text)
    feeds = rulebook.feeds or (Feed(url="", name=""),)
    hits = {hit.topic_id: hit for feed in feeds for hit in matcher.match(entry, feed)}
    if not hits:
        print("no topic matches")  # noqa: T201
    for topic_id, hit in sorted(hits.items()):
        print(f"{topic_id}: {', '.join(hit.keywords)}")  # noqa: T201
    return 0


async def _feeds(settings: Settings) -> int:
    store = await Store.open(settings.storage_url, story_window=settings.story_window)
    try:
        print(feeds_table(await store.feeds.health(), now=datetime.now(UTC)))  # noqa: T201
    finally:
        await store.close()
    return 0
