"""One schema for a run: the run config (YAML or dict) and the CLI's run settings (pydantic v2).

Everything is checked before anything runs (issue 13): types, ranges, unknown keys, dataset names,
model spec syntax, shift specs and attack names/parameters against their registries, ``eps`` as a
number or a fraction (``8/255``). Every problem is collected and raised as one ``ConfigError``.
"""

from __future__ import annotations

import re
from dataclasses import fields
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from roz.attacks.base import EpsSpace
from roz.datasets.policy import BadImagePolicy
from roz.engine.options import Executor
from roz.engine.units import Head, Unit
from roz.errors import ConfigError, RozError
from roz.models.base import ModelRole

_UNIT_DEFAULTS = {f.name: f.default for f in fields(Unit)}  # the one definition of per-unit defaults
_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")
_ATTACK_KEYS = {"name", "eps", "eps_space", "datasets", "models", "limit", "min_eps", "min_eps_grid", "min_eps_attack",
                "min_eps_params", "min_eps_protocol", "surrogate"}


def _one_line(e: RozError) -> str:
    return e.what + (f" ({e.hint})" if e.hint else "")


def _accepted_by(check, v):
    """``v`` if ``check(v)`` raises no RozError; else that error as pydantic's ValueError."""
    try:
        check(v)
    except RozError as e:
        raise ValueError(_one_line(e)) from None
    return v


