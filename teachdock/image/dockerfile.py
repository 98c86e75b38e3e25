"""Dockerfiles: reading them, and what each metadata instruction does to an image config.

A Dockerfile is a list of instructions, one per line::

    # a comment
    FROM busybox
    ENV GREETING="hello world"
    RUN echo "$GREETING" > /greeting \\
        && chmod 644 /greeting          <- a backslash continues the instruction
    CMD ["cat", "/greeting"]            <- exec form (JSON); `CMD cat /greeting` is shell form

This module parses that text (keeping each instruction's line number for error messages),
splits arguments into words the way Docker does (quotes, backslash escapes, ``$VAR``,
``${VAR}``, ``${VAR:-default}``, ``${VAR:+alternative}``), reads ``.dockerignore``, and
applies the instructions that only change the image's config (ENV, CMD, USER, ...). The
builder (build.py) runs the rest; ``commit --change`` uses the same code.
"""

from __future__ import annotations

import datetime
import json
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from teachdock.errors import InvalidConfig
from teachdock.image import healthcheck
from teachdock.image.platforms import host_platform

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]

#: Instructions the builder runs.
SUPPORTED = ("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "LABEL", "EXPOSE", "CMD",
             "ENTRYPOINT", "VOLUME", "STOPSIGNAL", "SHELL", "MAINTAINER", "HEALTHCHECK")
#: Docker instructions teachdock knows but does not implement, and why.
UNSUPPORTED = {
    "ONBUILD": "ONBUILD triggers are not implemented",
}
#: What ``commit --change`` accepts (Docker's list).
COMMIT_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "WORKDIR", "VOLUME", "STOPSIGNAL")
#: Instructions that change only the config: no container runs, no layer is made.
METADATA = ("ENV", "LABEL", "EXPOSE", "USER", "CMD", "ENTRYPOINT", "VOLUME", "STOPSIGNAL", "SHELL", "MAINTAINER",
            "HEALTHCHECK")

_FLAG = re.compile(r"--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?(?:\s+|$)")
_NAME = re.compile(r"[0-9]+|[A-Za-z_][A-Za-z0-9_]*")      # $1 is a (never set) name too, as in Docker
_PORT = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?", re.IGNORECASE)


