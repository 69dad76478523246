"""The composition root: builds every part from settings, runs them, closes them.

``build`` opens resources in order and, if a later step fails, closes what it opened in
reverse order. ``run_once`` polls every feed once and drains the outbox; ``serve`` runs the
scheduler and the chat until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import html
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot import pacing
from bot.config import Settings
from bot.delivery import Deliverer, DrainReport, Transport
from bot.errors import ConfigError, DeliveryError, RuleErrors
from bot.fetch import Fetcher
from bot.logs import Redactor
from bot.matcher import Matcher
from bot.model import Feed, FeedReport
from bot.outbox_view import outbox_summary
from bot.pipeline import FeedRunner, Policy
from bot.rulebook import Rulebook
from bot.rulefiles import check_rules, rules_signature
from bot.scheduler import Scheduler
from bot.store import ChannelConfig, Store
from bot.store.feeds import StoredFeed
from bot.telegram import commands, transport
from bot.views import feeds_table, status_text
from bot.workers import ParserPool

log = logging.getLogger(__name__)

# Console mode delivers to this pseudo-chat, which follows every topic.
CONSOLE_CHAT_ID = 0
# Rule files are reloaded once none was written for this long (an editor may be mid-save).
RULES_SETTLE = 1.0
_UNLIMITED = pacing.Limit(1_000_000, 1.0)


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_rules(settings: Settings) -> Rulebook:
    """The rules in ``rules.dir``, checked: RuleErrors for broken files, ConfigError when a
    configured channel names a topic the rules do not have. Warnings are logged."""
    rulebook, problems = check_rules(settings.rules_dir)
    if rulebook is None:
        raise RuleErrors([p for p in problems if not p.warning])
    for warning in (p for p in problems if p.warning):
        log.warning("rules: %s", warning)
    _check_channel_topics(settings, rulebook)
    return rulebook


class Rules:
    """The current rulebook and its compiled matcher, swapped together on reload.

    Loading (YAML, validation, compiling the matcher) runs in a thread: chat commands and
    feed cycles go on meanwhile with the old rules.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.signature = rules_signature(settings.rules_dir)
        self.rulebook = load_rules(settings)
        self.matcher = Matcher.compile(self.rulebook)
        self.loaded_at = utcnow()
        self.last_error: str | None = None

    def changed(self, now: float | None = None) -> bool:
        """Whether the rule files changed since the last load and have been quiet for
        ``RULES_SETTLE`` seconds: an editor still writing a file is not reported as broken."""
        current = rules_signature(self._settings.rules_dir)
        if current == self.signature:
            return False
        newest = max((mtime for _, _, mtime in current), default=0) / 1e9
        return (time.time() if now is None else now) - newest >= RULES_SETTLE

    async def reload(self) -> bool:
        """Load the rules dir; on success swap, on failure keep the old set and remember why."""
        self.signature = rules_signature(self._settings.rules_dir)
        try:
            rulebook, matcher = await asyncio.to_thread(self._load)
        except (RuleErrors, ConfigError) as e:
            self.last_error = str(e)
            return False
        self.rulebook, self.matcher = rulebook, matcher
        self.loaded_at, self.last_error = utcnow(), None
        return True

    def _load(self) -> tuple[Rulebook, Matcher]:
        rulebook = load_rules(self._settings)
        return rulebook, Matcher.compile(rulebook)


