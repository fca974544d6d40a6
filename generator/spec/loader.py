"""YAML in, validated :class:`~sqlambda.spec.model.Spec` out, with every problem at ``file:line:col``.

Owns: parsing the YAML into plain data while remembering where each node stood, rejecting what
PyYAML would silently accept (duplicate keys, non-string keys, merge keys, YAML 1.1 booleans such
as ``on``/``yes`` turning into ``True``), running the pydantic model, the cross-reference checks,
and translating every error into a :class:`SpecProblem` that names the file, line, column, the
dotted path (``functions[2].returns``) and what was expected. All problems are reported at once.
Must not render SQL or touch a database.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sqlambda.errors import SpecError
from sqlambda.spec.model import IDENT_RE, Spec, cross_reference_problems

Loc = tuple[Any, ...]


@dataclass(frozen=True)
class SpecProblem:
    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col, "path": self.path, "message": self.message}


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with where it came from: renderers put both in every file header."""

    spec: Spec
    path: Path
    checksum: str

    @property
    def name(self) -> str:
        return str(self.path)


def spec_of(loaded: Any) -> tuple[Spec, str, str]:
    """(spec, name, checksum) of what a renderer was handed: a LoadedSpec, a bare Spec, or None (the
    core only, named "(no spec)" with the empty file's checksum)."""
    if loaded is None:
        return Spec(project="sqlambda"), "(no spec)", hashlib.sha256(b"").hexdigest()
    spec = getattr(loaded, "spec", loaded)
    name = str(getattr(loaded, "path", None) or "(spec)")
    checksum = getattr(loaded, "checksum", None) or hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
    return spec, name, checksum


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Parser:
    """Turns composed YAML nodes into plain data, recording each node's position by its path."""

    _constructor = yaml.SafeLoader("")

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.marks: dict[Loc, tuple[int, int]] = {}
        self.key_marks: dict[Loc, tuple[int, int]] = {}
        self.problems: list[SpecProblem] = []

    def problem(self, mark: yaml.Mark | tuple[int, int], loc: Loc, message: str) -> None:
        line, col = (mark.line + 1, mark.column + 1) if isinstance(mark, yaml.Mark) else mark
        self.problems.append(SpecProblem(self.filename, line, col, dotted(loc), message))

    def convert(self, node: yaml.Node, loc: Loc) -> Any:
        self.marks[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            seen: dict[str, yaml.Mark] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problem(key_node.start_mark, loc, "merge keys ('<<') are not allowed: write the keys out")
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:bool"):
                    self.problem(key_node.start_mark, loc, f"keys must be strings, got {key_node.tag.rsplit(':', 1)[-1]}")
                    continue
                key = key_node.value  # the text as written: `on:` stays the key "on"
                if key in seen:
                    first = seen[key]
                    self.problem(key_node.start_mark, loc + (key,),
                                 f"duplicate key {key!r} (first defined at line {first.line + 1}, column {first.column + 1})")
                    continue
                seen[key] = key_node.start_mark
                self.key_marks[loc + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.convert(value_node, loc + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, loc + (i,)) for i, item in enumerate(node.value)]
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
            return node.value  # YAML 1.1 `on`/`yes`/`off`/`no` stay strings: only true/false are booleans
        if node.tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"):
            return node.value
        return self._constructor.construct_object(node, deep=True)

    def position(self, loc: Loc, prefer_key: bool = False) -> tuple[int, int]:
        loc = tuple(loc)
        while True:
            if prefer_key and loc in self.key_marks:
                return self.key_marks[loc]
            if loc in self.marks:
                return self.marks[loc]
            if not loc:
                return (1, 1)
            loc = loc[:-1]


# -- making pydantic's errors readable ----------------------------------------------------------
_PATTERN_WORDS = {
    IDENT_RE.pattern: "a SQL identifier: a letter or _, then letters, digits or _, at most 63 characters",
}


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(tp) for t in _unwrap(a)]
    return [tp]


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (for listing allowed keys)."""
    current: list[Any] = [Spec]
    for part in loc:
        nxt: list[Any] = []
        for tp in current:
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
                for name, field in tp.model_fields.items():
                    if (field.alias or name) == part:
                        nxt += _unwrap(field.annotation)
            elif origin in (list, tuple) and isinstance(part, int):
                nxt += _unwrap(typing.get_args(tp)[0])
            elif origin is dict and isinstance(part, str):
                nxt += _unwrap(typing.get_args(tp)[1])
        current = nxt
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
    return None


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _message(err: dict, loc: Loc) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        key = str(loc[-1])
        if model is None:
            return f"unknown key {key!r}"
        allowed = _allowed_keys(model)
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {key!r}{hint}; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"missing required key {str(loc[-1])!r}"
    if kind == "string_pattern_mismatch":
        words = _PATTERN_WORDS.get(ctx.get("pattern", ""), f"a value matching {ctx.get('pattern')}")
        return f"expected {words}; got {value!r}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}; got {value!r}"
    if kind in ("string_type", "int_type", "int_parsing", "bool_type", "bool_parsing", "dict_type", "list_type", "model_type"):
        want = {"string_type": "a string", "int_type": "a whole number", "int_parsing": "a whole number",
                "bool_type": "true or false", "bool_parsing": "true or false", "dict_type": "a mapping",
                "list_type": "a list", "model_type": "a mapping"}[kind]
        return f"expected {want}; got {value!r}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    msg = err["msg"]
    return msg[0].lower() + msg[1:] if msg else kind


def _raw_view(data: dict) -> types.SimpleNamespace:
    """Enough of the spec's shape for the cross-reference checks when validation failed elsewhere,
    so a duplicate name is reported together with the other problems, not on the next run."""

    def entries(key: str) -> list[types.SimpleNamespace]:
        items = data.get(key) if isinstance(data.get(key), list) else []
        out = []
        for item in items:
            item = item if isinstance(item, dict) else {}
            name = item.get("name") if isinstance(item.get("name"), str) else f"<entry {len(out)}>"
            fn = item.get("function") if isinstance(item.get("function"), str) else None
            sink = item.get("sink") if isinstance(item.get("sink"), str) else None
            out.append(types.SimpleNamespace(name=name, function=fn, sink=sink))
        return out

    def modernize() -> list[types.SimpleNamespace]:
        items = data.get("modernize") if isinstance(data.get("modernize"), list) else []
        out = []
        for item in items:
            item = item if isinstance(item, dict) else {}
            name = item.get("name") if isinstance(item.get("name"), str) else None
            fn = item.get("function") if isinstance(item.get("function"), str) else ""
            short = name or fn.split("(", 1)[0].rpartition(".")[2] or f"<entry {len(out)}>"
            out.append(types.SimpleNamespace(name=name, short=short))
        return out

    return types.SimpleNamespace(functions=entries("functions"), sinks=entries("sinks"), triggers=entries("triggers"),
                                 modernize=modernize())


def load_spec_text(text: str, filename: str = "<spec>") -> Spec:
    """Parse and validate spec text; raise SpecError listing every problem."""
    parser = _Parser(filename)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError([SpecProblem(filename, line, col, "", f"YAML syntax error: {exc.problem or exc}")]) from None
    if root is None:
        raise SpecError([SpecProblem(filename, 1, 1, "", "the spec is empty; expected a mapping with at least 'project'")])
    if not isinstance(root, yaml.MappingNode):
        parser.problem(root.start_mark, (), "the top level must be a mapping (project:, aws:, functions: ...)")
        raise SpecError(parser.problems)
    data = parser.convert(root, ())
    problems = list(parser.problems)
    spec = None
    try:
        spec = Spec.model_validate(data, context={"defer_cross_references": True})
    except ValidationError as exc:
        for err in exc.errors():
            # drop pydantic's internal markers: validator wrappers and "[key]" for a mapping's key
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p == "[key]" or p.startswith(("function-after", "literal[")))))
            # a shorthand (e.g. `returns: jsonb`) can make pydantic point inside the expanded form
            line, col = parser.position(loc, prefer_key=err["type"] == "extra_forbidden")
            problems.append(SpecProblem(filename, line, col, dotted(loc), _message(err, loc)))
    for loc, message in cross_reference_problems(spec if spec is not None else _raw_view(data)):
        line, col = parser.position(loc)
        problems.append(SpecProblem(filename, line, col, dotted(loc), message))
    if problems:
        problems.sort(key=lambda p: (p.line, p.col))
        raise SpecError(problems)
    return spec


def load_spec_file(path: str | Path) -> LoadedSpec:
    """Read a spec file: the validated spec, its path and the sha256 of its bytes."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError([SpecProblem(str(path), 1, 1, "", f"cannot read the spec: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([SpecProblem(str(path), 1, 1, "", f"the spec is not UTF-8: {exc}")]) from None
    return LoadedSpec(load_spec_text(text, str(path)), path, hashlib.sha256(raw).hexdigest())


def load_spec(path: str | Path) -> Spec:
    return load_spec_file(path).spec
