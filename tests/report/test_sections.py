"""The section registry: a section added to ``SECTIONS`` is collected, written, rendered (escaped)
and reported in report.json, with no other change; an absent one says why or is left out."""

from __future__ import annotations

import json

from roz.report import build as build_module
from roz.report import build_report, sections
from roz.report import html as H
from roz.report.sections.base import Section

from support.report_fixtures import EVIL


class UnitCount(Section):
    sid = "unit-count"
    title = "Units per model"

    def collect(self, ctx):
        counts: dict[str, int] = {}
        for u in ctx.units:
            counts[u.model] = counts.get(u.model, 0) + 1
        return counts

    def write(self, counts, ctx, files):
        import pandas as pd

        files.table("unit_count", pd.DataFrame({"model": list(counts), "units": list(counts.values())}))

    def render(self, counts, ctx, files):
        return f"<p>{H.esc(EVIL)}: {len(counts)} models</p><p>{files.links('unit_count')}</p>"

    def to_json(self, counts, ctx):
        return {"unit_count": counts}


class Never(Section):
    sid = "never"
    title = "Never here"

    def render(self, data, ctx, files):  # never called: collect() gives None, so absent() is used
        raise AssertionError("an absent section is not rendered")


class LeftOut(Never):
    sid = "left-out"

    def absent(self, ctx):
        return None


def test_registered_section_is_built(fixture_run, tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "SECTIONS", [*sections.SECTIONS[:2], UnitCount(), Never(), LeftOut()])
    index = build_report(fixture_run, tmp_path / "r", formats=("png",), n_boot=50)
    text = index.read_text()
    assert '<section id="unit-count">' in text and '<a href="#unit-count">Units per model</a>' in text
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;: 9 models" in text
    assert 'href="tables/unit_count.csv"' in text and (tmp_path / "r" / "tables" / "unit_count.parquet").is_file()
    assert "absent: no never here in this run" in text and 'id="left-out"' not in text
    counts = json.loads((tmp_path / "r" / "report.json").read_text())["unit_count"]
    assert counts["resnet50"] == 4 + 4 + 1 + 1 + 1  # natural datasets, corruptions, attack, typographic, ImageNet-P


def test_attack_figures_are_labelled_as_bounds(tmp_path):
    """Robust accuracy / minimal eps of an attack are upper bounds: the table says so per row and the
    section says why (cross-entropy attacks are the loosest)."""
    import pandas as pd

    from roz.report.sections.attacks import attack_data, attack_notes

    class Row:  # the attack fields a unit row carries (report.context.UnitRow)
        kind, model, role, dataset = "attack", "m", "standard", "imagenet-val"
        metrics = {"clean_acc": 80.0, "robust_acc@8/255": 10.0}
        attack = {"name": "pgd", "eps": [8 / 255], "loss": "ce",
                  "bounds": {"robust_acc": "upper", "success_rate": "lower", "min_eps": "upper"}}

    att = attack_data([Row()])
    row = att["table"].iloc[0]
    assert (row["loss"], row["robust_acc is"], row["min_eps is"]) == ("ce", "upper bound", "upper bound")
    notes = " ".join(attack_notes(att))
    assert "upper bounds" in notes and "loss = ce" in notes
    assert isinstance(att["curves"], pd.DataFrame)
