"""A small flag parser for the CLI's verbs, shaped like the docker CLI's (pflag).

Why not argparse? Importing it and building ~30 sub-parsers costs more than the rest of
``teachdock run`` on the client side. Each verb is a table instead: its flags, its usage
line, and the API calls it makes (printed by ``--help``, which should teach).

Rules, as docker's: ``-e K=V`` or ``--env K=V`` or ``--env=K=V``; short booleans combine
(``-aq``, ``-di``); ``--`` ends the flags; for ``run`` and ``exec`` the flags stop at the
first argument (``teachdock run busybox ls -l``: ``-l`` belongs to ls).
"""

from __future__ import annotations


class UsageError(Exception):
    """A command line the verb cannot take (exit status 125, as docker's)."""


class Flag:
    def __init__(self, names: str, help: str, *, value: str | None = None, repeat: bool = False,  # noqa: A002
                 default=None):
        self.names = names.split(",")            # "-e,--env"
        self.dest = self.names[-1].lstrip("-").replace("-", "_")
        self.help = help
        self.value = value                       # metavar when the flag takes a value
        self.repeat = repeat
        self.default = [] if repeat else default if value else False


class Verb:
    def __init__(self, name: str, args: str, summary: str, api: str, flags=(), *, min_args: int = 0,
                 max_args: int | None = None, interspersed: bool = True):
        self.name, self.args, self.summary, self.api = name, args, summary, api
        self.flags = list(flags) + [Flag("-h,--help", "print this help")]
        self.min_args, self.max_args, self.interspersed = min_args, max_args, interspersed

    def alias(self, name: str, summary: str) -> "Verb":
        """The same verb under another name, as docker has ``image ls`` beside ``images``."""
        twin = Verb.__new__(Verb)
        twin.__dict__.update(self.__dict__, name=name, summary=summary)
        return twin

    def help_text(self, prog: str = "teachdock") -> str:
        import textwrap  # noqa: PLC0415 - only --help needs it

        lines = [f"usage: {prog} {self.name} [OPTIONS] {self.args}".rstrip(), "", self.summary, "",
                 textwrap.fill(f"API: {self.api}", width=100, subsequent_indent="     ", break_on_hyphens=False)]
        if self.flags:
            lines += ["", "options:"]
            for flag in self.flags:
                left = ", ".join(flag.names) + (f" {flag.value}" if flag.value else "")
                lines.append(f"  {left:<24} {flag.help}")
        return "\n".join(lines) + "\n"

    def parse(self, argv: list[str]):
        """-> (options: a simple namespace, positional arguments)."""
        by_name = {name: flag for flag in self.flags for name in flag.names}
        values = {flag.dest: (list(flag.default) if flag.repeat else flag.default) for flag in self.flags}
        args: list[str] = []
        tokens = list(argv)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            i += 1
            if token == "--":
                args += tokens[i:]
                break
            if not token.startswith("-") or token == "-":
                args.append(token)
                if not self.interspersed:
                    args += tokens[i:]
                    break
                continue
            if token.startswith("--"):
                name, has_value, inline = token.partition("=")
                flag = by_name.get(name)
                if flag is None:
                    raise UsageError(f"unknown flag: {name}")
                if flag.value:
                    if not has_value:
                        if i >= len(tokens):
                            raise UsageError(f"flag needs an argument: {name}")
                        inline = tokens[i]
                        i += 1
                    _store(values, flag, inline)
                elif has_value:
                    values[flag.dest] = inline.lower() not in ("0", "false", "no", "")
                else:
                    values[flag.dest] = True
                continue
            # short flags, maybe combined: -aq, -eK=V, -e K=V
            position = 1
            while position < len(token):
                flag = by_name.get("-" + token[position])
                if flag is None:
                    raise UsageError(f"unknown shorthand flag: {token[position]!r} in {token}")
                if flag.value:
                    rest = token[position + 1:]
                    if not rest:
                        if i >= len(tokens):
                            raise UsageError(f"flag needs an argument: '{token[position]}' in {token}")
                        rest = tokens[i]
                        i += 1
                    _store(values, flag, rest.removeprefix("="))
                    break
                values[flag.dest] = True
                position += 1
        options = Options(values)
        if not options.help:
            if len(args) < self.min_args:
                raise UsageError(f"\"{self.name}\" requires at least {self.min_args} argument"
                                 f"{'s' if self.min_args > 1 else ''}")
            if self.max_args is not None and len(args) > self.max_args:
                raise UsageError(f"\"{self.name}\" accepts at most {self.max_args} argument"
                                 f"{'s' if self.max_args != 1 else ''}, got {len(args)}: {' '.join(args)}")
        return options, args


def _store(values: dict, flag: Flag, value: str) -> None:
    if flag.repeat:
        values[flag.dest].append(value)
    else:
        values[flag.dest] = value


class Options:
    """The parsed flags as attributes: ``options.rm``, ``options.env`` (a list), ..."""

    def __init__(self, values: dict):
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Options({self.__dict__})"
