"""``asyncrpc list`` and ``asyncrpc describe``: what a server answers, from its describe request."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asyncrpc.cli.call import open_or_explain
from asyncrpc.cli.errors import CommandError, ExitStatus
from asyncrpc.connector import Connector
from asyncrpc.errors import ConnectionLost, DeadlineExceeded, DescribeFailed, MethodNotFound, RemoteError
from asyncrpc.stubgen import schema_annotation

__all__ = ["component_lines", "describe_methods", "list_methods", "signature"]


async def _description(connector: Connector, timeout: float) -> dict[str, Any]:
    address = connector.options.address
    async with await open_or_explain(connector) as client:
        try:
            answer = await client.describe(timeout=timeout)
        except MethodNotFound:
            raise CommandError(
                f"{address} does not describe its methods (it is not an asyncrpc server); "
                f"for Neovim, try: asyncrpc call {address} nvim_get_api_info",
                ExitStatus.REMOTE_ERROR,
            ) from None
        except DescribeFailed as exc:
            raise CommandError(
                f"{address} cannot describe its methods: {exc.message}", ExitStatus.REMOTE_ERROR
            ) from None
        except RemoteError as exc:
            raise CommandError(str(exc), ExitStatus.REMOTE_ERROR) from None
        except DeadlineExceeded:
            raise CommandError(f"no answer from {address} within {timeout:g}s", ExitStatus.NO_REPLY) from None
        except ConnectionLost as exc:
            raise CommandError(f"the connection to {address} was lost ({exc})", ExitStatus.NO_REPLY) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("methods"), list):
        raise CommandError(f"{address} sent a description this version cannot read", ExitStatus.REMOTE_ERROR)
    return answer


def signature(method: dict[str, Any]) -> str:
    """``calc.add(a: int, b: int = 2, *rest: str) -> int``, from one described method."""
    parts = []
    for param in method.get("params", []):
        text = f"{'*' if param.get('variadic') else ''}{param.get('name')}: {param.get('annotation', 'Any')}"
        if "default" in param:
            text += f" = {param['default']!r}"
        elif param.get("has_default"):  # one msgpack cannot carry: the server's to fill
            text += " = ..."
        parts.append(text)
    result = method.get("result", {}).get("annotation", "Any")
    return f"{method.get('name')}({', '.join(parts)}) -> {result}"


async def list_methods(connector: Connector, *, timeout: float) -> int:
    """Print each method's name, with its interface after it where it has one."""
    answer = await _description(connector, timeout)
    for method in answer["methods"]:
        interface = method.get("interface")
        print(f"{method.get('name')}  ({interface})" if interface else method.get("name"))
    return ExitStatus.OK


def _references(value: Any, found: list[str]) -> None:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.append(ref.removeprefix("#/$defs/"))
        for item in value.values():
            _references(item, found)
    elif isinstance(value, list):
        for item in value:
            _references(item, found)


async def describe_methods(connector: Connector, method: str | None, *, timeout: float) -> int:
    """Print the signature and docs of ``method`` (every method when ``None``), and the types it names."""
    answer = await _description(connector, timeout)
    methods = answer["methods"]
    if method is not None:
        methods = [entry for entry in methods if entry.get("name") == method]
        if not methods:
            raise CommandError(
                f"{connector.options.address} has no method {method!r} (asyncrpc list shows them)",
                ExitStatus.REMOTE_ERROR,
            )
    components: dict[str, Any] = answer.get("components") or {}
    for index, entry in enumerate(methods):
        if index:
            print()
        print(signature(entry))
        doc = entry.get("doc")
        if doc:
            for line in str(doc).splitlines():
                print(f"    {line}" if line else "")
    named: list[str] = []
    _references(methods, named)
    # Components refer to others (a dataclass holding another): follow them too.
    seen: list[str] = []
    while named:
        name = named.pop(0)
        if name in seen or name not in components:
            continue
        seen.append(name)
        _references(components[name], named)
    for name in seen:
        print()
        for line in component_lines(name, components[name], components):
            print(line)
    return ExitStatus.OK


def component_lines(name: str, schema: Any, components: Iterable[str] = ()) -> list[str]:
    """A component of the answer as Python-like lines: a dataclass's fields, an enum's values.

    ``class Stats:`` and one ``field: type`` line each (``= default`` for an
    optional field, ``= ...`` where the schema gives no default); ``class
    Unit(Enum):`` and its values; any other component ``Name = type``. Types
    are written as :mod:`asyncrpc.stubgen` writes them.
    """
    if not isinstance(schema, dict):
        return [f"{name} = Any"]
    doc = schema.get("description")
    doc_lines = _docstring(doc) if isinstance(doc, str) and doc else []
    values = schema.get("enum")
    if isinstance(values, list):
        return [f"class {name}(Enum):", *doc_lines, *(f"    {value!r}" for value in values)]
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, dict):
        return [f"{name} = {schema_annotation(schema, components)}"]
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    lines = [f"class {name}:", *doc_lines]
    for field, field_schema in properties.items():
        text = f"    {field}: {schema_annotation(field_schema, components)}"
        if field not in required:
            has_value = isinstance(field_schema, dict) and "default" in field_schema
            text += f" = {field_schema['default']!r}" if has_value else " = ..."
        lines.append(text)
    if len(lines) == 1:
        lines.append("    pass")
    return lines


def _docstring(text: str) -> list[str]:
    body = text.strip().splitlines()
    if len(body) <= 1:
        return [f'    """{body[0]}"""'] if body else []
    return [f'    """{body[0]}', *(f"    {line}".rstrip() for line in body[1:]), '    """']
