"""Synthetic tables with realistic structure: themed categories, fitting series names, plausible values.

Each theme knows how many categories it can supply (a survey has at most 7 answers, a year at most
12 months), so `sample_table` picks among the themes that can honour the requested shape. Values follow
the shapes real data has (compound growth, seasons, shares summing to 100) and are rounded the way
such data is published, so that a chart reads like a real one and its numbers can be asked about.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from chart_edit.table import Table

MIN_CATEGORIES = 2
MAX_CATEGORIES = 60
MIN_SERIES = 1
MAX_SERIES = 6
LAST_YEAR = 2024

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
REGIONS = ("North", "South", "East", "West", "Central", "Coastal")
PRODUCT_LINES = ("Laptops", "Smartphones", "Tablets", "Headphones", "Smartwatches", "Cameras")
SECTORS = ("Energy", "Transport", "Industry", "Agriculture", "Buildings", "Waste")
SEGMENTS = ("Cloud", "Hardware", "Services", "Advertising", "Licensing", "Consumer")
CHANNELS = ("Organic search", "Direct", "Social", "Email", "Paid search", "Referral")
STORES = ("Downtown", "Airport", "Harbour", "Mall", "Station", "University")
CONDITIONS = ("Baseline", "After coffee", "Sleep-deprived", "With music", "Distracted", "Practice")
DAY_TYPES = ("Winter weekday", "Winter weekend", "Spring weekday", "Summer weekday", "Summer weekend", "Autumn weekday")
AGE_BANDS = ("18–24", "25–34", "35–44", "45–54", "55–64", "65+")
PRODUCTS = (
    "Laptops",
    "Smartphones",
    "Tablets",
    "Headphones",
    "Smartwatches",
    "Cameras",
    "Monitors",
    "Printers",
    "Speakers",
    "Game consoles",
    "Routers",
    "Keyboards",
)
DEPARTMENTS = (
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Human resources",
    "Legal",
    "Operations",
    "Customer support",
    "Research",
    "IT",
    "Facilities",
    "Procurement",
    "Logistics",
    "Quality assurance",
    "Design",
    "Communications",
)
# Fictional towns and club suffixes: league tables of invented clubs, so no real club gets made-up points.
TOWNS = (
    "Ashford",
    "Bramley",
    "Carlton",
    "Dunmore",
    "Eastwick",
    "Fairhaven",
    "Glenrock",
    "Harrow",
    "Ironbridge",
    "Kingsport",
    "Lakeside",
    "Millbrook",
    "Northgate",
    "Oakridge",
    "Portwell",
    "Queensbury",
    "Redcliff",
    "Stonebridge",
    "Thornton",
    "Westfield",
)
CLUB_SUFFIXES = ("United", "Rovers", "City", "Athletic", "Wanderers", "FC")
CITIES = (
    "Amsterdam",
    "Athens",
    "Bangkok",
    "Barcelona",
    "Berlin",
    "Bogotá",
    "Boston",
    "Brussels",
    "Budapest",
    "Cairo",
    "Chicago",
    "Copenhagen",
    "Delhi",
    "Dublin",
    "Dubai",
    "Hanoi",
    "Helsinki",
    "Istanbul",
    "Jakarta",
    "Johannesburg",
    "Lagos",
    "Lima",
    "Lisbon",
    "London",
    "Madrid",
    "Manila",
    "Melbourne",
    "Mexico City",
    "Milan",
    "Montreal",
    "Nairobi",
    "Osaka",
    "Paris",
    "Prague",
    "Seoul",
    "Singapore",
    "Stockholm",
    "Toronto",
    "Vienna",
    "Warsaw",
)
# Approximate populations in millions: they anchor country magnitudes so GDP and exports scale sensibly.
COUNTRY_POPULATION = {
    "Argentina": 46,
    "Australia": 26,
    "Austria": 9,
    "Bangladesh": 171,
    "Belgium": 12,
    "Brazil": 216,
    "Canada": 39,
    "Chile": 20,
    "China": 1410,
    "Colombia": 52,
    "Denmark": 6,
    "Egypt": 113,
    "Ethiopia": 127,
    "Finland": 6,
    "France": 68,
    "Germany": 84,
    "Ghana": 34,
    "Greece": 10,
    "India": 1430,
    "Indonesia": 278,
    "Ireland": 5,
    "Italy": 59,
    "Japan": 124,
    "Kenya": 55,
    "Mexico": 129,
    "Morocco": 38,
    "Netherlands": 18,
    "Nigeria": 224,
    "Norway": 6,
    "Pakistan": 240,
    "Peru": 34,
    "Philippines": 117,
    "Poland": 37,
    "Portugal": 10,
    "South Africa": 60,
    "South Korea": 52,
    "Spain": 48,
    "Sweden": 11,
    "Turkey": 85,
    "Vietnam": 99,
}
SURVEY_SCALES = {
    2: ("No", "Yes"),
    3: ("Disagree", "Neutral", "Agree"),
    4: ("Strongly disagree", "Disagree", "Agree", "Strongly agree"),
    5: ("Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"),
    6: ("Strongly disagree", "Disagree", "Slightly disagree", "Slightly agree", "Agree", "Strongly agree"),
    7: ("Strongly disagree", "Disagree", "Somewhat disagree", "Neutral", "Somewhat agree", "Agree", "Strongly agree"),
}
SURVEY_STATEMENTS = (
    "Public transport in my city is reliable",
    "Remote work makes me more productive",
    "I trust online product reviews",
    "My neighbourhood feels safe at night",
    "I would pay more for locally grown food",
)


@dataclass(frozen=True)
class _Climate:
    """Rough climate of a city: enough for monthly temperatures and rainfall with the right seasons."""

    mean_c: float
    swing_c: float
    southern: bool
    rain_mm: float
    wettest_month: int
    rain_peakedness: float


CLIMATES = {
    "Lisbon": _Climate(17.0, 6.0, False, 720, 11, 1.2),
    "Oslo": _Climate(6.5, 9.5, False, 760, 8, 0.3),
    "Cairo": _Climate(22.5, 7.0, False, 25, 0, 1.5),
    "Sydney": _Climate(18.5, 4.5, True, 1200, 3, 0.4),
    "Buenos Aires": _Climate(18.0, 6.0, True, 1200, 2, 0.4),
    "Toronto": _Climate(9.0, 12.5, False, 830, 6, 0.1),
    "Mumbai": _Climate(27.5, 2.0, False, 2200, 6, 3.0),
    "Tokyo": _Climate(16.0, 10.5, False, 1530, 8, 0.6),
    "Moscow": _Climate(6.0, 13.0, False, 700, 6, 0.4),
    "Cape Town": _Climate(17.0, 4.0, True, 520, 5, 1.2),
    "Singapore": _Climate(27.5, 0.8, False, 2400, 11, 0.3),
}


@dataclass(frozen=True)
class Theme:
    """One kind of table: how many categories it can supply and how to build it.

    Attributes:
        name: the `synthetic:<name>` source tag.
        max_categories: the most categories it has (at least 2); every theme supplies 1..6 series.
        build: `(rng, num_categories, num_series) -> Table`.
    """

    name: str
    max_categories: int
    build: Callable[[np.random.Generator, int, int], Table]


def sample_table(rng: np.random.Generator, *, num_categories: int, num_series: int) -> Table:
    """A table of a random theme that can supply `num_categories` categories and `num_series` series.

    Args:
        rng: the only source of randomness; the same state gives the same table.
        num_categories: categories (rows) wanted, 2..60.
        num_series: series (columns) wanted, 1..6.

    Raises:
        ValueError: a requested size is outside what any theme supports.
    """
    if not MIN_CATEGORIES <= num_categories <= MAX_CATEGORIES:
        raise ValueError(f"num_categories must be in [{MIN_CATEGORIES}, {MAX_CATEGORIES}], got {num_categories}")
    if not MIN_SERIES <= num_series <= MAX_SERIES:
        raise ValueError(f"num_series must be in [{MIN_SERIES}, {MAX_SERIES}], got {num_series}")
    eligible = [theme for theme in THEMES if theme.max_categories >= num_categories]
    theme = eligible[int(rng.integers(len(eligible)))]
    return theme.build(rng, num_categories, num_series)


def _pick(rng: np.random.Generator, pool: Sequence[str], k: int) -> list[str]:
    """`k` distinct items in pool order, so ordered pools (years, scales) stay ordered."""
    return [pool[i] for i in np.sort(rng.choice(len(pool), size=k, replace=False))]


def _window(rng: np.random.Generator, pool: Sequence[str], n: int) -> list[str]:
    """`n` consecutive items of `pool` from a random start (months, weeks, hours)."""
    start = int(rng.integers(len(pool) - n + 1))
    return list(pool[start : start + n])


def _years(rng: np.random.Generator, n: int, *, latest: int = LAST_YEAR) -> list[str]:
    """`n` consecutive years ending at most at `latest`, and at most 25 years before it."""
    start = int(rng.integers(latest - n + 1 - 25, latest - n + 2))
    return [str(start + i) for i in range(n)]


def _growth(rng: np.random.Generator, n: int, k: int, *, level: float, rate: float, noise: float) -> np.ndarray:
    """`[k, n]` compound growth from per-series levels and rates, with multiplicative noise."""
    levels = level * rng.lognormal(0.0, 0.5, size=(k, 1))
    rates = rate + rng.normal(0.0, abs(rate) / 2 + 0.01, size=(k, 1))
    wobble = np.clip(1.0 + noise * rng.standard_normal((k, n)), 0.3, None)
    return levels * (1.0 + rates) ** np.arange(n) * wobble


def _season(offsets: Sequence[int], period: int, peak: float) -> np.ndarray:
    """`[n]` cosine that is 1 at `peak` and -1 half a period away."""
    return np.cos(2 * np.pi * (np.asarray(offsets, dtype=float) - peak) / period)


def _rows(values: np.ndarray, decimals: int) -> tuple[tuple[float, ...], ...]:
    """Round like published data; a series that rounds flat gets one step on its last value.

    A flat series would make value-change edits and questions about the maximum ill-defined.
    """
    rounded = np.round(values, decimals)
    step = 10.0**-decimals
    for row in rounded:
        if np.all(row == row[0]):
            row[-1] = round(row[-1] + step, decimals)
    return tuple(tuple(float(v) for v in row) for row in rounded)


def _by(series: Sequence[str], single: str, multi: str) -> str:
    """Title for one series (which names it) or several (which names their dimension)."""
    return single.format(series[0]) if len(series) == 1 else multi


def _span(labels: Sequence[str]) -> str:
    return f"{labels[0]}–{labels[-1]}"


def _yearly_revenue(rng: np.random.Generator, n: int, k: int) -> Table:
    years, series = _years(rng, n), _pick(rng, REGIONS, k)
    values = _growth(rng, n, k, level=120.0, rate=0.05, noise=0.06)
    title = _by(series, "Annual revenue, {} region, ", "Annual revenue by region, ") + _span(years)
    return Table(
        title, "Year", tuple(years), tuple(series), _rows(values, 1), "Revenue", "USD m", "synthetic:yearly_revenue"
    )


def _yearly_population(rng: np.random.Generator, n: int, k: int) -> Table:
    years, series = _years(rng, n), _pick(rng, REGIONS, k)
    values = _growth(rng, n, k, level=3.0, rate=0.012, noise=0.004)
    title = _by(series, "Population of the {} region, ", "Population by region, ") + _span(years)
    return Table(
        title,
        "Year",
        tuple(years),
        tuple(series),
        _rows(values, 2),
        "Population",
        "million",
        "synthetic:yearly_population",
    )


def _yearly_emissions(rng: np.random.Generator, n: int, k: int) -> Table:
    years, series = _years(rng, n), _pick(rng, SECTORS, k)
    t = np.arange(n)
    peak = rng.uniform(0.2, 0.9, size=(k, 1)) * n
    # Rise until a peak year, then decline: the usual shape of a sector's emissions since 1990.
    shape = np.where(t < peak, 1.0 + 0.02 * (t - peak), 1.0 - 0.025 * (t - peak))
    levels = 80.0 * rng.lognormal(0.0, 0.6, size=(k, 1))
    values = levels * np.clip(shape, 0.15, None) * (1.0 + 0.03 * rng.standard_normal((k, n)))
    title = _by(series, "CO₂ emissions from {}, ", "CO₂ emissions by sector, ") + _span(years)
    return Table(
        title,
        "Year",
        tuple(years),
        tuple(series),
        _rows(values, 1),
        "Emissions",
        "Mt CO₂",
        "synthetic:yearly_emissions",
    )


def _monthly_temperature(rng: np.random.Generator, n: int, k: int) -> Table:
    months, cities = _window(rng, MONTHS, n), _pick(rng, tuple(CLIMATES), k)
    offsets = [MONTHS.index(m) for m in months]
    rows = []
    for city in cities:
        c = CLIMATES[city]
        # Warmest in July north of the equator, in January south of it.
        seasonal = c.swing_c * _season(offsets, 12, 0.0 if c.southern else 6.0)
        rows.append(c.mean_c + seasonal + rng.normal(0.0, 0.8, size=n))
    year = int(rng.integers(2010, LAST_YEAR + 1))
    title = _by(cities, "Average monthly temperature in {}, ", "Average monthly temperature by city, ") + str(year)
    return Table(
        title,
        "Month",
        tuple(months),
        tuple(cities),
        _rows(np.array(rows), 1),
        "Temperature",
        "°C",
        "synthetic:monthly_temperature",
    )


def _monthly_rainfall(rng: np.random.Generator, n: int, k: int) -> Table:
    months, cities = _window(rng, MONTHS, n), _pick(rng, tuple(CLIMATES), k)
    offsets = [MONTHS.index(m) for m in months]
    rows = []
    for city in cities:
        c = CLIMATES[city]
        # A von Mises-shaped wet season: peakedness 0 is even rain, 3 is a monsoon.
        weights = np.exp(c.rain_peakedness * _season(range(12), 12, c.wettest_month))
        monthly = c.rain_mm * weights / weights.sum()
        rows.append(monthly[offsets] * rng.lognormal(0.0, 0.3, size=n))
    year = int(rng.integers(2010, LAST_YEAR + 1))
    title = _by(cities, "Monthly rainfall in {}, ", "Monthly rainfall by city, ") + str(year)
    return Table(
        title,
        "Month",
        tuple(months),
        tuple(cities),
        _rows(np.array(rows), 0),
        "Rainfall",
        "mm",
        "synthetic:monthly_rainfall",
    )


def _monthly_sales(rng: np.random.Generator, n: int, k: int) -> Table:
    months, series = _window(rng, MONTHS, n), _pick(rng, PRODUCT_LINES, k)
    offsets = [MONTHS.index(m) for m in months]
    # Sales peak around December (holidays) with product-specific strength.
    holiday = rng.uniform(0.1, 0.5, size=(k, 1)) * _season(offsets, 12, 11.0)
    values = _growth(rng, n, k, level=1500.0, rate=0.01, noise=0.08) * (1.0 + holiday)
    year = int(rng.integers(2010, LAST_YEAR + 1))
    title = _by(series, "Monthly sales of {}, ", "Monthly sales by product line, ") + str(year)
    return Table(
        title, "Month", tuple(months), tuple(series), _rows(values, 0), "Units sold", "units", "synthetic:monthly_sales"
    )


def _weekly_visits(rng: np.random.Generator, n: int, k: int) -> Table:
    weeks = _window(rng, [f"Week {i}" for i in range(1, 53)], n)
    series = _pick(rng, CHANNELS, k)
    offsets = [int(w.split()[1]) for w in weeks]
    summer_dip = 1.0 + rng.uniform(0.05, 0.25, size=(k, 1)) * _season(offsets, 52, 2.0)
    values = _growth(rng, n, k, level=12000.0, rate=0.004, noise=0.07) * summer_dip
    year = int(rng.integers(2015, LAST_YEAR + 1))
    title = _by(series, "Weekly website visits from {}, ", "Weekly website visits by channel, ") + str(year)
    return Table(
        title, "Week", tuple(weeks), tuple(series), _rows(values, 0), "Visits", "visits", "synthetic:weekly_visits"
    )


def _daily_orders(rng: np.random.Generator, n: int, k: int) -> Table:
    year = int(rng.integers(2018, LAST_YEAR + 1))
    start = dt.date(year, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 - n)))
    dates = [start + dt.timedelta(days=i) for i in range(n)]
    labels = [f"{MONTHS[d.month - 1]} {d.day}" for d in dates]
    series = _pick(rng, STORES, k)
    # Orders rise towards the weekend: weekday() is 0 on Monday, 5 on Saturday.
    weekly = 1.0 + rng.uniform(0.1, 0.4, size=(k, 1)) * _season([d.weekday() for d in dates], 7, 5.0)
    values = _growth(rng, n, k, level=140.0, rate=0.002, noise=0.12) * weekly
    title = _by(series, "Daily orders at the {} store, ", "Daily orders by store, ") + f"{_span(labels)} {year}"
    return Table(
        title, "Date", tuple(labels), tuple(series), _rows(values, 0), "Orders", "orders", "synthetic:daily_orders"
    )


def _quarterly_revenue(rng: np.random.Generator, n: int, k: int) -> Table:
    latest_start = LAST_YEAR - (n + 2) // 4  # so that the last quarter falls in LAST_YEAR at the latest
    first_year = int(rng.integers(latest_start - 10, latest_start + 1))
    first_quarter = int(rng.integers(4))
    quarters = [f"{first_year + (first_quarter + i) // 4} Q{(first_quarter + i) % 4 + 1}" for i in range(n)]
    series = _pick(rng, SEGMENTS, k)
    q4_bump = 1.0 + rng.uniform(0.0, 0.25, size=(k, 1)) * _season([first_quarter + i for i in range(n)], 4, 3.0)
    values = _growth(rng, n, k, level=400.0, rate=0.015, noise=0.05) * q4_bump
    title = _by(series, "Quarterly revenue, {} segment, ", "Quarterly revenue by segment, ") + _span(quarters)
    return Table(
        title,
        "Quarter",
        tuple(quarters),
        tuple(series),
        _rows(values, 1),
        "Revenue",
        "USD m",
        "synthetic:quarterly_revenue",
    )


def _country_indicators(rng: np.random.Generator, n: int, k: int) -> Table:
    countries = _pick(rng, tuple(COUNTRY_POPULATION), n)
    years = _pick(rng, ("1995", "2000", "2005", "2010", "2015", "2020", "2023"), k)
    since = np.array([int(y) - 2020 for y in years], dtype=float)[None, :]  # [1, k]
    pop = np.array([COUNTRY_POPULATION[c] for c in countries], dtype=float)[:, None]  # [n, 1]
    indicator = ("GDP", "Population", "Life expectancy", "Exports")[int(rng.integers(4))]
    wobble = 1.0 + 0.01 * rng.standard_normal((n, k))
    if indicator == "Population":
        values, unit, decimals = pop * (1.0 + rng.normal(0.01, 0.008, size=(n, 1))) ** since * wobble, "million", 1
    elif indicator == "Life expectancy":
        base = np.clip(rng.normal(74.0, 6.0, size=(n, 1)), 55.0, 85.0)
        values, unit, decimals = (base + 0.2 * since) * wobble, "years", 1
    else:
        per_capita = np.clip(rng.lognormal(np.log(12000.0), 0.9, size=(n, 1)), 800.0, 90000.0)
        gdp = pop * per_capita / 1000.0 * (1.0 + rng.normal(0.03, 0.015, size=(n, 1))) ** since
        share = rng.uniform(0.12, 0.6, size=(n, 1)) if indicator == "Exports" else 1.0
        values, unit, decimals = gdp * share * wobble, "USD bn", 1
    title = f"{indicator} by country, " + (years[0] if k == 1 else _span(years))
    return Table(
        title,
        "Country",
        tuple(countries),
        tuple(years),
        _rows(values.T, decimals),
        indicator,
        unit,
        "synthetic:country_indicators",
    )


def _product_units(rng: np.random.Generator, n: int, k: int) -> Table:
    products, regions = _pick(rng, PRODUCTS, n), _pick(rng, REGIONS, k)
    popularity = rng.lognormal(np.log(4000.0), 0.8, size=(1, n))
    values = popularity * rng.lognormal(0.0, 0.35, size=(k, n))
    year = int(rng.integers(2010, LAST_YEAR + 1))
    title = _by(regions, "Units sold by product, {} region, ", "Units sold by product and region, ") + str(year)
    return Table(
        title,
        "Product",
        tuple(products),
        tuple(regions),
        _rows(values, 0),
        "Units sold",
        "units",
        "synthetic:product_units",
    )


def _market_share(rng: np.random.Generator, n: int, k: int) -> Table:
    brands = [f"Brand {chr(ord('A') + i)}" for i in range(n)]
    years = _years(rng, k)
    shares = [rng.dirichlet(np.full(n, 2.0))]
    for _ in range(k - 1):
        drifted = shares[-1] * rng.lognormal(0.0, 0.12, size=n)
        shares.append(drifted / drifted.sum())
    market = ("Smartphone", "Laptop", "Streaming", "Electric car", "Coffee machine")[int(rng.integers(5))]
    title = f"{market} market share by brand, " + (years[0] if k == 1 else _span(years))
    return Table(
        title,
        "Brand",
        tuple(brands),
        tuple(years),
        _rows(100.0 * np.array(shares), 1),
        "Market share",
        "%",
        "synthetic:market_share",
    )


def _survey(rng: np.random.Generator, n: int, k: int) -> Table:
    answers, groups = SURVEY_SCALES[n], _pick(rng, AGE_BANDS, k)
    # Each age group leans towards agreeing or disagreeing; older groups lean a little further.
    lean = rng.normal(0.0, 1.0) + 0.3 * rng.standard_normal(k) + 0.2 * np.arange(k) * rng.choice([-1.0, 1.0])
    position = np.linspace(-1.0, 1.0, n)
    rows = [rng.dirichlet(1.0 + 12.0 * np.exp(tilt * position) / np.exp(tilt * position).sum()) for tilt in lean]
    statement = SURVEY_STATEMENTS[int(rng.integers(len(SURVEY_STATEMENTS)))]
    year = int(rng.integers(2015, LAST_YEAR + 1))
    title = _by(
        groups, f"“{statement}”: answers of people aged {{}}, {year}", f"“{statement}”: answers by age group, {year}"
    )
    return Table(
        title,
        "Answer",
        answers,
        tuple(groups),
        _rows(100.0 * np.array(rows), 1),
        "Share of respondents",
        "%",
        "synthetic:survey",
    )


def _department_budgets(rng: np.random.Generator, n: int, k: int) -> Table:
    departments = _pick(rng, DEPARTMENTS, n)
    fiscal = [f"FY{y}" for y in _years(rng, k)]
    base = rng.lognormal(np.log(900.0), 0.7, size=(n, 1))
    yearly = np.cumprod(1.0 + rng.normal(0.03, 0.06, size=(n, k)), axis=1)
    title = _by(fiscal, "Department budgets, {}", f"Department budgets, {_span(fiscal)}")
    return Table(
        title,
        "Department",
        tuple(departments),
        tuple(fiscal),
        _rows((base * yearly).T, 0),
        "Budget",
        "USD k",
        "synthetic:department_budgets",
    )


def _league_points(rng: np.random.Generator, n: int, k: int) -> Table:
    towns = _pick(rng, TOWNS, n)
    teams = [f"{town} {CLUB_SUFFIXES[int(rng.integers(len(CLUB_SUFFIXES)))]}" for town in towns]
    start = int(rng.integers(LAST_YEAR - k - 15, LAST_YEAR - k + 1))
    seasons = [f"{y}/{(y + 1) % 100:02d}" for y in range(start, start + k)]
    # A club's strength persists across seasons; a 38-game season gives roughly 15..95 points.
    strength = rng.standard_normal((1, n))
    values = np.clip(52.0 + 15.0 * strength + 7.0 * rng.standard_normal((k, n)), 8.0, 100.0)
    title = _by(seasons, "League points by club, {} season", f"League points by club, {_span(seasons)}")
    return Table(
        title, "Club", tuple(teams), tuple(seasons), _rows(values, 0), "Points", "points", "synthetic:league_points"
    )


def _city_indicators(rng: np.random.Generator, n: int, k: int) -> Table:
    cities, years = _pick(rng, CITIES, n), _years(rng, k)
    name, unit, low, high, decimals, trend = (
        ("Average monthly rent", "USD", 400.0, 3500.0, 0, 0.04),
        ("PM2.5 concentration", "µg/m³", 5.0, 80.0, 1, -0.03),
        ("Average commute time", "minutes", 20.0, 60.0, 1, 0.005),
    )[int(rng.integers(3))]
    base = np.exp(rng.uniform(np.log(low), np.log(high), size=(1, n)))
    values = base * (1.0 + trend) ** np.arange(k)[:, None] * (1.0 + 0.03 * rng.standard_normal((k, n)))
    title = f"{name} by city, " + (years[0] if k == 1 else _span(years))
    return Table(
        title, "City", tuple(cities), tuple(years), _rows(values, decimals), name, unit, "synthetic:city_indicators"
    )


def _age_bands(n: int) -> tuple[list[str], int]:
    """`n` age bands from 0, of a round width chosen so that they cover about 90 years, and that width."""
    width = min((w for w in (5, 10, 15, 20, 25, 30, 40, 50) if n * w <= 100), key=lambda w: abs(n * w - 90))
    labels = [f"{a}–{a + width - 1}" for a in range(0, (n - 1) * width, width)] + [f"{(n - 1) * width}+"]
    return labels, width


def _age_structure(rng: np.random.Generator, n: int, k: int) -> Table:
    labels, width = _age_bands(n)
    mids = np.arange(n) * width + width / 2
    series = ["Male", "Female"][:k] if k <= 2 else _pick(rng, ("1970", "1980", "1990", "2000", "2010", "2020"), k)
    # Survival falls off steeply past a characteristic age; younger cohorts are a bit larger or smaller.
    scale = rng.uniform(68.0, 85.0, size=(k, 1))
    cohort = 1.0 + rng.uniform(-0.15, 0.15, size=(k, 1)) * (1.0 - mids / 45.0)
    level = rng.lognormal(np.log(350.0), 0.8) * width / 5.0
    values = level * np.exp(-((mids / scale) ** 4)) * cohort * (1.0 + 0.03 * rng.standard_normal((k, n)))
    region = REGIONS[int(rng.integers(len(REGIONS)))]
    title = f"Population by age group, {region} region" + ("" if k > 2 else f", {int(rng.integers(2000, 2024))}")
    return Table(
        title,
        "Age group",
        tuple(labels),
        tuple(series),
        _rows(values, 0),
        "Population",
        "thousand",
        "synthetic:age_structure",
    )


def _hourly_demand(rng: np.random.Generator, n: int, k: int) -> Table:
    hours = _window(rng, [f"{h:02d}:00" for h in range(24)], n)
    series = _pick(rng, DAY_TYPES, k)
    h = np.array([int(label[:2]) for label in hours], dtype=float)
    morning = rng.uniform(0.15, 0.35, size=(k, 1)) * np.exp(-(((h - 8.0) / 2.0) ** 2))
    evening = rng.uniform(0.25, 0.5, size=(k, 1)) * np.exp(-(((h - 19.0) / 2.5) ** 2))
    daytime = 0.25 * np.exp(-(((h - 13.0) / 5.0) ** 2))
    level = rng.lognormal(np.log(3000.0), 0.5) * rng.uniform(0.8, 1.2, size=(k, 1))
    values = level * (0.6 + morning + evening + daytime) * (1.0 + 0.02 * rng.standard_normal((k, n)))
    title = _by(series, "Hourly electricity demand, {}", "Hourly electricity demand by day type")
    return Table(
        title, "Hour", tuple(hours), tuple(series), _rows(values, 0), "Demand", "MW", "synthetic:hourly_demand"
    )


def _reaction_times(rng: np.random.Generator, n: int, k: int) -> Table:
    participants = [f"P{i:02d}" for i in range(1, n + 1)]
    conditions = _pick(rng, CONDITIONS, k)
    speed = rng.normal(340.0, 45.0, size=(1, n))
    effect = rng.normal(0.0, 35.0, size=(k, 1))
    values = np.clip(speed + effect + rng.normal(0.0, 25.0, size=(k, n)), 180.0, None)
    title = _by(conditions, "Reaction time per participant ({})", "Reaction time per participant by condition")
    return Table(
        title,
        "Participant",
        tuple(participants),
        tuple(conditions),
        _rows(values, 0),
        "Reaction time",
        "ms",
        "synthetic:reaction_times",
    )


THEMES: tuple[Theme, ...] = (
    Theme("yearly_revenue", MAX_CATEGORIES, _yearly_revenue),
    Theme("yearly_population", MAX_CATEGORIES, _yearly_population),
    Theme("yearly_emissions", MAX_CATEGORIES, _yearly_emissions),
    Theme("monthly_temperature", len(MONTHS), _monthly_temperature),
    Theme("monthly_rainfall", len(MONTHS), _monthly_rainfall),
    Theme("monthly_sales", len(MONTHS), _monthly_sales),
    Theme("weekly_visits", 52, _weekly_visits),
    Theme("daily_orders", MAX_CATEGORIES, _daily_orders),
    Theme("quarterly_revenue", MAX_CATEGORIES, _quarterly_revenue),
    Theme("country_indicators", len(COUNTRY_POPULATION), _country_indicators),
    Theme("product_units", len(PRODUCTS), _product_units),
    Theme("market_share", 12, _market_share),
    Theme("survey", max(SURVEY_SCALES), _survey),
    Theme("department_budgets", len(DEPARTMENTS), _department_budgets),
    Theme("league_points", len(TOWNS), _league_points),
    Theme("city_indicators", len(CITIES), _city_indicators),
    Theme("age_structure", 18, _age_structure),
    Theme("hourly_demand", 24, _hourly_demand),
    Theme("reaction_times", MAX_CATEGORIES, _reaction_times),
)
