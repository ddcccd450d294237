"""The benchmark's series and their fixed tasks: one table that fetch, run and the docs all read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Series:
    """One public series and the one task it is scored on (70/15/15 chronological, stride-1 test windows)."""

    name: str
    package: str  # the PyPI package whose wheel ships the data
    file: str  # path of the data file inside that package
    licence: str  # of the package, then of the data where it differs
    kind: str  # weather, energy, CO2, prices, opinion
    frequency: str  # pandas alias; "B" series use rnnforecast's calendar: steps
    target: str
    features: list[str]  # model inputs, the target included
    units: str  # of the target
    input_length: int
    horizon: int
    season: int  # seasonal-naive season, in steps
    rows: int  # after fetch: regular steps, the most recent MAX_ROWS at most
    description: str = ""
    calendar: str = "regular"
    columns: dict[str, str] = field(default_factory=dict)  # extra notes per column

    @property
    def csv(self) -> str:
        return f"{self.name}.csv"

    @property
    def multivariate(self) -> bool:
        return len(self.features) > 1


MAX_ROWS = 10_000  # the most recent rows kept per series: a full run stays near 20 CPU-minutes

SERIES: list[Series] = [
    Series(
        name="seattle_temps",
        rows=8760,
        package="vega_datasets",
        file="_data/seattle-temps.csv",
        licence="BSD-3-Clause (package); NOAA observations, public domain",
        kind="weather",
        frequency="h",
        target="temp",
        features=["temp"],
        units="°F",
        input_length=24,
        horizon=12,
        season=24,
        description="hourly normal air temperature (NOAA climate normals, smooth), Seattle, 2010",
    ),
    Series(
        name="sf_temps",
        rows=8760,
        package="vega_datasets",
        file="_data/sf-temps.csv",
        licence="BSD-3-Clause (package); NOAA observations, public domain",
        kind="weather",
        frequency="h",
        target="sf_temp",
        features=["sf_temp", "seattle_temp"],
        units="°F",
        input_length=24,
        horizon=12,
        season=24,
        description="hourly normal air temperature (climate normals), San Francisco, 2010, with Seattle's as a second input",
    ),
    Series(
        name="taylor",
        rows=4032,
        package="pmdarima",
        file="datasets/taylor.py",
        licence="MIT (package); data from J. W. Taylor (2003), as in R forecast::taylor (GPL-3)",
        kind="energy",
        frequency="30min",
        target="demand",
        features=["demand"],
        units="MW",
        input_length=48,
        horizon=12,
        season=336,
        description="half-hourly electricity demand, England and Wales, 5 June - 27 August 2000",
    ),
    Series(
        name="co2",
        rows=2284,
        package="statsmodels",
        file="datasets/co2/co2.csv",
        licence="BSD-3-Clause (package); Scripps/NOAA Mauna Loa record, public domain",
        kind="CO2",
        frequency="W-SAT",
        target="co2",
        features=["co2"],
        units="ppm",
        input_length=52,
        horizon=4,
        season=52,
        description="weekly atmospheric CO2 at Mauna Loa, 1958-2001 (59 missing weeks interpolated by fetch)",
    ),
    Series(
        name="brent",
        rows=8195,
        package="river",
        file="drift/datasets/brent_crude_oil.csv",
        licence="BSD-3-Clause (package); US EIA price series via the TCPD, public domain",
        kind="prices",
        frequency="B",
        calendar="steps",
        target="price",
        features=["price"],
        units="USD/barrel",
        input_length=20,
        horizon=5,
        season=5,
        description="daily Brent crude spot price, trading days, 1987-2019",
    ),
    Series(
        name="approval",
        rows=1001,
        package="river",
        file="datasets/trump_approval.csv.gz",
        licence="BSD-3-Clause (package); FiveThirtyEight poll data, CC BY 4.0",
        kind="opinion",
        frequency="D",
        target="five_thirty_eight",
        features=["five_thirty_eight", "gallup", "ipsos", "morning_consult", "rasmussen", "you_gov"],
        units="% approve",
        input_length=14,
        horizon=7,
        season=7,
        description="daily presidential approval, 538 average with five pollsters as inputs, 2017-2019",
    ),
]

BY_NAME = {s.name: s for s in SERIES}
