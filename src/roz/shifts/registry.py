"""Shift specs: ``corruption:fog:3``, ``corruption:all`` (the 15×5 grid), ``typographic[:k=v,...]``,
``stylize:k=v,...``, ``perturbation:rotate[:2]`` / ``perturbation:all`` (ImageNet-P sequences),
``word-cards[:k=v,...]`` (the reading probe). A spec becomes a dict (recorded with the result) and then a ``Shift``."""

from __future__ import annotations

from typing import Callable

from roz.errors import RozError
from roz.registry import Registry

SHIFT_KINDS = ("corruption", "typographic", "stylize", "perturbation", "word-cards")


def _value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def parse_shift(spec: str | dict | None) -> list[dict]:
    """One spec string -> a list of shift dicts (``corruption:all`` expands to 75)."""
    if spec is None or spec == "" or spec == "none":
        return [{}]
    if isinstance(spec, dict):
        return [dict(spec)]
    kind, _, rest = spec.partition(":")
    if kind not in SHIFT_KINDS:
        raise RozError(f"unknown shift {spec!r}", hint=f"shifts: {', '.join(SHIFT_KINDS)}; e.g. corruption:fog:3")
    if kind == "corruption":
        from roz.shifts.corruptions import CORRUPTIONS, EXTRA_CORRUPTIONS, IMPLEMENTATION_VERSION

        name, _, sev = rest.partition(":")
        if name in ("all", ""):
            names = list(CORRUPTIONS)
        elif name == "all+extra":
            names = list(CORRUPTIONS) + list(EXTRA_CORRUPTIONS)
        else:
            names = name.split(",")
            bad = [n for n in names if n not in CORRUPTIONS + EXTRA_CORRUPTIONS]
            if bad:
                raise RozError(f"unknown corruption(s) {bad} in {spec!r}",
                               hint=f"valid: {', '.join(CORRUPTIONS + EXTRA_CORRUPTIONS)}, or all / all+extra")
        sevs = [1, 2, 3, 4, 5] if sev in ("", "all") else [int(s) for s in sev.split(",")]
        # "version" enters the unit's hash (not its name): results of an older engine are not reused
        return [{"name": "corruption", "corruption": n, "severity": s, "version": IMPLEMENTATION_VERSION}
                for n in names for s in sevs]
    if kind == "perturbation":
        return _parse_perturbation(spec, rest)
    if kind == "word-cards":
        return [_parse_word_cards(spec, rest)]
    return [{"name": kind, **_options(spec, rest)}]


def _options(spec: str, rest: str) -> dict:
    """``k=v,k2=v2`` -> dict with typed values."""
    params = {}
    for kv in filter(None, rest.split(",")):
        k, eq, v = kv.partition("=")
        if not eq:
            raise RozError(f"shift option {kv!r} in {spec!r} is not KEY=VALUE")
        params[k] = _value(v)
    return params


def _perturbation_names(spec: str, name: str) -> list[str]:
    from roz.shifts.perturbations import ALL_PERTURBATIONS, PERTURBATIONS

    if name in ("all", ""):
        return list(PERTURBATIONS)
    if name == "all+extra":
        return list(ALL_PERTURBATIONS)
    names = name.split(",")
    bad = [n for n in names if n not in ALL_PERTURBATIONS]
    if bad:
        raise RozError(f"unknown perturbation(s) {bad} in {spec!r}",
                       hint=f"valid: {', '.join(ALL_PERTURBATIONS)}, or all (the 10 test perturbations) / all+extra")
    return names


def _parse_perturbation(spec: str, rest: str) -> list[dict]:
    """``perturbation:NAME[,NAME..][:D[,D..]]``, ``perturbation:all`` or the KEY=VALUE form
    ``perturbation:perturbation=NAME,difficulty=D[,quantize=false]``; difficulty defaults to 1."""
    if "=" in rest:
        params = _options(spec, rest)
        unknown = set(params) - {"perturbation", "difficulty", "quantize"}
        if unknown:
            raise RozError(f"unknown perturbation option(s) {sorted(unknown)} in {spec!r}",
                           hint="options: perturbation, difficulty, quantize")
        names = _perturbation_names(spec, str(params.pop("perturbation", "all")))
        diffs = [params.pop("difficulty", 1)]
    else:
        name, _, diff = rest.partition(":")
        names = _perturbation_names(spec, name)
        diffs = [1] if diff in ("", "1") else (["1", "2", "3"] if diff == "all" else diff.split(","))
        params = {}
    try:
        diffs = [int(d) for d in diffs]
    except ValueError:
        raise RozError(f"perturbation difficulty in {spec!r} must be 1, 2 or 3") from None
    if any(d not in (1, 2, 3) for d in diffs):
        raise RozError(f"perturbation difficulty in {spec!r} must be 1, 2 or 3")
    extra = {} if params.get("quantize", True) is True else {"quantize": bool(params["quantize"])}
    return [{"name": "perturbation", "perturbation": n, "difficulty": d, **extra} for n in names for d in diffs]