def check_device(value: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``, and present on this machine."""
    import torch

    if not _DEVICE.match(value):
        raise ValueError(f"device {value!r} is not cpu, cuda, cuda:N or mps")
    if value.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {value!r}: no CUDA GPU is visible on this machine (use --device cpu)")
        index = int(value.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {value!r}: only {torch.cuda.device_count()} GPU(s) visible")
    if value == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available on this machine")
    return value


def _listify(v):
    """A lone value where a list is expected (``heads: full``) is a one-item list, not its letters."""
    return [v] if isinstance(v, (str, dict)) else v


def parse_eps(v):
    """``0.0314``, ``"8/255"`` or a list of them -> float(s)."""
    if isinstance(v, (list, tuple)):
        return [parse_eps(x) for x in v]
    if isinstance(v, bool):
        raise ValueError(f"eps {v!r} is not a number")
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(Fraction(str(v).replace(" ", "")))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"eps {v!r} is not a number (write 0.0314 or 8/255)") from None


def _model_spec(v: str) -> str:
    from roz.models.adapters import parse_spec

    return _accepted_by(parse_spec, v)


def _dataset_name(v: str) -> str:
    from roz.datasets.registry import dataset_info

    return _accepted_by(dataset_info, v)


class RunSettings(BaseModel):
    """Execution settings (``RunOptions``) as a config or the CLI may give them; None = not given."""

    model_config = ConfigDict(extra="forbid")
    batch_size: PositiveInt | None = None
    workers: NonNegativeInt | None = None
    device: str | None = None
    amp: bool | None = None
    part_size: PositiveInt | None = None
    executor: Executor | None = None
    retries: NonNegativeInt | None = None
    shard_size: PositiveInt | None = None
    address: str | None = None
    task_cpus: PositiveInt | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        return None if v is None else check_device(v)


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: Annotated[str, AfterValidator(_model_spec)]
    name: str | None = None
    classes: str | None = None
    templates: str | None = None
    role: ModelRole | None = None
    prompts: str | None = None  # a prompt artefact (roz prompts search): the model becomes prompted:ARTEFACT@SPEC

    @model_validator(mode="after")
    def _prompted(self):
        """``prompts: PATH`` beside ``spec``: the CLIP with searched prompts, role zeroshot-auto."""
        if self.prompts is None:
            return self
        from roz.models.prompted import prompted_spec

        if self.templates is not None:
            raise ValueError("give either 'prompts' or 'templates': a prompted model takes its prompts from the artefact")
        try:
            spec = prompted_spec(self.prompts, self.spec)
        except RozError as e:
            raise ValueError(_one_line(e)) from None
        if not self.spec.startswith("prompted:"):
            self.spec = spec
        elif not self.spec.startswith(spec.split("@", 1)[0] + "@"):
            raise ValueError(f"spec {self.spec!r} is already prompted with another artefact than {self.prompts!r}")
        if self.role is None:
            self.role = ModelRole.ZEROSHOT_AUTO
        return self

    @property
    def label(self) -> str:
        return self.name or self.spec


class DatasetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, AfterValidator(_dataset_name)]
    root: str
    options: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @field_validator("root")
    @classmethod
    def _root(cls, v):
        if not Path(v).expanduser().exists():
            raise ValueError(f"dataset root {v} does not exist")
        return v

    @property
    def display(self) -> str:
        return self.label or self.name


def _check_shift(v):
    from roz.shifts.registry import parse_shift

    if not isinstance(v, str):
        raise ValueError(f"shift {v!r} is not a spec string such as corruption:fog:3")
    return _accepted_by(parse_shift, v)


ShiftSpec = Annotated[str, BeforeValidator(_check_shift)]
Names = Annotated[list[str], BeforeValidator(_listify)]


class ShiftEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shift: ShiftSpec
    models: Names | None = None
    datasets: Names | None = None
    limit: PositiveInt | None = None


class AttackEntry(BaseModel):
    """An attack and its parameters; parameters beyond the common ones are checked per attack."""

    model_config = ConfigDict(extra="allow")
    name: str
    eps: Annotated[float | list[float], BeforeValidator(parse_eps)] | None = None
    eps_space: EpsSpace | None = None
    datasets: Names | None = None
    models: Names | None = None
    limit: PositiveInt | None = None
    min_eps: bool | None = None
    min_eps_grid: Annotated[list[float], BeforeValidator(parse_eps)] | None = None
    min_eps_attack: str | None = None  # the attack that searches minimal eps (e.g. apgd-t); see docs/attacks.md
    min_eps_params: dict | None = None
    min_eps_protocol: Literal["roz", "paper"] | None = None  # "paper": the official search; docs/attacks.md
    surrogate: str | None = None

    @model_validator(mode="after")
    def _known(self):
        from roz.attacks.registry import ATTACKS, canonical

        cls = ATTACKS.get(canonical(self.name))
        if cls is None:
            raise ValueError(f"unknown attack {self.name!r} (choose one of: {', '.join(sorted(ATTACKS))})")
        if self.min_eps_attack is not None and canonical(self.min_eps_attack) not in ATTACKS:
            raise ValueError(f"attack {self.name!r}: unknown min_eps_attack {self.min_eps_attack!r} "
                             f"(choose one of: {', '.join(sorted(ATTACKS))})")
        unknown = sorted(set(self.model_extra or {}) - set(cls.defaults))
        if unknown:
            raise ValueError(f"attack {self.name!r}: unknown parameter(s) {unknown}; its parameters: "
                             f"{sorted(cls.defaults) + sorted(_ATTACK_KEYS - {'name'})}")
        eps = self.eps if isinstance(self.eps, list) else [] if self.eps is None else [self.eps]
        top = float("inf") if self.eps_space == EpsSpace.NORMALIZED else 1.0
        bad = [e for e in eps if not 0.0 <= e <= top]
        if bad:
            raise ValueError(f"attack {self.name!r}: eps {bad} outside [0, {top:g}] (pixel units: 8/255 = 0.0314)")
        return self


def _model_entry(v):
    return {"spec": v} if isinstance(v, str) else v


def _shift_entry(v):
    return {"shift": v} if isinstance(v, str) or v is None else v


class RunConfig(RunSettings):
    """A run config: models × datasets × shifts × attacks, plus per-unit and execution settings."""

    out: str | None = None
    name: str | None = None
    seed: int = _UNIT_DEFAULTS["seed"]
    models: Annotated[list[Annotated[ModelEntry, BeforeValidator(_model_entry)]], BeforeValidator(_listify)] \
        = Field(min_length=1)
    datasets: Annotated[list[DatasetEntry], BeforeValidator(_listify)] = Field(min_length=1)
    shifts: Annotated[list[Annotated[ShiftEntry, BeforeValidator(_shift_entry)]], BeforeValidator(_listify)] \
        = Field(default_factory=lambda: [ShiftEntry(shift="none")])
    shift_datasets: Names | None = None
    heads: Annotated[list[Head], BeforeValidator(_listify)] = Field(default_factory=lambda: [_UNIT_DEFAULTS["head"]],
                                                                      min_length=1)
    attacks: Annotated[list[AttackEntry], BeforeValidator(_listify)] = Field(default_factory=list)
    limit: PositiveInt | None = _UNIT_DEFAULTS["limit"]
    on_bad_image: BadImagePolicy = _UNIT_DEFAULTS["on_bad_image"]
    full_logits: bool = _UNIT_DEFAULTS["full_logits"]
    shards: PositiveInt = 1
    # read by `roz report` and the demo, not by planning
    baseline: Any = None
    report: Any = None
    reference: Any = None

    @model_validator(mode="after")
    def _references(self):
        models = [m.label for m in self.models]
        if len(set(models)) != len(models):
            raise ValueError(f"model names must be unique, got {models} (give each model a 'name')")
        datasets = {d.display for d in self.datasets}
        problems = []
        for where, names, known in [("shift_datasets", self.shift_datasets, datasets)] + [
                (f"shifts[{i}].{k}", getattr(s, k), known) for i, s in enumerate(self.shifts)
                for k, known in (("datasets", datasets), ("models", set(models)))] + [
                (f"attacks[{i}].{k}", getattr(a, k), known) for i, a in enumerate(self.attacks)
                for k, known in (("datasets", datasets), ("models", set(models)))]:
            missing = sorted(set(names or ()) - known)
            if missing:
                problems.append(f"{where}: {missing} not in this config (known: {sorted(known)})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "list[", "nullable")):
            out += ("." if out else "") + str(part)
    return out


def problems_of(err: ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    """One readable line per problem; unknown keys of one mapping are grouped into one line."""
    out, unknown = [], {}
    for e in err.errors():
        where = _where(e["loc"])
        if e["type"] == "extra_forbidden":
            parent, _, key = where.rpartition(".")
            unknown.setdefault(parent, []).append(key)
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "too_short" and where in ("models", "datasets", "heads"):
            msg = f"needs at least one {where[:-1] if where != 'heads' else 'head'}"
        got = "" if e["type"] in ("missing", "value_error", "assertion_error", "too_short") else f" (got {e.get('input')!r})"
        out.append(f"{where}: {msg}{got}" if where else f"{msg}{got}")
    for parent, keys in unknown.items():
        known = f"; known keys: {sorted(model.model_fields)}" if model is not None and not parent else ""
        out.append(f"{parent or 'config'}: unknown keys {sorted(keys)}{known}")
    return out


def raise_problems(what: str, err: ValidationError, hint: str, model: type[BaseModel] | None = None) -> None:
    problems = problems_of(err, model)
    raise ConfigError(f"{what}: {len(problems)} problem(s)\n  - " + "\n  - ".join(problems), hint=hint) from None


def validate_config(cfg: dict) -> RunConfig:
    """Check a whole run config; one ConfigError lists every problem."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"a run config must be a mapping with 'models' and 'datasets', got {type(cfg).__name__}")
    try:
        return RunConfig.model_validate(cfg)
    except ValidationError as e:
        raise_problems("invalid run config", e, model=RunConfig,
                       hint="fix the listed keys; the README's usage section describes the config")


def validate_settings(settings: dict) -> dict:
    """Check run settings (CLI flags); returns only the ones given (not None)."""
    try:
        checked = RunSettings.model_validate(settings)
    except ValidationError as e:
        raise_problems("invalid options", e, hint="see `roz run --help`")
    return {k: v for k, v in checked.model_dump().items() if v is not None}
