"""DuckDB over run directories: the worked example of docs/results.md (read from the doc itself)
on a tiny real run, the documented one-liner over the Parquet files, and bad SQL as a RozError."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from roz import api
from roz.engine.store import ResultStore
from roz.errors import RozError

DOC = Path(__file__).resolve().parents[2] / "docs" / "results.md"


def _doc_sql() -> str:
    text = DOC.read_text()
    block = text.split("<!-- tested: tests/engine/test_query.py reads the SQL below -->", 1)[1]
    return re.search(r"```sql\n(.*?)```", block, re.S).group(1)


def _by_pandas(run):
    store = ResultStore(run, create=False)
    rows = {}
    for rec in store.records():
        if rec.kind == "eval" and (rec.shift or {}).get("corruption") == "fog":
            rows[rec.model.name] = store.samples(rec.unit_id).set_index("path")
    clip, base = rows["clip"], rows["baseline"]
    keep = sorted(p for p in clip.index if clip.at[p, "correct"] and not base.at[p, "correct"])
    return [(p, clip.at[p, "target_name"], base.at[p, "pred_name"]) for p in keep]


def test_documented_fog_query_matches_pandas(tiny_run, roz_cli):
    want = _by_pandas(tiny_run["run"])
    assert want  # the tiny run has such images, so the comparison is not vacuous
    got = api.query(tiny_run["run"], _doc_sql())
    assert list(got.itertuples(index=False, name=None)) == want
    code, out, err = roz_cli("query", tiny_run["run"], _doc_sql(), "--format", "csv")
    assert code == 0, err
    assert out.splitlines()[0] == "path,target_name,baseline_pred" and len(out.splitlines()) == len(want) + 1


def test_metrics_and_samples_views_agree(tiny_run):
    got = api.query(tiny_run["run"], "SELECT s.unit_id, 100 * avg(s.correct::INT) AS acc, any_value(m.top1) AS top1 "
                    "FROM samples s JOIN metrics m USING (unit_id) WHERE s.kind = 'eval' GROUP BY s.unit_id")
    assert len(got) == 4 and (got["acc"] - got["top1"]).abs().max() < 1e-9


def test_documented_parquet_one_liner(tiny_run):
    line = next(x for x in DOC.read_text().splitlines() if x.startswith('python -c "import duckdb'))
    sql = re.search(r'duckdb\.sql\(\\"(.*)\\"\)\.show', line).group(1).replace("RUN", str(tiny_run["run"]))
    got = duckdb.sql(sql).df()
    metrics = api.results_of(tiny_run["run"])
    metrics = metrics[metrics["kind"] == "eval"]
    assert sorted(got["top1"].round(9)) == sorted(metrics["top1"].round(9))
    assert set(got["model"]) == {"clip", "baseline"}


def test_bad_sql_is_a_roz_error(tiny_run, roz_cli):
    with pytest.raises(RozError, match="query failed"):
        api.query(tiny_run["run"], "SELECT nope FROM samples")
    code, _, err = roz_cli("query", tiny_run["run"])
    assert code == 2 and "needs a run directory and an SQL query" in err
