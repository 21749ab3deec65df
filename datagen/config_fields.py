"""A domain's options, read from its config dataclass: name, type, default and help (the field's docstring).

`vzero generate DOMAIN --set key=value` and `vzero domains` are built from this, so a domain package declares
its options once, as a dataclass, and gets typed parsing, validation of unknown keys and help text for free.
A field's help is the docstring under it, the way every config of this project documents its fields:

    @dataclass(frozen=True)
    class ShapesConfig:
        shapes: int = 6
        \"\"\"Shapes drawn on each image.\"\"\"
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any

from datagen.errors import ConfigError

TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")
SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class ConfigField:
    """One option of a domain."""

    name: str
    type: Any
    """The resolved annotation, e.g. `int`, `str | None`, `tuple[str, ...]`."""
    default: Any
    help: str
    """The field's docstring, "" when it has none."""

    @property
    def type_name(self) -> str:
        """How help text shows the type: `int`, `str or none`, `list of str`."""
        return _type_name(self.type)


def config_fields(config_type: type) -> list[ConfigField]:
    """The fields of a config dataclass, in declaration order, with their docstrings as help.

    Raises:
        TypeError: `config_type` is not a dataclass, or a field has no default (every option needs one).
    """
    if not dataclasses.is_dataclass(config_type):
        raise TypeError(f"{config_type!r} is not a dataclass; a domain's config_type must be one")
    hints = typing.get_type_hints(config_type)
    docs = field_docstrings(config_type)
    found = []
    for field in dataclasses.fields(config_type):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            raise TypeError(f"{config_type.__name__}.{field.name} has no default; every domain option needs one")
        found.append(ConfigField(field.name, hints[field.name], default, docs.get(field.name, "")))
    return found


def field_docstrings(config_type: type) -> dict[str, str]:
    """`{field: docstring}` from the class source: the string literal right under each annotated field."""
    try:
        source = textwrap.dedent(inspect.getsource(config_type))
    except (OSError, TypeError):  # no source (a class built at run time): no help text, still usable
        return {}
    body = ast.parse(source).body[0]
    docs = {}
    statements = body.body if isinstance(body, ast.ClassDef) else []
    for statement, following in zip(statements, statements[1:]):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(inspect.cleandoc(following.value.value).split())
    return docs


def parse_settings(settings: list[str]) -> dict[str, str]:
    """`["width=320", "edit-kinds=a,b"]` -> `{"width": "320", "edit_kinds": "a,b"}`.

    Raises:
        ConfigError: a setting without `=`, or a key given twice.
    """
    parsed: dict[str, str] = {}
    for setting in settings:
        key, equals, value = setting.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise ConfigError(f"--set takes key=value, got {setting!r}")
        if key in parsed:
            raise ConfigError(f"--set {key} is given twice ({parsed[key]!r} and {value!r})")
        parsed[key] = value.strip()
    return parsed


def build_config(config_type: type, settings: dict[str, str]) -> Any:
    """The config with each setting parsed to its field's type; unset fields keep their defaults.

    Values are checked for type here; their ranges are the domain's `make_generator` to check.

    Raises:
        ConfigError: an unknown key (naming the known ones) or a value that is not of the field's type.
    """
    fields = {field.name: field for field in config_fields(config_type)}
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise ConfigError(
            f"{config_type.__name__} has no option {', '.join(unknown)}; its options: {', '.join(fields)}"
        )
    values = {key: parse_value(fields[key], text) for key, text in settings.items()}
    return config_type(**values)


def parse_value(field: ConfigField, text: str) -> Any:
    """`text` as a value of `field.type`: scalars, `X | None` (`none` or empty for None), tuples and lists of scalars.

    Raises:
        ConfigError: naming the field, the text and the type it should have.
    """
    try:
        return _parse(field.type, text)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"option {field.name} must be {field.type_name}, got {text!r} ({error})") from error


def _parse(annotation: Any, text: str) -> Any:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        others = [argument for argument in arguments if argument is not type(None)]
        if len(others) != 1:
            raise TypeError(f"unsupported union {annotation!r}")
        return None if text.lower() in ("", "none") else _parse(others[0], text)
    if origin in (tuple, list):
        item = arguments[0] if arguments else str
        parsed = [_parse(item, part.strip()) for part in text.split(",") if part.strip()]
        return tuple(parsed) if origin is tuple else parsed
    if annotation is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise ValueError(f"not one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")
    if annotation in SCALARS:
        return annotation(text)
    raise TypeError(f"options of type {annotation!r} cannot be set from the command line")


def _type_name(annotation: Any) -> str:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(argument) for argument in arguments if argument is not type(None)) + " or none"
    if origin in (tuple, list):
        return f"comma-separated {_type_name(arguments[0]) if arguments else 'str'}s"
    return getattr(annotation, "__name__", str(annotation))