class BuildError(InvalidConfig):
    """A Dockerfile that cannot be built; the message starts with ``Dockerfile:<line>:``."""

    def __init__(self, message: str, line: int | None = None, dockerfile: str = "Dockerfile"):
        super().__init__(f"{dockerfile}:{line}: {message}" if line else message)
        self.line = line
        self.dockerfile = dockerfile
        self.reason = message


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuation lines joined."""

    keyword: str                  # upper case: "RUN"
    args: str                     # the text after the keyword and its --flags
    line: int                     # where it starts, 1-based
    original: str                 # the whole instruction as written (for "Step 2/6 : ...")
    flags: dict = field(default_factory=dict)
    dockerfile: str = "Dockerfile"

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of ``CMD ["a", "b"]`` (exec form), or None for shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None                  # Docker treats invalid JSON as shell form
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        return None

    def error(self, message: str) -> BuildError:
        return BuildError(message, self.line, self.dockerfile)


def parse_dockerfile(text: str, name: str = "Dockerfile") -> list[Instruction]:
    """The instructions of a Dockerfile, in order; BuildError (with the line) on a bad one."""
    instructions = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue                      # comments and blank lines, also inside a continuation
        if not parts:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        instructions.append(_instruction("".join(parts), start, name))
        parts = []
    if parts:                             # a backslash on the last line: Docker accepts it
        instructions.append(_instruction("".join(parts), start, name))
    return instructions


def _instruction(text: str, line: int, name: str) -> Instruction:
    word, rest = re.match(r"(\S+)\s*(.*)", text.strip(), re.DOTALL).groups()
    keyword = word.upper()
    if keyword in UNSUPPORTED:
        raise BuildError(f"{keyword} is not supported by teachdock's builder: {UNSUPPORTED[keyword]}", line, name)
    if keyword not in SUPPORTED:
        raise BuildError(f"unknown instruction: {word}", line, name)
    flags = {}
    if keyword in ("FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"):
        while rest.startswith("--"):
            match = _FLAG.match(rest)
            if not match:
                raise BuildError(f"{keyword}: malformed flag in {rest.split()[0]!r}", line, name)
            if match.group(2) is None:
                flag = match.group(1)
                raise BuildError(f"{keyword}: missing a value on flag --{flag} (write --{flag}=...)", line, name)
            flags[match.group(1)] = match.group(2)
            rest = rest[match.end():]
    if not rest:
        raise BuildError(f"{keyword} requires at least one argument", line, name)
    return Instruction(keyword, rest, line, text.strip(), flags, name)


# --------------------------------------------------------------------------- words and variables

def split_words(text: str) -> list[str]:
    """Split on whitespace outside quotes; quotes and backslashes stay for process_word."""
    words, current, quote, i = [], [], None, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and quote != "'" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if quote:
            if char == quote:
                quote = None
            current.append(char)
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
        i += 1
    if quote:
        raise InvalidConfig(f"unterminated {quote} quote in {text!r}")
    if current:
        words.append("".join(current))
    return words


def process_word(word: str, env: dict[str, str]) -> str:
    """Remove quotes and escapes and substitute variables, as Docker does for one word.

    Inside single quotes nothing is substituted; inside double quotes ``$`` still works.
    """
    out, quote, i = [], None, 0
    while i < len(word):
        char = word[i]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                out.append(char)
            i += 1
        elif char == "\\" and i + 1 < len(word):
            following = word[i + 1]
            if quote == '"' and following not in '"\\$':
                out.append(char)
            out.append(following)
            i += 2
        elif char == "$":
            value, i = _variable(word, i, env)
            out.append(value)
        elif quote == '"':
            if char == '"':
                quote = None
            else:
                out.append(char)
            i += 1
        elif char in "'\"":
            quote = char
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _variable(word: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    """Substitute the variable starting at word[i] == '$'; return (value, index after it)."""
    if word.startswith("${", i):
        depth, end = 1, i + 2
        while end < len(word) and depth:
            if word.startswith("${", end):
                depth, end = depth + 1, end + 2
                continue
            if word[end] == "}":
                depth -= 1
            end += 1
        if depth:
            raise InvalidConfig(f"missing '}}' in {word!r}")
        inner = word[i + 2:end - 1]
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])(.*))?", inner, re.DOTALL)
        if not match:
            raise InvalidConfig(f"bad substitution ${{{inner}}} in {word!r}")
        name, operator, alternative = match.groups()
        value = env.get(name)
        if operator is None:
            return value or "", end
        if operator == ":-":
            return (value if value else process_word(alternative, env)), end
        if operator == "-":
            return (value if value is not None else process_word(alternative, env)), end
        if operator == ":+":
            return (process_word(alternative, env) if value else ""), end
        return (process_word(alternative, env) if value is not None else ""), end
    match = _NAME.match(word, i + 1)
    if not match:
        return "$", i + 1
    return env.get(match.group(0), ""), match.end()


def words(inst: Instruction, env: dict[str, str]) -> list[str]:
    """The instruction's arguments as words: the JSON array, or split shell-like; substituted."""
    raw = inst.exec_form
    try:
        if raw is not None:
            return [process_word(word, env) if "$" in word else word for word in raw]
        return [process_word(word, env) for word in split_words(inst.args)]
    except InvalidConfig as error:
        raise inst.error(str(error)) from None


def single_word(inst: Instruction, env: dict[str, str]) -> str:
    """The whole argument as one string (WORKDIR "/my dir", USER), substituted."""
    try:
        return process_word(inst.args.strip(), env)
    except InvalidConfig as error:
        raise inst.error(str(error)) from None


def key_values(inst: Instruction, env: dict[str, str]) -> list[tuple[str, str]]:
    """``ENV A=1 B="two words"`` or the old form ``ENV A one value`` -> [(name, value), ...]."""
    try:
        raw = split_words(inst.args)
        if "=" not in raw[0]:                      # the old form: one name, the rest is its value
            name, _, value = inst.args.strip().partition(" ")
            if not value.strip():
                raise inst.error(f"{inst.keyword} {name}: missing value (write {name}=value)")
            return [(name, process_word(value.strip(), env))]
        pairs = []
        for word in raw:
            if "=" not in word:
                raise inst.error(f"{inst.keyword}: can't find = in {word!r}; each item must be name=value")
            name, _, value = word.partition("=")
            name = process_word(name, env)
            if not name:
                raise inst.error(f"{inst.keyword}: empty name in {word!r}")
            pairs.append((name, process_word(value, env)))
        return pairs
    except BuildError:
        raise
    except InvalidConfig as error:
        raise inst.error(str(error)) from None