@dataclass
class App:
    settings: Settings
    store: Store
    rules: Rules
    runner: FeedRunner
    fetcher: Fetcher
    parsers: ParserPool
    deliverer: Deliverer
    transport: Transport
    application: Any | None
    clock: Callable[[], datetime]
    stack: AsyncExitStack
    started: datetime = field(default_factory=utcnow)
    scheduler: Scheduler | None = None

    @property
    def feeds(self) -> tuple[Feed, ...]:
        return self.rules.rulebook.feeds

    async def start(self) -> None:
        """Start what the first poll would otherwise wait for (the parser processes, the HTTP
        client's async backend), then set aside everything start-up made from the garbage
        collector's full passes.

        A full (generation 2) collection scans every tracked object: right after start-up
        that is ~100,000 of them (modules, rules, the matcher, library caches) and the pass
        stalled the event loop for 60 ms in the middle of the first poll. Frozen, they are
        never scanned again; they live as long as the service anyway.
        """
        await self.parsers.start()
        await self.fetcher.start()
        gc.collect()
        gc.freeze()

    async def close(self) -> None:
        await self.stack.aclose()

    # -- one-shot ---------------------------------------------------------------------------

    async def poll_all(self) -> list[FeedReport]:
        """Every feed once, concurrently (the fetcher bounds concurrency). Their stored states
        are read in one query, as each cycle would have read its own at the start."""
        stored = await self.store.feeds.load_all()
        reports = await asyncio.gather(
            *(self._poll(feed, stored.get(feed.url)) for feed in self.feeds)
        )
        return list(reports)

    async def _poll(self, feed: Feed, stored: StoredFeed | None = None) -> FeedReport:
        try:
            return await self.runner.run(feed, stored)
        except Exception as e:  # a bug must not stop the other feeds
            log.exception("feed cycle of %s crashed", feed.name)
            return FeedReport(feed.url, "error", error=f"internal error: {e!r}")

    async def run_once(self, deadline: timedelta, stop: asyncio.Event) -> DrainReport:
        await self.start()
        async with self._telegram_bot():
            polls = asyncio.ensure_future(self.poll_all())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({polls, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not polls.done():
                # SIGTERM while polling: a feed cycle cancelled mid-way ends whole (its transaction
                # commits or rolls back as one; see Database.run).
                polls.cancel()
                await asyncio.gather(polls, return_exceptions=True)
                return DrainReport()
            _log_poll(polls.result())
            loop = asyncio.get_running_loop()
            timer = loop.call_later(max(0.0, deadline.total_seconds()), stop.set)
            try:
                result = await self.deliverer.drain(stop=stop, wait_until=self.clock() + deadline)
            finally:
                timer.cancel()
        log.info(
            "delivery: %d sent, %d dead, %d still pending",
            result.sent,
            result.dead,
            result.pending,
        )
        return result

    # -- service ----------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        deliver_stop = asyncio.Event()

        async def deliver() -> None:
            report = await self.deliverer.drain(stop=deliver_stop)
            if report.sent or report.dead:
                log.info("sent %d alerts, %d dead", report.sent, report.dead)

        self.scheduler = Scheduler(
            run_feed=self._poll,
            deliver=deliver,
            watch_rules=self.watch_rules,
            clock=self.clock,
            retry_interval=self.settings.polling.interval,
        )
        if self.application is not None:
            await transport.start_polling(self.application)
            await commands.set_menus(
                self.application, admins=self.settings.telegram.admins, prefs=self.store.prefs
            )
        try:
            await self.start()
            self.scheduler.start(self.feeds, await self.store.feeds.next_fetches())
            log.info(
                "newsbot is running: %d feeds, %d topics",
                len(self.feeds),
                len(self.rules.rulebook.topics),
            )
            await stop.wait()
            log.info("stopping: finishing in-flight work")
        finally:
            deliver_stop.set()
            await self.scheduler.shutdown()
            await self.deliverer.idle()
            if self.application is not None:
                await transport.stop_polling(self.application)

    async def watch_rules(self) -> None:
        """The periodic look outside: rule files changed, disabled feeds enabled again."""
        if self.rules.changed():
            await self.reload_rules()
        await self.revive_feeds()

    async def revive_feeds(self) -> list[str]:
        """Schedule the disabled feeds an operator has enabled again (``newsbot feeds
        --enable``, another process): one query, and only while some feed is disabled."""
        if self.scheduler is None or not self.scheduler.idle_feeds():
            return []
        return self.scheduler.revive(await self.store.feeds.next_fetches())

    async def reload_rules(self) -> str:
        if not await self.rules.reload():
            message = f"rules not reloaded, the old ones stay:\n{self.rules.last_error}"
            log.error("%s", message)
            await self.notify_admins(message)
            return message
        await self.store.feeds.sync(self.feeds)
        await self._sync_channels()
        if self.scheduler is not None:
            self.scheduler.set_feeds(self.feeds, await self.store.feeds.next_fetches())
        message = (
            f"rules reloaded: {len(self.rules.rulebook.topics)} topics, {len(self.feeds)} feeds"
        )
        log.info("%s", message)
        return message

    async def notify_admins(self, text: str) -> None:
        if self.application is None:
            return
        for admin in sorted(self.settings.telegram.admins):
            try:
                await self.transport.send(admin, _escape(text))
            except DeliveryError as e:
                log.warning("could not notify admin %s: %s", admin, e)

    async def status(self) -> str:
        now = self.clock()
        text = status_text(
            now=now,
            started=self.started,
            health=await self.store.feeds.health(),
            outbox=await self.store.outbox.counts(),
            rules_loaded=self.rules.loaded_at,
            rules_error=self.rules.last_error,
        )
        return f"{text}\n{outbox_summary(await self.store.outbox.report(now))}"

    async def feeds_report(self) -> str:
        return feeds_table(await self.store.feeds.health(), now=self.clock())

    async def _sync_channels(self) -> None:
        """Configured channels follow the config. In console mode the console is the only
        recipient: nothing is marked sent to a Telegram chat that never saw it."""
        if self.application is None:
            await self.store.chats.sync_channels([ChannelConfig(CONSOLE_CHAT_ID, ("*",))])
            return
        await self.store.chats.sync_channels(
            [
                ChannelConfig(c.chat_id, c.topics, c.thread_id)
                for c in self.settings.telegram.channels
            ]
        )
        await self.store.chats.deactivate(CONSOLE_CHAT_ID, "console mode ended: a token is set")

    def _telegram_bot(self) -> Any:
        return _BotSession(self.application)


class _BotSession:
    """Initialises PTB's Bot for a one-shot run (no polling), and shuts it down after."""

    def __init__(self, application: Any | None) -> None:
        self._application = application

    async def __aenter__(self) -> None:
        if self._application is not None:
            await transport.open_application(self._application)

    async def __aexit__(self, *exc: object) -> None:
        if self._application is not None:
            await transport.close_application(self._application)


async def build(
    settings: Settings,
    *,
    http_transport: Any | None = None,
    clock: Callable[[], datetime] = utcnow,
    parse_executor: concurrent.futures.Executor | None = None,
    console: TextIO | None = None,
) -> App:
    """Wire every part from ``settings``. Raises RuleErrors, ConfigError."""
    rules = Rules(settings)
    stack = AsyncExitStack()
    try:
        return await _build(settings, rules, stack, http_transport, clock, parse_executor, console)
    except BaseException:
        await stack.aclose()
        raise


async def _build(
    settings: Settings,
    rules: Rules,
    stack: AsyncExitStack,
    http_transport: Any | None,
    clock: Callable[[], datetime],
    parse_executor: concurrent.futures.Executor | None,
    console: TextIO | None,
) -> App:
    store = await Store.open(settings.storage_url, story_window=settings.story_window)
    stack.push_async_callback(store.close)
    await store.feeds.sync(rules.rulebook.feeds)
    polling = settings.polling
    fetcher = Fetcher(
        timeout=polling.timeout.total_seconds(),
        max_bytes=polling.max_bytes,
        user_agent=polling.user_agent,
        concurrency=polling.concurrency,
        transport=http_transport,
    )
    stack.push_async_callback(fetcher.aclose)
    parsers = ParserPool(executor=parse_executor)
    stack.callback(parsers.close)
    application, sender, pacer = _telegram(settings, stack, console)
    # The runner exists before the App whose admins it tells about disabled feeds.
    notify: list[Callable[[str], Awaitable[None]]] = []

    async def on_disabled(feed: Feed, reason: str) -> None:
        for send in notify:
            await send(f"feed {feed.name} disabled: {reason}")

    runner = FeedRunner(
        on_disabled=on_disabled,
        fetcher=fetcher,
        parse=parsers.parse,
        store=store,
        matcher=lambda: rules.matcher,
        policy=Policy(polling.interval, polling.backfill, polling.max_age),
        clock=clock,
        jitter=lambda: random.uniform(-1.0, 1.0),  # noqa: S311 - spreading load, not security
    )
    deliverer = Deliverer(
        store,
        sender,
        clock=clock,
        tz=ZoneInfo(settings.timezone),
        pacer=pacer,
        only_chat=CONSOLE_CHAT_ID if application is None else None,
        redact=Redactor([settings.telegram.token]),
    )
    app = App(
        settings=settings,
        store=store,
        rules=rules,
        runner=runner,
        fetcher=fetcher,
        parsers=parsers,
        deliverer=deliverer,
        transport=sender,
        application=application,
        clock=clock,
        stack=stack,
    )
    notify.append(app.notify_admins)
    await app._sync_channels()
    if application is not None:
        commands.register(
            application,
            commands.CommandDeps(
                store=store.chats,
                rulebook=lambda: rules.rulebook,
                admins=settings.telegram.admins,
                status=app.status,
                reload=app.reload_rules,
                feeds=app.feeds_report,
                prefs=store.prefs,
                access=settings.telegram.access,
                allowed_users=settings.telegram.allowed_users,
                allowed_chats=settings.telegram.allowed_chats,
                timezone=settings.timezone,
                clock=clock,
            ),
        )
    return app


def _telegram(
    settings: Settings, stack: AsyncExitStack, console: TextIO | None
) -> tuple[Any | None, Transport, pacing.Pacer]:
    token = settings.telegram.token
    if not token:
        log.warning(
            "no Telegram token (TELEGRAM_BOT_TOKEN or telegram.token): "
            "alerts are printed to the console instead of sent"
        )
        pacer = pacing.Pacer(overall=_UNLIMITED, private=_UNLIMITED, group=_UNLIMITED)
        return None, transport.ConsoleTransport(console or sys.stdout), pacer
    application = transport.build_application(token, settings.telegram.api_url)
    return application, transport.TelegramTransport(application.bot), pacing.Pacer()


def _check_channel_topics(settings: Settings, rulebook: Rulebook) -> None:
    """A channel naming a topic that does not exist would silently get nothing."""
    known = set(rulebook.topic_ids)
    for channel in settings.telegram.channels:
        unknown = sorted(set(channel.topics) - known - {"*"})
        if unknown:
            raise ConfigError(
                f"channel {channel.chat_id} names unknown topics {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}",
                key="telegram.channels.topics",
                file=settings.source,
            )


def _log_poll(reports: list[FeedReport]) -> None:
    failed = [r for r in reports if r.status == "error"]
    log.info(
        "polled %d feeds: %d new entries, %d matched, %d alerts queued, %d failed",
        len(reports),
        sum(r.new_entries for r in reports),
        sum(r.hits for r in reports),
        sum(r.queued for r in reports),
        len(failed),
    )


def _escape(text: str) -> str:
    return html.escape(text, quote=False)
