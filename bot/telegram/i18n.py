"""Every word the bot says in chat, in English, Simplified and Traditional Chinese. Pure.

Languages are ``en``, ``zh-hans`` and ``zh-hant``. ``pick_language`` maps Telegram's
``language_code`` (an IETF tag chosen by the user's app) to one of them: a ``Hant`` script or
a Hong Kong, Taiwan or Macau region means Traditional (``zh-hk``, ``zh-tw``, ``zh-mo``,
``zh-hant``), any other Chinese tag Simplified (``zh``, ``zh-cn``, ``zh-sg``, ``zh-hans``),
anything else English.

``t(lang, key, **values)`` fills a template with ``str.format``. Templates are Telegram HTML;
values are inserted as given, so callers pass values already escaped (``html.escape``) for
HTML replies. Keys marked ``PLAIN`` contain no markup and no entities: they are also used as
plain text (button-press answers), with raw values.

Command menus: Telegram picks a menu by a two-letter ISO 639-1 ``language_code``, so one
``zh`` menu serves both scripts. It is written in Traditional characters: Telegram is not
reachable from mainland China, so its Chinese-reading users are mostly in Hong Kong, Macau
and Taiwan. A chat that chooses a language with ``/language`` gets a menu of its own in that
language (a chat-scoped menu), which Telegram prefers to the ``zh`` one.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.model import Topic

EN, HANS, HANT = "en", "zh-hans", "zh-hant"
LANGUAGES = (EN, HANS, HANT)
NAMES = {EN: "English", HANS: "简体中文", HANT: "繁體中文"}
# Telegram menu language_code -> the language its menu is written in; "" is the default menu.
MENU_LANGUAGES = (("", EN), ("zh", HANT))

_INDEX = {lang: i for i, lang in enumerate(LANGUAGES)}
_TRADITIONAL_REGIONS = frozenset({"hk", "tw", "mo"})
_ALIASES = {
    EN: ("en", "english", "eng", "英文", "英語", "英语"),
    HANS: ("zh-hans", "hans", "zh-cn", "cn", "sc", "simplified", "简体", "简体中文", "簡體"),
    HANT: ("zh-hant", "hant", "zh-tw", "zh-hk", "tc", "traditional", "繁體", "繁体", "繁體中文"),
}
_ALIAS = {alias: lang for lang, aliases in _ALIASES.items() for alias in aliases}
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def pick_language(code: str | None) -> str:
    """Our language for a Telegram ``language_code`` (or a stored language); see above."""
    parts = re.split(r"[-_]", (code or "").strip().casefold())
    if parts[0] != "zh":
        return EN
    if "hans" in parts:
        return HANS
    if "hant" in parts or _TRADITIONAL_REGIONS & set(parts):
        return HANT
    return HANS


def parse_language(word: str) -> str | None:
    """The language a user named in ``/language WORD``; None when we do not speak it."""
    key = word.strip().casefold().replace("_", "-")
    if key in _ALIAS:
        return _ALIAS[key]
    if re.fullmatch(r"zh(-[a-z0-9]+)*", key):
        return pick_language(key)
    return None


def t(lang: str, key: str, /, **values: object) -> str:
    """The message ``key`` in ``lang`` with ``values`` filled in (see the module docstring).

    With ``count=1`` a ``KEY#one`` variant is used where one exists (English plurals).
    """
    one = f"{key}#one"
    entry = CATALOG[one] if values.get("count") == 1 and one in CATALOG else CATALOG[key]
    return entry[_INDEX.get(lang, 0)].format(**values)


def menu(lang: str, *, operator: bool = False) -> tuple[tuple[str, str], ...]:
    """(command, description) pairs for setMyCommands and /help, in ``lang``."""
    names = COMMANDS + (OPERATOR_COMMANDS if operator else ())
    return tuple((name, t(lang, f"menu.{name}")) for name in names)


def when(local: datetime, lang: str) -> str:
    """A short date and time, ``28 Nov 18:00`` or ``11月28日 18:00``, as given (local)."""
    if lang == EN:
        return f"{local.day} {_MONTHS[local.month - 1]} {local:%H:%M}"
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def topic_title(topic: Topic, lang: str) -> str:
    """A topic's title in ``lang`` as the rule file gives it (``title: {en: ..., zh-hans:
    ..., zh-hant: ...}``); else in the other Chinese script for a Chinese reader; else the
    default title."""
    return _translated(topic.titles, lang) or topic.title


def topic_description(topic: Topic, lang: str) -> str:
    """As ``topic_title``, for the one-line description."""
    return _translated(topic.descriptions, lang) or topic.description


def _translated(texts: tuple[tuple[str, str], ...], lang: str) -> str | None:
    given = dict(texts)
    other = {HANS: HANT, HANT: HANS}.get(lang)
    return given.get(lang) or (given.get(other) if other else None)


COMMANDS = (
    "start",
    "topics",
    "subscribe",
    "unsubscribe",
    "recent",
    "mute",
    "unmute",
    "digest",
    "timezone",
    "language",
    "stop",
    "help",
)
OPERATOR_COMMANDS = ("status", "feeds", "reload")

# Messages used as plain text (button answers) as well as HTML: no markup, no entities.
PLAIN = frozenset(
    {
        "group.admins_only",
        "button.following",
        "button.unfollowed",
        "button.gone",
        "button.stale",
        "flood.slow",
        "access.refused",
        "access.refused_chat",
        "language.set",
        "digest.saved",
        "mute.saved",
        "alert.also",
        "alert.more",
        "alert.untitled",
    }
)

# key: (English, Simplified Chinese, Traditional Chinese)
CATALOG: dict[str, tuple[str, str, str]] = {
    "menu.start": (
        "Welcome and the list of topics",
        "欢迎，并列出所有主题",
        "歡迎，並列出所有主題",
    ),
    "menu.topics": (
        "Topics and what this chat follows",
        "主题列表及本聊天关注的主题",
        "主題列表及本聊天關注的主題",
    ),
    "menu.subscribe": (
        "Follow topics: /subscribe ID …",
        "关注主题：/subscribe ID …",
        "關注主題：/subscribe ID …",
    ),
    "menu.unsubscribe": (
        "Stop following topics: /unsubscribe ID …",
        "取消关注主题：/unsubscribe ID …",
        "取消關注主題：/unsubscribe ID …",
    ),
    "menu.recent": (
        "The latest stories: /recent [n]",
        "最新新闻：/recent [n]",
        "最新新聞：/recent [n]",
    ),
    "menu.mute": (
        "Hold alerts for a while: /mute 2h",
        "暂停提醒一段时间：/mute 2h",
        "暫停提醒一段時間：/mute 2h",
    ),
    "menu.unmute": (
        "End the mute; held alerts come as one digest",
        "结束静音；暂存的提醒合成一条摘要发送",
        "結束靜音；暫存的提醒合成一則摘要發送",
    ),
    "menu.digest": (
        "Batch alerts: /digest off | hourly | daily HH:MM",
        "合并提醒：/digest off | hourly | daily HH:MM",
        "合併提醒：/digest off | hourly | daily HH:MM",
    ),
    "menu.timezone": (
        "Time zone for times and digests: /timezone Area/City",
        "时间和摘要所用的时区：/timezone 地区/城市",
        "時間和摘要所用的時區：/timezone 地區/城市",
    ),
    "menu.language": (
        "Language: English, 简体中文, 繁體中文",
        "语言：English、简体中文、繁體中文",
        "語言：English、简体中文、繁體中文",
    ),
    "menu.stop": ("Stop all alerts in this chat", "停止本聊天的所有提醒", "停止本聊天的所有提醒"),
    "menu.help": ("How to use this bot", "使用说明", "使用說明"),
    "menu.status": (
        "Operators: uptime, feeds, queue",
        "管理员：运行时间、新闻源、队列",
        "管理員：運行時間、新聞源、佇列",
    ),
    "menu.feeds": ("Operators: feed health", "管理员：新闻源状况", "管理員：新聞源狀況"),
    "menu.reload": ("Operators: reload the rules", "管理员：重新载入规则", "管理員：重新載入規則"),
    "start.welcome": (
        "<b>Welcome!</b> I send alerts about news on the topics below.",
        "<b>欢迎！</b>我会推送以下主题的新闻提醒。",
        "<b>歡迎！</b>我會推送以下主題的新聞提醒。",
    ),
    "start.follows": (
        "This chat now follows {names}.",
        "本聊天现已关注 {names}。",
        "本聊天現已關注 {names}。",
    ),
    "start.hint": (
        "Tap a topic to follow or unfollow it; /help lists the commands.",
        "点按主题即可关注或取消关注；/help 列出所有命令。",
        "點按主題即可關注或取消關注；/help 列出所有指令。",
    ),
    "topics.header": (
        "<b>Topics</b> (tap to follow or unfollow)",
        "<b>主题</b>（点按即可关注或取消关注）",
        "<b>主題</b>（點按即可關注或取消關注）",
    ),
    "topics.none": ("No topics are configured yet.", "尚未设置任何主题。", "尚未設定任何主題。"),
    "topics.more": (
        "… and {n} more: /subscribe ID",
        "……还有 {n} 个：/subscribe ID",
        "……還有 {n} 個：/subscribe ID",
    ),
    "topics.valid": ("Topics: {ids}.", "主题：{ids}。", "主題：{ids}。"),
    "subscribe.usage": (
        "Usage: /subscribe ID …\n{valid}",
        "用法：/subscribe ID …\n{valid}",
        "用法：/subscribe ID …\n{valid}",
    ),
    "unsubscribe.usage": (
        "Usage: /unsubscribe ID …\n{valid}",
        "用法：/unsubscribe ID …\n{valid}",
        "用法：/unsubscribe ID …\n{valid}",
    ),
    "topic.unknown": (
        "Unknown topic: {names}.\n{valid}",
        "未知主题：{names}。\n{valid}",
        "未知主題：{names}。\n{valid}",
    ),
    "follow.now": ("Now following {names}.", "已关注 {names}。", "已關注 {names}。"),
    "follow.already": ("Already following {names}.", "早已关注 {names}。", "早已關注 {names}。"),
    "unfollow.now": ("Stopped following {names}.", "已取消关注 {names}。", "已取消關注 {names}。"),
    "unfollow.not": ("Was not following {names}.", "并未关注 {names}。", "並未關注 {names}。"),
    "stop.done": (
        "Stopped: {count} subscriptions removed, no more alerts here. /start brings them back.",
        "已停止：移除了 {count} 个订阅，此处不再推送提醒。/start 可重新开始。",
        "已停止：移除了 {count} 個訂閱，此處不再推送提醒。/start 可重新開始。",
    ),
    "stop.done#one": (
        "Stopped: 1 subscription removed, no more alerts here. /start brings it back.",
        "已停止：移除了 1 个订阅，此处不再推送提醒。/start 可重新开始。",
        "已停止：移除了 1 個訂閱，此處不再推送提醒。/start 可重新開始。",
    ),
    "group.admins_only": (
        "Only this group's administrators can change its subscriptions and settings.",
        "只有本群组的管理员可以更改订阅和设置。",
        "只有本群組的管理員可以更改訂閱和設定。",
    ),
    "operator.only": (
        "Sorry, /{name} is only for this bot's operators.",
        "抱歉，/{name} 仅限本机器人的管理员使用。",
        "抱歉，/{name} 僅限本機器人的管理員使用。",
    ),
    "unavailable": (
        "/{name} is not available in this setup.",
        "此部署未提供 /{name}。",
        "此部署未提供 /{name}。",
    ),
    "unknown.command": (
        "I don't know {command}. /help lists what I can do.",
        "我不认识 {command}。/help 列出我能做的事。",
        "我不認識 {command}。/help 列出我能做的事。",
    ),
    "private.hint": (
        "I answer commands: /help lists them.",
        "我只回应命令：/help 列出所有命令。",
        "我只回應指令：/help 列出所有指令。",
    ),
    "error": (
        "Sorry, something went wrong. Please try again.",
        "抱歉，出了点问题，请再试一次。",
        "抱歉，出了點問題，請再試一次。",
    ),
    "button.following": ("Following {title}", "已关注 {title}", "已關注 {title}"),
    "button.unfollowed": ("Stopped following {title}", "已取消关注 {title}", "已取消關注 {title}"),
    "button.gone": ("That topic no longer exists.", "该主题已不存在。", "該主題已不存在。"),
    "button.stale": (
        "This button is out of date; send the command again.",
        "此按钮已过期，请重新发送命令。",
        "此按鈕已過期，請重新發送指令。",
    ),
    "help.header": ("<b>Commands</b>", "<b>命令</b>", "<b>指令</b>"),
    "help.operators": ("<b>Operators</b>", "<b>管理员</b>", "<b>管理員</b>"),
    "help.groups": (
        "In groups, only the group's administrators change its subscriptions and settings.",
        "在群组中，只有群组管理员可以更改订阅和设置。",
        "在群組中，只有群組管理員可以更改訂閱和設定。",
    ),
    "recent.header": (
        "<b>Latest stories</b> on this chat's topics",
        "<b>最新新闻</b>（本聊天关注的主题）",
        "<b>最新新聞</b>（本聊天關注的主題）",
    ),
    "recent.none": (
        "No stories yet on this chat's topics.",
        "本聊天关注的主题暂时没有新闻。",
        "本聊天關注的主題暫時沒有新聞。",
    ),
    "recent.no_topics": (
        "This chat follows no topics yet: /topics",
        "本聊天尚未关注任何主题：/topics",
        "本聊天尚未關注任何主題：/topics",
    ),
    "recent.usage": (
        "Usage: /recent [n], n from 1 to {max}.",
        "用法：/recent [n]，n 为 1 至 {max}。",
        "用法：/recent [n]，n 為 1 至 {max}。",
    ),
    "timezone.current": (
        "This chat's time zone is <b>{tz}</b> (now {now}). "
        "Change it with /timezone Area/City, e.g. /timezone Europe/London.",
        "本聊天的时区是 <b>{tz}</b>（现在 {now}）。"
        "用 /timezone 地区/城市 更改，例如 /timezone Asia/Shanghai。",
        "本聊天的時區是 <b>{tz}</b>（現在 {now}）。"
        "用 /timezone 地區/城市 更改，例如 /timezone Asia/Taipei。",
    ),
    "timezone.set": (
        "Time zone set to <b>{tz}</b> (now {now}).",
        "时区已设为 <b>{tz}</b>（现在 {now}）。",
        "時區已設為 <b>{tz}</b>（現在 {now}）。",
    ),
    "timezone.unknown": (
        "Unknown time zone <code>{name}</code>. Use an Area/City name such as "
        "Asia/Hong_Kong, Asia/Shanghai, Europe/London or America/New_York.",
        "未知时区 <code>{name}</code>。请用 地区/城市 名称，"
        "例如 Asia/Hong_Kong、Asia/Shanghai、Europe/London。",
        "未知時區 <code>{name}</code>。請用 地區/城市 名稱，"
        "例如 Asia/Hong_Kong、Asia/Taipei、Europe/London。",
    ),
    "mute.usage": (
        "Usage: /mute DURATION, e.g. /mute 30m, /mute 2h or /mute 1d. /unmute ends it.",
        "用法：/mute 时长，例如 /mute 30m、/mute 2h 或 /mute 1d。/unmute 结束静音。",
        "用法：/mute 時長，例如 /mute 30m、/mute 2h 或 /mute 1d。/unmute 結束靜音。",
    ),
    "mute.too_short": (
        "A mute lasts at least one minute, e.g. /mute 30m.",
        "静音至少一分钟，例如 /mute 30m。",
        "靜音至少一分鐘，例如 /mute 30m。",
    ),
    "mute.too_long": (
        "A mute lasts at most {days} days; /stop ends alerts for good.",
        "静音最长 {days} 天；/stop 可完全停止提醒。",
        "靜音最長 {days} 天；/stop 可完全停止提醒。",
    ),
    "mute.set": (
        "Muted until <b>{until}</b> ({tz}). Alerts are held, not lost: they arrive as one "
        "digest when the mute ends. /unmute ends it now.",
        "静音至 <b>{until}</b>（{tz}）。提醒会暂存而不会丢失：静音结束时合成一条摘要发送。"
        "/unmute 立即结束静音。",
        "靜音至 <b>{until}</b>（{tz}）。提醒會暫存而不會遺失：靜音結束時合成一則摘要發送。"
        "/unmute 立即結束靜音。",
    ),
    "mute.saved": ("Muted until {until}", "静音至 {until}", "靜音至 {until}"),
    "unmute.done": (
        "Unmuted: held alerts arrive now as one digest.",
        "已取消静音：暂存的提醒将合成一条摘要发送。",
        "已取消靜音：暫存的提醒將合成一則摘要發送。",
    ),
    "unmute.none": ("This chat is not muted.", "本聊天没有静音。", "本聊天沒有靜音。"),
    "digest.usage": (
        "Usage: /digest off | hourly | daily HH:MM, e.g. /digest daily 08:00.",
        "用法：/digest off | hourly | daily HH:MM，例如 /digest daily 08:00。",
        "用法：/digest off | hourly | daily HH:MM，例如 /digest daily 08:00。",
    ),
    "digest.off": (
        "No digest: alerts arrive as they come.",
        "不合并：提醒即时发送。",
        "不合併：提醒即時發送。",
    ),
    "digest.hourly": (
        "Alerts come as one digest every hour, on the hour ({tz}). Next: {next}.",
        "提醒每小时整点合成一条摘要发送（{tz}）。下一次：{next}。",
        "提醒每小時整點合成一則摘要發送（{tz}）。下一次：{next}。",
    ),
    "digest.daily": (
        "Alerts come as one digest a day at {time} ({tz}). Next: {next}.",
        "提醒每天 {time} 合成一条摘要发送（{tz}）。下一次：{next}。",
        "提醒每天 {time} 合成一則摘要發送（{tz}）。下一次：{next}。",
    ),
    "digest.choose": (
        "Change it with /digest off | hourly | daily HH:MM, or tap:",
        "用 /digest off | hourly | daily HH:MM 更改，或点按：",
        "用 /digest off | hourly | daily HH:MM 更改，或點按：",
    ),
    "digest.saved": ("Saved", "已保存", "已儲存"),
    "digest.button.off": ("Off", "关闭", "關閉"),
    "digest.button.hourly": ("Hourly", "每小时", "每小時"),
    "digest.button.daily": ("Daily {time}", "每天 {time}", "每天 {time}"),
    "language.current": (
        "Language: <b>{name}</b>. Choose:",
        "语言：<b>{name}</b>。请选择：",
        "語言：<b>{name}</b>。請選擇：",
    ),
    "language.set": ("Language: English", "语言：简体中文", "語言：繁體中文"),
    "language.usage": (
        "Usage: /language en | zh-hans | zh-hant, or tap:",
        "用法：/language en | zh-hans | zh-hant，或点按：",
        "用法：/language en | zh-hans | zh-hant，或點按：",
    ),
    "access.refused": (
        "Sorry, this bot is private. Ask its operator to let you in (your Telegram id is {id}).",
        "抱歉，这是私人机器人。请联系管理员开通（你的 Telegram ID 是 {id}）。",
        "抱歉，這是私人機器人。請聯絡管理員開通（你的 Telegram ID 是 {id}）。",
    ),
    "access.refused_chat": (
        "Sorry, this bot is not open to this chat. Ask its operator to add it (chat id {id}).",
        "抱歉，本机器人未对此聊天开放。请联系管理员加入（聊天 ID {id}）。",
        "抱歉，本機器人未對此聊天開放。請聯絡管理員加入（聊天 ID {id}）。",
    ),
    "alert.also": ("also: {sources}", "另见：{sources}", "另見：{sources}"),
    "alert.more": ("+{count} more", "等 {count} 个", "等 {count} 個"),
    "alert.untitled": ("(untitled)", "（无标题）", "（無標題）"),
    "digest.heading": (
        "<b>Digest</b>: {count} alerts",
        "<b>摘要</b>：{count} 条提醒",
        "<b>摘要</b>：{count} 則提醒",
    ),
    "digest.heading#one": (
        "<b>Digest</b>: 1 alert",
        "<b>摘要</b>：1 条提醒",
        "<b>摘要</b>：1 則提醒",
    ),
    "digest.heading_muted": (
        "<b>While muted</b>: {count} alerts",
        "<b>静音期间</b>：{count} 条提醒",
        "<b>靜音期間</b>：{count} 則提醒",
    ),
    "digest.heading_muted#one": (
        "<b>While muted</b>: 1 alert",
        "<b>静音期间</b>：1 条提醒",
        "<b>靜音期間</b>：1 則提醒",
    ),
    "digest.page": (" ({page}/{pages})", "（{page}/{pages}）", "（{page}/{pages}）"),
    "flood.slow": (
        "You are sending commands too fast. Please wait {seconds} s and try again.",
        "你发送命令太快了，请等 {seconds} 秒再试。",
        "你發送指令太快了，請等 {seconds} 秒再試。",
    ),
}
