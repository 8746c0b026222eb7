"""Flag groups built from a frozen config dataclass, so each default lives once (in the
dataclass) and ``--help`` shows it: :func:`add_config_flags` (used by the LoRA and mining flags)."""
from __future__ import annotations

import typing


def add_config_flags(group, defaults, helps: dict[str, str]) -> None:
    """One ``--field-name`` flag per entry of ``helps`` (field name -> help text), typed and
    defaulted from the field of ``defaults`` (a dataclass instance) of that name; the default is
    appended to the help unless the text already says what it is."""
    hints = typing.get_type_hints(type(defaults))
    for name, text in helps.items():
        value = getattr(defaults, name)
        kind = next((a for a in typing.get_args(hints[name]) if a is not type(None)), hints[name])
        shown = f"{value:g}" if isinstance(value, float) else value
        group.add_argument("--" + name.replace("_", "-"), type=kind, default=value,
                           help=text if "default" in text else f"{text} (default {shown})")
