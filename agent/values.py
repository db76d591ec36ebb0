"""``@value``: a frozen dataclass that costs a tenth of one to define.

Every pod's start pays for every class the agent defines before its first DNS query, and a
CPU limit multiplies it (under ``limits.cpu: 100m``, 1 ms of CPU is 10 ms of waiting). Python
3.11's ``@dataclass(frozen=True)`` writes six methods as source text and compiles each with
``exec``: about 3.4 million instructions a class, 60 classes on the ``wait`` path, more than
half of what the agent added to ``anyio.run`` of an empty coroutine (docs/benchmarks.md). Even
without its methods, ``dataclasses`` spends 0.3 million instructions a class collecting the
fields (a regular expression per string annotation, a signature for the docstring, abstract
methods looked for). ``@value`` reads the fields off the class's annotations itself and
installs methods built from the field names, without compiling anything: under 0.1 million
instructions a class. It records them as ``dataclasses`` does (``__dataclass_fields__``), so
``dataclasses.fields``, ``replace``, ``asdict`` and ``match`` work as on any dataclass.
Instances keep what a frozen dataclass gives: keyword or positional construction with
defaults and ``field(default_factory=...)``, equality and hash over the fields (only between
instances of the same class), a repr of the fields (``field(repr=False)`` leaves one out), and
``FrozenInstanceError`` on assignment. Type checkers see a frozen dataclass
(``dataclass_transform``).

Nor does it import ``dataclasses``, which imports ``inspect`` (and with it ``ast``, ``dis`` and
``tokenize``): 7 ms of a start whose driver (``agent.io.sync``) imports nothing else that needs
them. A field is declared with :func:`field` (``dataclasses.field`` is read too, where the
caller has it), read with :func:`fields` and :func:`replace`; ``__dataclass_fields__``, which
``dataclasses`` reads, is made of ``dataclasses.Field`` at its first look, by code that has
imported ``dataclasses`` already.

Pure: no I/O; the lowest layer, usable by every other.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from operator import attrgetter, itemgetter
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["Field", "field", "fields", "replace", "value"]

_C = TypeVar("_C", bound=type)
_V = TypeVar("_V")
#: an annotation that would make a class variable, not a field (annotations are strings: PEP 563)
_CLASS_VARIABLE = ("ClassVar", "typing.ClassVar")


class _Missing:
    """No default (``dataclasses.MISSING``'s part)."""

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


class Field:
    """One field of a value class: what ``dataclasses.Field`` records of it that ``@value``
    keeps (a default or a default factory, ``repr``, ``kw_only``)."""

    __slots__ = ("default", "default_factory", "kw_only", "name", "repr", "type")

    def __init__(self, default: Any, default_factory: Any, repr: bool, kw_only: Any) -> None:
        self.default, self.default_factory, self.repr = default, default_factory, repr
        self.kw_only, self.name, self.type = kw_only, "", ""

    def as_dataclass_field(self) -> Any:
        """The ``dataclasses.Field`` that ``@dataclass`` would have made of it."""
        import dataclasses

        def mapped(given: Any) -> Any:
            return dataclasses.MISSING if given is _MISSING else given

        made = dataclasses.field(
            default=mapped(self.default),
            default_factory=mapped(self.default_factory),
            repr=self.repr,
            kw_only=self.kw_only,
        )
        made.name, made.type = self.name, self.type
        made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
        return made


def field(*, default: Any = _MISSING, default_factory: Any = _MISSING, repr: bool = True) -> Any:
    """A field with a default (or a factory for one), or left out of the repr."""
    return Field(default, default_factory, repr, _MISSING)


def fields(cls_or_value: Any) -> tuple[Field, ...]:
    """A value class's fields, in order (``dataclasses.fields``)."""
    return cls_or_value._value_fields  # type: ignore[no-any-return]


def replace(obj: _V, /, **changes: Any) -> _V:
    """A copy of value ``obj`` with ``changes`` (``dataclasses.replace``)."""
    given = {f.name: getattr(obj, f.name) for f in fields(obj)}
    return obj.__class__(**{**given, **changes})


class _DataclassFields:
    """A value class's ``__dataclass_fields__``, made at the first look, by ``dataclasses``
    (``fields``, ``replace``, ``asdict``, ``is_dataclass``), imported by whoever looks."""

    def __init__(self, owner: type) -> None:
        self.owner = owner

    def __get__(self, instance: object, cls: type | None = None) -> dict[str, Any]:
        made = {f.name: f.as_dataclass_field() for f in fields(self.owner)}
        self.owner.__dataclass_fields__ = made  # type: ignore[attr-defined]
        return made


def _frozen_setattr(self: object, name: str, _: object) -> None:
    import dataclasses  # only a bug assigns

    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    import dataclasses

    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


class _Shape:
    """What the methods of one value class need to know of its fields, worked out once."""

    __slots__ = ("defaults", "factories", "known", "names", "positional", "required", "tails")

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.names = tuple(f.name for f in fields)
        self.known = frozenset(self.names)
        self.positional = sum(not f.kw_only for f in fields)
        self.defaults = {f.name: f.default for f in fields if f.default is not _MISSING}
        self.factories = tuple(
            (f.name, f.default_factory) for f in fields if f.default_factory is not _MISSING
        )
        #: the fields before the first with a default or a factory
        self.required = next((i for i, f in enumerate(fields) if _has_default(f)), len(fields))
        #: by how many arguments are given by position: the defaults of the fields after them,
        #: when there are enough for the required fields and all the rest are plain (no
        #: factory); else None (a factory's field left out: ``bind`` calls it)
        self.tails = tuple(
            tuple(self.defaults[n] for n in self.names[k:])
            if k >= self.required and all(n in self.defaults for n in self.names[k:])
            else None
            for k in range(self.positional + 1)
        )


def _init(title: str, shape: _Shape) -> Callable[..., None]:
    """``__init__`` as a dataclass's, without compiling one: the fields go straight into the
    instance's ``__dict__`` in field order (as ``object.__setattr__`` would put them past the
    frozen guard)."""
    names, positional, tails = shape.names, shape.positional, shape.tails
    bind = _binder(title, shape)
    # The other usual call: every field by keyword (a decoded message). One field has no order.
    count, in_order = len(names), itemgetter(*names) if len(names) > 1 else None

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if not kwargs:
            # The usual call: positional arguments, the fields after them left to plain defaults
            # (a factory's field given by position too: ``LogLine(kind, text, fields)``).
            if len(args) <= positional and (tail := tails[len(args)]) is not None:
                self.__dict__.update(zip(names, args + tail, strict=True))
                return
        elif not args and len(kwargs) == count and in_order is not None:
            try:
                self.__dict__.update(zip(names, in_order(kwargs), strict=True))
                return
            except KeyError:  # as many as the fields, but not all of them: bind says which
                pass
        self.__dict__.update(bind(args, kwargs))

    return __init__


def _has_default(f: Field) -> bool:
    return f.default is not _MISSING or f.default_factory is not _MISSING


def _binder(
    title: str, shape: _Shape
) -> Callable[[tuple[Any, ...], dict[str, Any]], Iterable[tuple[str, Any]]]:
    """Any other call: keywords (in any order), defaults and factories; (name, value) pairs in
    field order, or TypeError as a dataclass's ``__init__`` raises it."""
    names, known, positional = shape.names, shape.known, shape.positional
    defaults, factories = shape.defaults, shape.factories
    # one field has no order to keep
    in_order = itemgetter(*names) if len(names) > 1 else None

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterable[tuple[str, Any]]:
        if len(args) > positional:
            raise TypeError(f"{title}() takes {positional} positional arguments")
        given = len(args) + len(kwargs)
        kwargs.update(zip(names, args, strict=False))  # the first len(args)
        if len(kwargs) != given:
            raise TypeError(f"{title}() got an argument twice")
        if len(kwargs) != len(names):
            kwargs = {**defaults, **kwargs}
            for name, make in factories:
                if name not in kwargs:
                    kwargs[name] = make()
        if kwargs.keys() != known:
            missing = [name for name in names if name not in kwargs]
            unknown = sorted(kwargs.keys() - known)
            raise TypeError(f"{title}(): missing {missing}, unknown {unknown}")
        if in_order is None:
            return kwargs.items()
        return zip(names, in_order(kwargs), strict=True)

    return bind


def _methods(title: str, fields: tuple[Field, ...]) -> dict[str, Callable[..., Any]]:
    shape = _Shape(fields)
    names = shape.names
    shown = tuple(f.name for f in fields if f.repr)
    # a tuple of the fields (one field: the value itself), built in C
    key: Callable[[Any], Any] = attrgetter(*names) if names else (lambda _: ())

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(key(self))

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inner})"

    return {
        "__init__": _init(title, shape),
        "__eq__": __eq__,
        "__hash__": __hash__,
        "__repr__": __repr__,
        "__setattr__": _frozen_setattr,
        "__delattr__": _frozen_delattr,
    }