def config_env(config: dict) -> dict[str, str]:
    """The image config's Env list as a dict (the variables later instructions can use)."""
    env = {}
    for item in (config.get("config") or {}).get("Env") or []:
        name, _, value = item.partition("=")
        env[name] = value
    return env


# --------------------------------------------------------------------------- metadata instructions

def apply_metadata(config: dict, inst: Instruction, env: dict[str, str], *, cmd_set: bool = False) -> str:
    """Apply a config-only instruction to an image config, in place; return its history line.

    ``env`` holds the variables in scope (ARGs, then ENVs); ``cmd_set`` says whether this
    Dockerfile has set CMD already (ENTRYPOINT clears an inherited CMD, as in Docker).
    """
    settings = config.setdefault("config", {})
    keyword = inst.keyword
    nop = "/bin/sh -c #(nop)  "
    if keyword == "ENV":
        pairs = key_values(inst, env)
        current = list(settings.get("Env") or [])
        for name, value in pairs:
            item = f"{name}={value}"
            for index, existing in enumerate(current):
                if existing.partition("=")[0] == name:
                    current[index] = item          # a new value keeps its place
                    break
            else:
                current.append(item)
        settings["Env"] = current
        return nop + "ENV " + " ".join(f"{name}={value}" for name, value in pairs)
    if keyword == "LABEL":
        pairs = key_values(inst, env)
        labels = dict(settings.get("Labels") or {})
        labels.update(pairs)
        settings["Labels"] = labels
        return nop + "LABEL " + " ".join(f"{name}={value}" for name, value in pairs)
    if keyword == "EXPOSE":
        ports = dict(settings.get("ExposedPorts") or {})
        added = []
        for word in words(inst, env):
            match = _PORT.fullmatch(word)
            if not match or int(match.group(1)) > 65535 or int(match.group(2) or 0) > 65535:
                raise inst.error(f"invalid port {word!r}: write PORT, PORT/tcp, PORT/udp or FIRST-LAST")
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            if last < first or last - first > 1000:
                raise inst.error(f"invalid port range {word!r}")
            for port in range(first, last + 1):
                key = f"{port}/{(match.group(3) or 'tcp').lower()}"
                ports[key] = {}
                added.append(key)
        settings["ExposedPorts"] = ports
        return nop + "EXPOSE " + " ".join(added)
    if keyword == "USER":
        user = single_word(inst, env)
        if not user:
            raise inst.error("USER needs a user name or id")
        settings["User"] = user
        return nop + f"USER {user}"
    if keyword == "WORKDIR":
        settings["WorkingDir"] = workdir_path(inst, settings, env)
        return f"/bin/sh -c #(nop) WORKDIR {settings['WorkingDir']}"
    if keyword in ("CMD", "ENTRYPOINT"):
        command = command_of(inst, settings)
        if keyword == "CMD":
            settings["Cmd"] = command
        else:
            settings["Entrypoint"] = command
            if not cmd_set:
                settings["Cmd"] = None
        return nop + f"{keyword} {json.dumps(command)}"
    if keyword == "VOLUME":
        volumes = dict(settings.get("Volumes") or {})
        for path in words(inst, env):
            if not path:
                raise inst.error("VOLUME specified can not be an empty string")
            volumes[path] = {}
        settings["Volumes"] = volumes
        return nop + f"VOLUME {json.dumps(sorted(volumes))}"
    if keyword == "STOPSIGNAL":
        signal_name = single_word(inst, env)
        if not re.fullmatch(r"(SIG)?[A-Z0-9+-]+|\d+", signal_name):
            raise inst.error(f"invalid stop signal {signal_name!r} (e.g. SIGTERM or 15)")
        settings["StopSignal"] = signal_name
        return nop + f"STOPSIGNAL {signal_name}"
    if keyword == "SHELL":
        shell = inst.exec_form
        if not shell:
            raise inst.error('SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]')
        settings["Shell"] = shell
        return nop + f"SHELL {json.dumps(shell)}"
    if keyword == "HEALTHCHECK":
        check = healthcheck.from_instruction(inst.args, inst.flags, inst.error)
        settings["Healthcheck"] = healthcheck.merged(check, settings.get("Healthcheck"))
        return nop + "HEALTHCHECK " + healthcheck.history_text(check)
    if keyword == "MAINTAINER":
        config["author"] = single_word(inst, env)
        return nop + f"MAINTAINER {config['author']}"
    raise inst.error(f"{keyword} is not a metadata instruction")


