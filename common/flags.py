"""Command-line flags that fall back to environment variables, the same way in both services.

Every flag `--some-flag` of a command whose prefix is `RATING_API_` is also read from
`RATING_API_SOME_FLAG`: a flag on the command line wins over its variable, and the
variable over the default. Each value keeps where it came from, so that an error names
the flag, and the variable when the value came from there
(`--port (from RATING_API_PORT): 'http' is not a valid port`). The environment is
passed in: the services' config modules are the only ones that read `os.environ`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Flag:
    """`--name METAVAR`, also set by the variable `<env_prefix><NAME>`."""

    env_prefix: str
    name: str
    """Without the dashes: `poll-interval`."""
    metavar: str
    help: str
    default: str | None = None
    """The text used when neither the command line nor the environment gives one."""
    shown_default: str | None = None
    """How `--help` names the default, when not by `default` itself."""

    @property
    def option(self) -> str:
        return f"--{self.name}"

    @property
    def env(self) -> str:
        return self.env_prefix + self.name.upper().replace("-", "_")

    @property
    def label(self) -> str:
        """`--port [RATING_API_PORT]`: the flag and its variable, as errors name them."""
        return f"{self.option} [{self.env}]"


@dataclass(frozen=True, slots=True)
class Given:
    """A flag's text, and where it came from: `--port` or `--port (from RATING_API_PORT)`."""

    text: str
    source: str


def add_flags(parser: argparse.ArgumentParser, flags: Iterable[Flag]) -> None:
    """Each flag as an option whose help names its variable and its default."""
    for flag in flags:
        shown = flag.shown_default if flag.shown_default is not None else flag.default
        parser.add_argument(
            flag.option,
            dest=flag.name,  # vars(args) is keyed by flag name
            metavar=flag.metavar,
            help=f"{flag.help} [env {flag.env}, default {shown}]",
        )


def epilog(example: Flag) -> str:
    """The line at the end of `--help` that says how the variables are named."""
    return (
        f"Every flag can also be set by the environment variable {example.env_prefix}<FLAG>, "
        f"e.g. {example.option} by {example.env}; a flag on the command line wins."
    )


def given(
    flags: Iterable[Flag], command_line: Mapping[str, str | None], environ: Mapping[str, str]
) -> dict[str, Given]:
    """By flag name: the command line's text (`vars(args)`), else the variable's, else
    the default; a flag with none of them is absent."""
    found = {}
    for flag in flags:
        text = command_line.get(flag.name)
        if text is not None:
            found[flag.name] = Given(text, flag.option)
        elif flag.env in environ:
            found[flag.name] = Given(environ[flag.env], f"{flag.option} (from {flag.env})")
        elif flag.default is not None:
            found[flag.name] = Given(flag.default, flag.option)
    return found


@dataclass(frozen=True, slots=True)
class Setting:
    """One field of a service's config and its flag; `parse` gives None for text it
    refuses."""

    dest: str
    parse: Callable[[str], object | None]
    flag: Flag

    @classmethod
    def of(
        cls,
        env_prefix: str,
        dest: str,
        parse: Callable[[str], object | None],
        help: str,
        metavar: str,
        shown_default: str,
    ) -> Setting:
        """The field `dest`'s flag: `shutdown_delay_s` is `--shutdown-delay`."""
        name = dest.removesuffix("_s").replace("_", "-")
        return cls(dest, parse, Flag(env_prefix, name, metavar, help, shown_default=shown_default))


class BadValue(ValueError):
    """A flag's text that its parser refuses; the message names where it came from."""


def parse_settings(
    settings: Sequence[Setting],
    values: Mapping[str, str | None],
    environ: Mapping[str, str],
    *,
    also_from: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """By field: each setting parsed from the command line's text (`values`, by field,
    None when not given), else its variable, else its default; `also_from` names one
    more variable for a field that neither gives (`{"pod_name": "POD_NAME"}`). A field
    with none of them is left out. Raises `BadValue`."""
    found = given(
        (setting.flag for setting in settings),
        {setting.flag.name: values.get(setting.dest) for setting in settings},
        environ,
    )
    for setting in settings:
        variable = (also_from or {}).get(setting.dest)
        if variable and setting.flag.name not in found and variable in environ:
            source = f"{setting.flag.option} (from {variable})"
            found[setting.flag.name] = Given(environ[variable], source)
    return {s.dest: _parsed(s, found[s.flag.name]) for s in settings if s.flag.name in found}


def describe_settings(settings: Sequence[Setting], config: object) -> str:
    """One log line: the effective value of every setting, by flag name."""
    return " ".join(f"{s.flag.name}={getattr(config, s.dest)}" for s in settings)


def refusal(setting: Setting, config: object, message: str) -> str:
    """Why a parsed setting's value is refused, naming its flag:
    `--drain-timeout must be >= 0, got -1.0`."""
    return f"{setting.flag.label} {message}, got {getattr(config, setting.dest)!r}"


def _parsed(setting: Setting, value: Given) -> object:
    parsed = setting.parse(value.text.strip())
    if parsed is None:
        metavar = setting.flag.metavar.lower()
        raise BadValue(f"{value.source}: {value.text!r} is not a valid {metavar}")
    return parsed