def _collect(cls: type, kw_only: bool) -> tuple[Field, ...]:
    """The class's fields in annotation order, each named and typed as ``dataclasses`` would
    record it; the class attribute of each is its default, as there. Each uses no more of
    ``field`` (or ``dataclasses.field``) than ``@value`` keeps: a default or a default
    factory, ``repr`` and ``kw_only``."""
    title = cls.__qualname__
    if len(cls.__mro__) > 2 and any("__dataclass_fields__" in b.__dict__ for b in cls.__mro__):
        raise TypeError(f"{title}: a @value class inherits no fields")
    fields = []
    # the class's own annotations, as inspect.get_annotations gives them, for a fifth of its cost
    for name, kind in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if isinstance(kind, str) and kind.startswith(_CLASS_VARIABLE):
            raise TypeError(f"{title}.{name}: a @value class has no class variables")
        given = cls.__dict__.get(name, _MISSING)
        if isinstance(given, Field) or _is_dataclass_field(given):
            f = _own(title, name, given)
            if f.default is _MISSING:
                delattr(cls, name)  # a factory's field
            else:
                setattr(cls, name, f.default)
        else:
            f = Field(given, _MISSING, True, _MISSING)  # the attribute (if any): the default
        if f.default.__class__.__hash__ is None:  # a list, dict or set shared by every instance
            raise ValueError(f"{title}.{name}: a mutable default; use default_factory")
        f.name, f.type = name, kind
        if f.kw_only is _MISSING:
            f.kw_only = kw_only
        fields.append(f)
    positional = [f for f in fields if not f.kw_only]
    if any(_has_default(a) and not _has_default(b) for a, b in itertools.pairwise(positional)):
        raise TypeError(f"{title}: a field without a default after one with")
    return tuple(fields)


