"""Institutional projections and annual actuals: mapping, kinds, determinism, committed files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features import projections as pj
from features.projections import ProjectionsError, build_projections, normalise_projections

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PROJECTIONS_DIR = SHARED_DATA / "projections"
REPO_DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not PROJECTIONS_DIR.is_dir():
        pytest.skip(f"shared projections not found at {PROJECTIONS_DIR}")
    out = tmp_path_factory.mktemp("projections")
    build_projections(PROJECTIONS_DIR, out)
    read = lambda name: pd.read_csv(out / name, dtype=str, keep_default_na=False)  # noqa: E731
    return out, read(pj.PROJECTIONS_OUT), read(pj.ACTUALS_OUT)


def _one(frame: pd.DataFrame, **where: str) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    rows = frame[mask]
    assert len(rows) == 1, f"{where}: {len(rows)} rows"
    return rows.iloc[0]


def test_every_row_kept_and_every_institution_mapped(built):
    _, proj, _ = built
    assert len(proj) == 241
    assert list(proj.columns) == list(pj.PROJECTION_COLUMNS)
    assert set(proj.institution) == {
        "KITA",
        "KIET",
        "MOTIE",
        "KOTRA",
        "BOK",
        "KDI",
        "HRI",
        "LGERI",
        "KEXIM",
        "KCCI",
        "KDB",
        "OECD",
        "NABO",
        "KERI",
        "FKI",
        "KIAF",
    }
    assert (proj.institution.value_counts()[["KIET", "KITA", "MOTIE"]] == [111, 65, 15]).all()
    assert set(proj.kind) <= set(pj.KINDS)
    assert proj.kind.value_counts().to_dict() == {
        "pre-year outlook": 215,
        "mid-year revision": 17,
        "target": 5,
        "survey": 4,
    }


def test_kinds_of_known_rows(built):
    _, proj, _ = built
    revision = _one(proj, institution="KITA", published="2012-06-28")
    assert (revision.kind, revision.target_year, revision.projected_usd_bn) == ("mid-year revision", "2012", "568.5")
    outlook = _one(proj, institution="KITA", published="2012-11-27", target_year="2013")
    assert (outlook.kind, outlook.unique_id, outlook.published_in_target_year) == ("pre-year outlook", "total", "false")
    assert (outlook.projected_usd_bn, outlook.projected_growth_pct) == ("575.0", "4.6")
    # the ministry's January outlook counts as pre-year, flagged as published in the target year
    january = _one(proj, institution="MOTIE", published="2013-01-01")
    assert (january.kind, january.published_in_target_year, january.institution_raw) == (
        "pre-year outlook",
        "true",
        "MKE/MOTIE (trade ministry)",
    )
    assert _one(proj, institution="MOTIE", published="2024-01-24").kind == "target"
    assert _one(proj, institution="MOTIE", published="2024-07-16").kind == "target"
    assert _one(proj, institution="FKI", published="2024-12-20").kind == "survey"
    assert (
        _one(proj, institution="KITA", target_year="2023", scope="total exports (in-year scenario)").kind
        == "mid-year revision"
    )
    # only the citation date is known, and it precedes the target year: not flagged
    cited = _one(proj, institution="BOK", target_year="2022", scope="total exports (customs)")
    assert (cited.published, cited.published_raw, cited.published_in_target_year, cited.kind) == (
        "",
        "(cited 2021-01-10)",
        "false",
        "pre-year outlook",
    )


def test_published_is_iso_only_where_the_raw_text_is_a_date(built):
    _, proj, _ = built
    dated = proj[proj.published != ""]
    assert (dated.published == dated.published_raw).all()
    assert dated.published.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    approx = _one(proj, institution="KIET", published_raw="2025 (H2 outlook repost; '27일')")
    assert approx.published == ""


def test_semiconductor_rows_map_to_the_semiconductor_series(built):
    _, proj, _ = built
    semis = proj[proj.scope.str.startswith("semiconductors")]
    assert len(semis) == 24
    assert (semis.unique_id == "item:semiconductors_ministry").all()
    assert set(proj[proj.unique_id == "item:semiconductors_ministry"].scope) == {
        "semiconductors",
        "semiconductors (mid-year revision)",
        "semiconductors (target, revised)",
    }
    # scopes that are not series of ours stay blank
    for scope in ("SSD", "ICT devices", "13 major industries", "exports to Europe"):
        assert (proj[proj.scope == scope].unique_id == "").all()
    assert _one(proj, scope="exports to China").unique_id == "destination:china"
    assert _one(proj, scope="ships incl. offshore").unique_id == "item:ships"


def test_ranges_and_bounds_keep_their_text_and_leave_the_number_blank(built):
    _, proj, _ = built
    kotra = _one(proj, institution="KOTRA", published="2020-12-21")
    assert (kotra.projected_usd_bn, kotra.projected_usd_bn_raw) == ("", "540-550")
    assert (kotra.projected_growth_pct, kotra.projected_growth_pct_raw) == ("", "6-7")
    # the raw file has 80 levels, 5 of them not plain numbers (>600 twice, >550, 540-550,
    # 600-610), and 234 growth rates, 4 not plain numbers (>2, >4, 6-7, 17-19)
    assert pd.to_numeric(proj.projected_usd_bn.replace("", None)).notna().sum() == 75
    assert pd.to_numeric(proj.projected_growth_pct.replace("", None)).notna().sum() == 230
    assert (proj.projected_usd_bn_raw != "").sum() == 80


def test_rows_are_sorted_and_output_is_deterministic(built, tmp_path):
    out, proj, _ = built
    assert proj.target_year.astype(int).is_monotonic_increasing
    build_projections(PROJECTIONS_DIR, tmp_path)
    for name in (pj.PROJECTIONS_OUT, pj.ACTUALS_OUT):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
        assert b"\r\n" not in (tmp_path / name).read_bytes()


def test_committed_files_equal_a_fresh_build(built):
    out, _, _ = built
    for name in (pj.PROJECTIONS_OUT, pj.ACTUALS_OUT):
        assert (REPO_DATA / name).read_bytes() == (out / name).read_bytes(), (
            f"data/{name} drifted from the builder: rerun build_projections(projections, data)"
        )


def test_actuals(built):
    _, _, actuals = built
    assert len(actuals) == 27
    assert list(actuals.columns) == list(pj.ACTUAL_COLUMNS)
    partial = _one(actuals, year="2025", unique_id="item:semiconductors_ministry")
    assert (partial.partial_year, partial.actual_usd_bn) == ("Jan-Nov", "152.6")
    bound = _one(actuals, year="2014", unique_id="item:semiconductors_ministry")
    assert (bound.actual_usd_bn, bound.actual_usd_bn_raw, bound.actual_growth_pct) == ("", ">60", "9.7")
    # both 2025 totals kept (709.3 customs confirmed, 709.7 preliminary)
    assert sorted(actuals[(actuals.year == "2025") & (actuals.unique_id == "total")].actual_usd_bn) == [
        "709.3",
        "709.7",
    ]


def _raw(**overrides: str) -> pd.DataFrame:
    row = {
        "institution": "KIET",
        "published": "2024-11-25",
        "target_year": "2025",
        "scope": "total exports",
        "projected_usd_bn": "700.2",
        "projected_growth_pct": "2.2",
        "source_url": "u",
        "source_title": "t",
        "note": "",
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_unknown_institution_and_scope_raise_exact_messages():
    with pytest.raises(ProjectionsError) as info:
        normalise_projections(_raw(institution="Samsung Economic Research Institute"))
    assert str(info.value) == (
        "projections.csv line 2, column institution: unknown institution "
        "'Samsung Economic Research Institute'; add it to "
        "features.projections.INSTITUTIONS"
    )
    with pytest.raises(ProjectionsError) as info:
        normalise_projections(_raw(scope="robots (mid-year revision)"))
    assert str(info.value) == (
        "projections.csv line 2, column scope: unknown scope "
        "'robots (mid-year revision)'; add 'robots' to "
        "features.projections.SCOPES"
    )
    with pytest.raises(ProjectionsError) as info:
        normalise_projections(_raw(target_year="next year"))
    assert str(info.value) == ("projections.csv line 2, column target_year: expected a year, found 'next year'")


@pytest.mark.parametrize(
    ("published", "scope", "institution", "kind", "flag"),
    [
        ("2024-11-25", "total exports", "KIET", "pre-year outlook", "false"),
        ("2025-01-01", "total exports (outlook)", "MKE/MOTIE (trade ministry)", "pre-year outlook", "true"),
        ("2025-03-10", "total exports", "KDI", "mid-year revision", "true"),
        ("2025-05-27", "total exports (mid-year revision)", "KIET", "mid-year revision", "true"),
        ("2025-01-02", "total exports (target)", "MKE/MOTIE (trade ministry)", "target", "true"),
        ("2024-12-20", "total exports (survey)", "FKI company survey", "survey", "false"),
        ("(cited 2025-01-10)", "total exports", "Bank of Korea", "pre-year outlook", "true"),
    ],
)
def test_kind_rules(published, scope, institution, kind, flag):
    row = normalise_projections(_raw(published=published, scope=scope, institution=institution)).iloc[0]
    assert (row["kind"], row["published_in_target_year"]) == (kind, flag)
