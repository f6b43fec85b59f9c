"""Typed interfaces: a plain Python class declares a service, and is its contract.

::

    class Calc(asyncrpc.Interface, namespace="calc"):
        async def add(self, a: int, b: int) -> int:
            "Add two integers."

    class CalcService(Calc):                  # an implementation
        async def add(self, a: int, b: int) -> int:
            return a + b

    server.register(CalcService())            # calc.add, its arguments checked
    calc = client.stub(Calc)                  # await calc.add(1, 2): an int to the type checker

A class that lists :class:`Interface` among its bases *declares* an
interface: its public ``async def`` methods, with their annotations and
docstrings, are the service. A class derived from a declaration (not
directly from ``Interface``) *implements* it. The declaration is read once,
on first use (so annotations may name classes defined after it), into an
:class:`InterfaceSpec` of :class:`MethodSpec`\\ s.

Registering an implementation checks it against the declaration (every
method present, with the same parameters and annotations) and wraps each
method so that its arguments are checked and converted before it runs
(:class:`ArgumentCheck`), and its result turned into msgpack values.
"""

from __future__ import annotations

import abc
import inspect
import typing
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final

from asyncrpc.errors import InvalidArguments
from asyncrpc.typed_values import FromWire, ToWire, ValueMismatch, from_wire_for, to_wire_for, type_name

__all__ = [
    "METHOD_SPEC_ATTR",
    "ArgumentCheck",
    "Interface",
    "InterfaceSpec",
    "MethodSpec",
    "interface_specs",
    "spec_of",
]

_DECLARED: Final = "__asyncrpc_declared__"
_SPEC: Final = "__asyncrpc_spec__"

METHOD_SPEC_ATTR: Final = "__asyncrpc_declared_by__"
"""On a registered interface method's handler, for reflection: ``(MethodSpec, declaration class,
namespace)``, the namespace the one it was registered under (``None`` for flat names)."""