def _is_dataclass_field(given: object) -> bool:
    """Whether ``given`` is ``dataclasses.field()``'s (told by its class, so that nothing is
    imported to ask: a caller that made one has ``dataclasses`` already)."""
    kind = given.__class__
    return kind.__name__ == "Field" and kind.__module__ == "dataclasses"


def _own(title: str, name: str, given: Any) -> Field:
    """``field()``'s, or ``dataclasses.field()``'s as a new one of ours."""
    if isinstance(given, Field):
        return Field(given.default, given.default_factory, given.repr, given.kw_only)
    if not given.init or not given.compare or given.hash is not None:
        raise TypeError(f"{title}.{name}: @value fields are compared and hashed")

    import dataclasses  # imported already: ``given`` is one of its fields

    missing = dataclasses.MISSING

    def mine(value: Any) -> Any:
        return _MISSING if value is missing else value

    return Field(mine(given.default), mine(given.default_factory), given.repr, mine(given.kw_only))


def _make_value(cls: _C, kw_only: bool) -> _C:
    fields = _collect(cls, kw_only)
    cls._value_fields = fields  # type: ignore[attr-defined]
    cls.__dataclass_fields__ = _DataclassFields(cls)  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(f.name for f in fields if not f.kw_only)  # type: ignore[attr-defined,misc]
    title = cls.__qualname__
    for name, method in _methods(title, fields).items():
        if name in cls.__dict__:  # the class's own, as dataclasses keeps it
            continue
        method.__qualname__ = f"{title}.{name}"
        setattr(cls, name, method)
    if cls.__doc__ is None:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields)})"
    return cls


@overload
def value(cls: _C, /) -> _C: ...
@overload
def value(*, kw_only: bool = False) -> Callable[[_C], _C]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def value(cls: _C | None = None, /, *, kw_only: bool = False) -> Any:
    """``@value`` or ``@value(kw_only=True)`` over a class with annotated fields, as
    ``@dataclass(frozen=True)`` (see the module's docstring for what it keeps)."""
    if cls is None:
        return lambda c: _make_value(c, kw_only)
    return _make_value(cls, kw_only)