def _parse_word_cards(spec: str, rest: str) -> dict:
    """``word-cards[:fonts=heldout|train|STEM,STEM..][,min_width=..,max_width=..,min_height=..,
    max_height=..,min_contrast=..,min_px=..]``: a bare item after ``fonts=`` continues the font
    list. ``fonts`` is always filled in (``word-cards`` and ``word-cards:fonts=heldout`` are one
    unit) and ``version`` enters the unit id (``roz.shifts.word_cards.VERSION``)."""
    from roz.shifts.word_cards import DEFAULTS, VERSION, resolve_fonts

    params: dict = {}
    last = None
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        if not eq and last == "fonts":
            params["fonts"] += f",{item}"
            continue
        if not eq:
            raise RozError(f"shift option {item!r} in {spec!r} is not KEY=VALUE")
        if k not in DEFAULTS:
            raise RozError(f"unknown word-cards option {k!r} in {spec!r}", hint=f"options: {', '.join(DEFAULTS)}")
        params[k], last = (v if k == "fonts" else _value(v)), k
    params.setdefault("fonts", DEFAULTS["fonts"])
    resolve_fonts(params["fonts"])  # a bad font fails when the config is read, not when the unit runs
    return {"name": "word-cards", **params, "version": VERSION}


def _corruption(opts: dict, dataset):
    from roz.shifts.corruptions import Corruption

    return Corruption(opts["corruption"], int(opts["severity"]), jpeg_roundtrip=bool(opts.get("jpeg_roundtrip", False)),
                      frost_textures=str(opts.get("frost_textures", "reference")))


def _typographic(opts: dict, dataset):
    from roz.shifts.typographic import Typographic

    if dataset is None:
        raise RozError("the typographic shift needs a dataset (it writes wrong class names)")
    return Typographic(list(dataset.labels.names), **opts)


def _word_cards(opts: dict, dataset):
    from roz.shifts.word_cards import VERSION, WordCards

    if dataset is None:
        raise RozError("the word-cards probe needs a dataset (it writes the true class names)")
    opts = dict(opts)
    version = opts.pop("version", VERSION)
    if version != VERSION:
        raise RozError(f"word-cards version {version} is not this ROZ's ({VERSION})",
                       hint="re-plan the run with this version of ROZ")
    try:
        return WordCards(list(dataset.labels.names), **opts)
    except TypeError as e:
        raise RozError(f"bad word-cards options {opts}: {e}", hint="see roz.shifts.word_cards.DEFAULTS") from None


def _stylize(opts: dict, dataset):
    from roz.shifts.stylize import AdaINStylize

    return AdaINStylize(**opts)


def _perturbation(opts: dict, dataset):
    """A sequence generator ([B,3,H,W] -> [B,T,3,H,W]), run by engine.sequence_unit."""
    from roz.shifts.perturbations import PerturbationSequence

    try:
        return PerturbationSequence(str(opts["perturbation"]), int(opts.get("difficulty", 1)),
                                    quantize=bool(opts.get("quantize", True)))
    except (KeyError, ValueError) as e:
        raise RozError(f"bad perturbation shift {dict(name='perturbation', **opts)}: {e}") from None


#: Shift kinds: ``factory(options, dataset) -> Shift``. Built in: the four kinds of SHIFT_KINDS;
#: ``register_shift_kind`` adds one (``create_shift`` builds it; spec strings of the built-in grammar
#: stay those of SHIFT_KINDS, other kinds are passed as dicts).
SHIFT_FACTORIES: Registry[Callable[[dict, object], object]] = Registry(
    "shift kind", RozError, hint=f"shifts: {', '.join(SHIFT_KINDS)}; e.g. corruption:fog:3")


def register_shift_kind(name: str, factory: Callable[[dict, object], object]) -> None:
    SHIFT_FACTORIES.register(name, factory)


for _name, _factory in (("corruption", _corruption), ("typographic", _typographic), ("stylize", _stylize),
                        ("perturbation", _perturbation), ("word-cards", _word_cards)):
    register_shift_kind(_name, _factory)


def create_shift(d: dict, dataset=None):
    """A ``Shift`` instance from a shift dict; ``dataset`` supplies class names where needed."""
    if not d:
        return None
    kind = d["name"]
    if kind not in SHIFT_FACTORIES:
        raise RozError(f"shift {kind!r} cannot be applied as a per-image transform")
    return SHIFT_FACTORIES.get(kind)({k: v for k, v in d.items() if k != "name"}, dataset)