def command_of(inst: Instruction, settings: dict) -> list[str]:
    """Exec form as it is; shell form wrapped in the image's shell (``/bin/sh -c``)."""
    exec_form = inst.exec_form
    if exec_form is not None:
        return exec_form
    return list(settings.get("Shell") or DEFAULT_SHELL) + [inst.args]


def workdir_path(inst: Instruction, settings: dict, env: dict[str, str]) -> str:
    """WORKDIR's absolute path: a relative one continues from the previous WORKDIR."""
    path = single_word(inst, env)
    if not path:
        raise inst.error("WORKDIR needs a path")
    if not path.startswith("/"):
        path = posixpath.join(settings.get("WorkingDir") or "/", path)
    return posixpath.normpath(path)


def apply_changes(config: dict, changes: list[str]) -> dict:
    """``docker commit --change``: apply Dockerfile lines (CMD, ENV, ...) to a config, in place."""
    cmd_set = False
    for text in changes:
        for inst in parse_dockerfile(text, name="--change"):
            if inst.keyword not in COMMIT_CHANGES:
                raise inst.error(f"{inst.keyword} is not a valid change command (use one of: "
                                 f"{', '.join(COMMIT_CHANGES)})")
            apply_metadata(config, inst, config_env(config), cmd_set=cmd_set)
            cmd_set = cmd_set or inst.keyword == "CMD"
    return config


# --------------------------------------------------------------------------- configs

def timestamp(seconds: float | None = None) -> str:
    """RFC 3339 in UTC, as image configs write times: 2024-05-01T12:00:00.123456Z."""
    moment = datetime.datetime.now(datetime.timezone.utc) if seconds is None else \
        datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_config() -> dict:
    """The config of ``FROM scratch``: no layers, no history, the default PATH."""
    return {**host_platform(), "config": {"Env": [DEFAULT_PATH]},
            "rootfs": {"type": "layers", "diff_ids": []}, "history": []}


# --------------------------------------------------------------------------- .dockerignore

def pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore / COPY pattern as a regex (moby's patternmatcher): ``*`` and ``?``
    stop at ``/``, ``**`` crosses directories, ``[a-z]`` is a class, ``\\`` escapes."""
    out, i = ["^"], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif char in "[]":
            out.append(char)
        else:
            out.append(re.escape(char))
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as error:
        raise InvalidConfig(f"bad pattern {pattern!r}: {error}") from None


class DockerIgnore:
    """The patterns of a ``.dockerignore``: which context paths COPY and ADD never see.

    A path is ignored when the last pattern matching it (or one of its parent
    directories) is not an exception (``!pattern``), exactly as Docker decides.
    """

    def __init__(self, lines: list[str] = ()):
        self.rules: list[tuple[re.Pattern, bool]] = []     # (regex, is exception)
        for line in lines:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            exception = text.startswith("!")
            if exception:
                text = text[1:].strip()
            text = posixpath.normpath(text)
            if text.startswith("/") and len(text) > 1:
                text = text.lstrip("/")
            self.rules.append((pattern_regex(text), exception))

    @classmethod
    def from_context(cls, context: str | os.PathLike) -> DockerIgnore:
        try:
            return cls((Path(context) / ".dockerignore").read_text().splitlines())
        except FileNotFoundError:
            return cls()

    def ignored(self, rel_path: str) -> bool:
        """Is ``rel_path`` (relative to the context, with '/') excluded?"""
        if not self.rules:
            return False
        parents = posixpath.dirname(rel_path).split("/") if "/" in rel_path else []
        matched = False
        for regex, exception in self.rules:
            if exception != matched:
                continue                 # this rule cannot change the answer
            hit = bool(regex.match(rel_path))
            if not hit:
                for i in range(len(parents)):
                    if regex.match("/".join(parents[:i + 1])):
                        hit = True
                        break
            if hit:
                matched = not exception
        return matched