class Interface(abc.ABC):  # noqa: B024 - its declarations' methods are the abstract ones
    """Base class of a service declaration: ``class Calc(asyncrpc.Interface, namespace="calc")``.

    Its public ``async def`` methods declare the remote methods, with their
    parameter and result annotations and docstrings; their bodies are never
    run. They are abstract: an implementation that lacks one cannot be made.
    (Mark them ``@abc.abstractmethod`` too, so that a type checker knows an
    empty body is meant.) Remote arguments are positional, as msgpack-rpc
    carries them; keyword-only parameters must have defaults.

    Subclass a declaration to implement it, and register an instance with
    :meth:`Server.register <asyncrpc.Server.register>`; get a typed client
    for it with :meth:`Client.stub <asyncrpc.Client.stub>`.

    The class keyword ``namespace`` gives the prefix of the remote names
    (``namespace.method``); without it they are flat.
    """

    def __init_subclass__(cls, *, namespace: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if Interface in cls.__bases__:
            if namespace is not None and (not isinstance(namespace, str) or not namespace):
                raise TypeError(f"namespace must be a non-empty string, not {namespace!r}")
            for name, value in vars(cls).items():
                if name.startswith("_") or not inspect.isfunction(value):
                    continue
                if not inspect.iscoroutinefunction(value):
                    raise TypeError(f"{cls.__name__}.{name}: an interface's methods are async def")
                # Abstract, so an implementation that lacks it cannot be made (ABCMeta
                # collects abstract methods once this returns).
                value.__isabstractmethod__ = True  # type: ignore[attr-defined]
            setattr(cls, _DECLARED, namespace)
        elif namespace is not None:
            raise TypeError(f"{cls.__name__} implements an interface: namespace= belongs on the declaration")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One remote parameter: its name, annotation and how a wire value becomes it."""

    name: str
    annotation: Any
    has_default: bool
    default: Any
    from_wire: FromWire
    to_wire: ToWire | None
    exact: type | None  # check by ``type(value) is exact`` alone (int, str, bytes, bool)


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One method of an interface, as its declaration gives it.

    Attributes:
        name: the Python name (``add``).
        wire_name: the remote name (``calc.add``).
        parameters: the remote parameters, in order (``self`` left out).
        variadic: the ``*args`` parameter, if any.
        result: the result annotation (``Any`` when there is none).
        doc: the docstring, or ``""``.
        signature: the Python signature, ``self`` included.
    """

    name: str
    wire_name: str
    parameters: tuple[Parameter, ...]
    variadic: Parameter | None
    result: Any
    result_from_wire: FromWire
    result_to_wire: ToWire | None
    doc: str
    signature: inspect.Signature

    @property
    def required(self) -> int:
        """How many arguments a call must give."""
        return sum(1 for parameter in self.parameters if not parameter.has_default)

    def describe_parameters(self) -> str:
        return ", ".join(f"{p.name}: {type_name(p.annotation)}" for p in self.parameters)


@dataclass(frozen=True, slots=True)
class InterfaceSpec:
    """A declared interface: its class, namespace and methods by Python name."""

    cls: type[Interface]
    namespace: str | None
    methods: dict[str, MethodSpec]

    @property
    def name(self) -> str:
        return self.cls.__qualname__


def _declarations(cls: type) -> list[type[Interface]]:
    """The interface declarations ``cls`` is or derives from, nearest first."""
    return [base for base in cls.__mro__ if _DECLARED in vars(base)]


def spec_of(declaration: type[Interface]) -> InterfaceSpec:
    """The :class:`InterfaceSpec` of a declaration, read on first use and kept."""
    spec = vars(declaration).get(_SPEC)
    if spec is None:
        spec = _read(declaration)
        setattr(declaration, _SPEC, spec)
    return typing.cast(InterfaceSpec, spec)


def interface_specs(obj: object) -> list[InterfaceSpec]:
    """The interfaces ``obj`` (an instance or a class) declares or implements; empty for a plain one."""
    cls = obj if isinstance(obj, type) else type(obj)
    if not issubclass(cls, Interface):
        return []
    return [spec_of(declaration) for declaration in _declarations(cls)]


def _hints(fn: Callable[..., Any], owner: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as exc:  # a name the annotations use is not defined
        raise TypeError(f"cannot read the annotations of {owner.__qualname__}.{fn.__name__}: {exc}") from None


def _read(declaration: type[Interface]) -> InterfaceSpec:
    namespace = vars(declaration)[_DECLARED]
    methods: dict[str, MethodSpec] = {}
    for name, fn in vars(declaration).items():
        if name.startswith("_") or not inspect.iscoroutinefunction(fn):
            continue
        methods[name] = _method_spec(declaration, namespace, name, fn)
    # Methods of the interfaces it extends (class B(A, Interface)) come too.
    for base in declaration.__mro__[1:]:
        if _DECLARED in vars(base):
            for name, method in spec_of(base).methods.items():
                methods.setdefault(name, method)
    if not methods:
        raise TypeError(f"interface {declaration.__qualname__} declares no async def methods")
    return InterfaceSpec(declaration, namespace, methods)


def _parameter(name: str, annotation: Any, default: Any) -> Parameter:
    from_wire = from_wire_for(annotation)
    exact = annotation if annotation in (int, str, bytes, bool) else None
    return Parameter(
        name,
        annotation,
        default is not inspect.Parameter.empty,
        default,
        from_wire,
        to_wire_for(annotation),
        exact,
    )


def _method_spec(declaration: type, namespace: str | None, name: str, fn: Callable[..., Any]) -> MethodSpec:
    signature = inspect.signature(fn)
    hints = _hints(fn, declaration)
    where = f"{declaration.__qualname__}.{name}"
    parameters: list[Parameter] = []
    variadic: Parameter | None = None
    for position, parameter in enumerate(signature.parameters.values()):
        if position == 0:
            continue  # self
        annotation = hints.get(parameter.name, Any)
        kind = parameter.kind
        try:
            if kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
                parameters.append(_parameter(parameter.name, annotation, parameter.default))
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                variadic = _parameter(parameter.name, annotation, inspect.Parameter.empty)
            elif kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is inspect.Parameter.empty:
                raise TypeError(
                    f"{where}: keyword-only parameter {parameter.name!r} needs a default "
                    "(remote arguments are positional)"
                )
        except TypeError as exc:
            raise TypeError(f"{where}, parameter {parameter.name!r}: {exc}") from None
    result = hints.get("return", Any)
    try:
        result_from_wire = from_wire_for(result)
    except TypeError as exc:
        raise TypeError(f"{where}, result: {exc}") from None
    wire_name = f"{namespace}.{name}" if namespace else name
    return MethodSpec(
        name,
        wire_name,
        tuple(parameters),
        variadic,
        result,
        result_from_wire,
        to_wire_for(result),
        inspect.getdoc(fn) or "",
        signature,
    )


# -- the server's side: checks, then the implementation ------------------------------------


class ArgumentCheck:
    """Checks (and converts) one method's arguments before its handler runs.

    Raises :class:`~asyncrpc.InvalidArguments` naming the parameter and what
    was expected: the wrong number of arguments, or one that does not fit its
    annotation. Scalars are checked by their type alone; the rest are
    converted (a map into a dataclass, a str into an enum member...).
    """

    __slots__ = ("_exact", "_maximum", "_parameters", "_required", "_spec", "_variadic")

    def __init__(self, spec: MethodSpec) -> None:
        self._spec = spec
        self._parameters = spec.parameters
        self._required = spec.required
        self._maximum = None if spec.variadic is not None else len(spec.parameters)
        self._variadic = spec.variadic
        # Every parameter a scalar with no default and no *args: one type check each.
        exact = [parameter.exact for parameter in spec.parameters]
        simple = spec.variadic is None and all(exact) and self._required == len(exact)
        self._exact: tuple[type, ...] | None = tuple(e for e in exact if e is not None) if simple else None

    @property
    def exact(self) -> tuple[type, ...] | None:
        """The parameters' types when each is a scalar checked by its type alone, with no
        default and no ``*args`` (the fast path); else ``None``."""
        return self._exact

    def __call__(self, params: Sequence[Any]) -> Sequence[Any]:
        exact = self._exact
        if exact is not None and len(params) == len(exact):
            for value, expected in zip(params, exact, strict=True):
                if type(value) is not expected:
                    break
            else:
                return params
        return self._checked(params)

    def _checked(self, params: Sequence[Any]) -> list[Any]:
        spec = self._spec
        count = len(params)
        if count < self._required or (self._maximum is not None and count > self._maximum):
            raise InvalidArguments(self._wrong_count(count))
        converted: list[Any] = []
        parameters = self._parameters
        for index, value in enumerate(params):
            parameter = parameters[index] if index < len(parameters) else self._variadic
            assert parameter is not None  # counted above
            try:
                converted.append(parameter.from_wire(value))
            except ValueMismatch as exc:
                raise InvalidArguments(f"{spec.name}() argument {parameter.name!r}: {exc}") from None
        converted.extend(parameter.default for parameter in parameters[count:])
        return converted

    def _wrong_count(self, count: int) -> str:
        spec = self._spec
        if count < self._required:
            missing = spec.parameters[count]
            return (
                f"{spec.name}() missing argument {missing.name!r} ({type_name(missing.annotation)}): "
                f"it takes ({spec.describe_parameters()}), got {count} argument{'s' if count != 1 else ''}"
            )
        return (
            f"{spec.name}() takes at most {self._maximum} argument{'s' if self._maximum != 1 else ''} "
            f"({spec.describe_parameters()}), got {count}"
        )


def _same_signature(spec: MethodSpec, implementation: Callable[..., Any], owner: type) -> str | None:
    """Why ``implementation`` does not match ``spec``, or ``None`` if it does."""
    declared = list(spec.signature.parameters.values())[1:]
    try:
        actual = list(inspect.signature(implementation).parameters.values())
    except (TypeError, ValueError):
        return "its signature cannot be read"
    hints = _hints(implementation, owner)
    shape = [(p.name, p.kind, p.default) for p in declared]
    if [(p.name, p.kind, p.default) for p in actual] != shape:
        return f"it takes ({_listing(actual)}), the interface says ({_listing(declared)})"
    declared_hints = {p.name: p.annotation for p in spec.parameters}
    if spec.variadic is not None:
        declared_hints[spec.variadic.name] = spec.variadic.annotation
    for parameter in actual:
        name = parameter.name
        if name in hints and name in declared_hints and hints[name] != declared_hints[name]:
            return (
                f"parameter {parameter.name!r} is {type_name(hints[parameter.name])}, "
                f"the interface says {type_name(declared_hints[parameter.name])}"
            )
    if "return" in hints and hints["return"] != spec.result:
        return f"it returns {type_name(hints['return'])}, the interface says {type_name(spec.result)}"
    return None


def _listing(parameters: list[inspect.Parameter]) -> str:
    return ", ".join(str(parameter.replace(annotation=inspect.Parameter.empty)) for parameter in parameters)


def checked_handlers(implementation: object, namespace: str | None = None) -> dict[str, Callable[..., Any]]:
    """The handlers for an implementation of one or more interfaces, by remote name.

    Each checks its arguments (:class:`ArgumentCheck`) before calling the
    implementation's method, and turns its result into msgpack values.

    Raises:
        TypeError: a declared method is missing, or its signature differs.
    """
    handlers: dict[str, Callable[..., Any]] = {}
    cls = type(implementation)
    for spec in interface_specs(implementation):
        prefix = namespace if namespace is not None else spec.namespace
        for name, method in spec.methods.items():
            declared = inspect.getattr_static(spec.cls, name, None)
            found = inspect.getattr_static(cls, name, None)
            if found is None or found is declared:
                raise TypeError(f"{cls.__qualname__} does not implement {spec.name}.{name}")
            bound = getattr(implementation, name)
            problem = _same_signature(method, bound, cls)
            if problem is not None:
                raise TypeError(f"{cls.__qualname__}.{name} does not match {spec.name}.{name}: {problem}")
            wire_name = f"{prefix}.{name}" if prefix else name
            handler = _checked(bound, method)
            setattr(handler, METHOD_SPEC_ATTR, (method, spec.cls, prefix or None))
            handlers[wire_name] = handler
    return handlers


def _scalar_fast_path(
    fn: Callable[..., Any], check: ArgumentCheck, exact: tuple[type, ...]
) -> Callable[..., Any]:
    """The wrapper for a method whose parameters are all scalars with no default
    (``add(a: int, b: int)``), written out for its arity: one ``type(x) is T``
    test per argument and a direct call, the slow path only for a mismatch.

    Made with ``exec`` (as ``dataclasses`` makes ``__init__``) from this
    function's own text and numbers; the types and functions are passed in
    the namespace, never as text.
    """
    names = [f"a{index}" for index in range(len(exact))]
    arguments = ", ".join(names)
    test = " and ".join(f"type({name}) is t{index}" for index, name in enumerate(names)) or "True"
    call = "await fn" if inspect.iscoroutinefunction(fn) else "fn"
    lines = [
        f"{'async def' if call != 'fn' else 'def'} run(*params):",
        f"    if len(params) == {len(exact)}:",
        *([f"        {arguments}, = params"] if names else []),
        f"        if {test}:",
        f"            return {call}({arguments})",
        f"    return {call}(*check(params))",
    ]
    namespace: dict[str, Any] = {"fn": fn, "check": check}
    namespace.update({f"t{index}": kind for index, kind in enumerate(exact)})
    exec("\n".join(lines), namespace)  # our own text: see the docstring
    run: Callable[..., Any] = namespace["run"]
    return run


def _checked(fn: Callable[..., Any], spec: MethodSpec) -> Callable[..., Any]:
    check = ArgumentCheck(spec)
    to_wire = spec.result_to_wire
    wrapper: Callable[..., Any]
    if check.exact is not None and to_wire is None:
        wrapper = _scalar_fast_path(fn, check, check.exact)
    elif inspect.iscoroutinefunction(fn):

        async def run_async(*params: Any) -> Any:
            result = await fn(*check(params))
            return result if to_wire is None else to_wire(result)

        wrapper = run_async
    else:

        def run(*params: Any) -> Any:
            result = fn(*check(params))
            if to_wire is None:
                return result
            if inspect.isawaitable(result):  # a plain def that returned a coroutine
                return _converted(result, to_wire)
            return to_wire(result)

        wrapper = run
    # How the handler runs (@blocking, @cooperative) is the implementation's.
    for marker in ("__asyncrpc_blocking__", "__asyncrpc_cooperative__"):
        if getattr(fn, marker, False):
            setattr(wrapper, marker, True)
    wrapper.__name__ = spec.name
    wrapper.__qualname__ = getattr(fn, "__qualname__", spec.name)
    wrapper.__doc__ = spec.doc
    return wrapper


async def _converted(result: Coroutine[Any, Any, Any] | Any, to_wire: ToWire) -> Any:
    return to_wire(await result)
