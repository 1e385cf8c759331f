"""Destination countries and regions: English names of ISO 3166-1 alpha-2 codes and the member
lists of the destination regions.

These are definitions, not data: no export figure lives here. The region series are the customs
groups of ``psicsh+Korea-trade-dashboard/trade_region.csv`` (customs exports by country, summed);
the builder checks that each equals the sum of the members below in the all-country customs file
(``country_monthly.csv``) in every month of 2025, to the dollar. Memberships are those of
``region_groups_reference.json`` beside that file, except the Middle East, which also includes
Egypt (EG) and the Palestinian territories (PS): the raw PROVENANCE.md found it by matching the
2025 monthly sums to the dollar, and the builder re-checks it. Membership is fixed over the
series' span (the customs groups are applied to every month, e.g. Timor-Leste counts in ASEAN
before its 2025 accession).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    slug: str
    code: str  # region_code in trade_region.csv
    name_en: str  # states the membership
    name_ko: str
    members: frozenset[str]
    definition: str


# ASEAN's ten member states and Timor-Leste (admitted October 2025).
ASEAN = frozenset({"BN", "ID", "KH", "LA", "MM", "MY", "PH", "SG", "TH", "TL", "VN"})

# EU: the 27 member states since the United Kingdom left on 2020-02-01.
EU27 = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    }
)

# Latin America: the 33 sovereign states of Latin America and the Caribbean (Mexico, Central and
# South America, the Caribbean states); dependent territories (Puerto Rico, Aruba, ...) excluded.
LATIN_AMERICA = frozenset(
    {
        "AG",
        "AR",
        "BB",
        "BO",
        "BR",
        "BS",
        "BZ",
        "CL",
        "CO",
        "CR",
        "CU",
        "DM",
        "DO",
        "EC",
        "GD",
        "GT",
        "GY",
        "HN",
        "HT",
        "JM",
        "KN",
        "LC",
        "MX",
        "NI",
        "PA",
        "PE",
        "PY",
        "SR",
        "SV",
        "TT",
        "UY",
        "VC",
        "VE",
    }
)

# CIS: the twelve former Soviet republics outside the Baltics (Georgia and Ukraine included, as in
# the customs group, although both have left the CIS).
CIS = frozenset({"AM", "AZ", "BY", "GE", "KG", "KZ", "MD", "RU", "TJ", "TM", "UA", "UZ"})

# Middle East: the GCC (AE, BH, KW, OM, QA, SA), IL, IQ, IR, JO, LB, SY, YE, Turkiye (TR), and
# Egypt (EG) and the Palestinian territories (PS) (see the module docstring).
MIDDLE_EAST = frozenset(
    {
        "AE",
        "BH",
        "EG",
        "IL",
        "IQ",
        "IR",
        "JO",
        "KW",
        "LB",
        "OM",
        "PS",
        "QA",
        "SA",
        "SY",
        "TR",
        "YE",
    }
)


def _iso_list(members: frozenset[str]) -> str:
    return " ".join(sorted(members))


REGIONS: tuple[Region, ...] = (
    Region(
        "asean",
        "ASEAN",
        "ASEAN-11 (10 members + Timor-Leste)",
        "아세안",
        ASEAN,
        f"customs group ASEAN, 11 countries: {_iso_list(ASEAN)}",
    ),
    Region(
        "eu",
        "EU27",
        "EU-27 (members since 2020-02)",
        "EU",
        EU27,
        f"customs group EU27, 27 countries: {_iso_list(EU27)}",
    ),
    Region(
        "middle_east",
        "MIDDLE_EAST",
        "Middle East-16 (GCC, Levant, Iraq, Iran, Yemen, Turkiye, Egypt)",
        "중동",
        MIDDLE_EAST,
        f"customs group MIDDLE_EAST, 16 countries: {_iso_list(MIDDLE_EAST)}",
    ),
    Region(
        "latin_america",
        "LATAM",
        "Latin America-33 (sovereign states incl. Mexico, Caribbean)",
        "중남미",
        LATIN_AMERICA,
        f"customs group LATAM, 33 countries: {_iso_list(LATIN_AMERICA)}",
    ),
    Region(
        "cis",
        "CIS",
        "CIS-12 (former Soviet republics excl. Baltics, incl. Georgia, Ukraine)",
        "CIS",
        CIS,
        f"customs group CIS, 12 countries: {_iso_list(CIS)}",
    ),
)

# English short names of the destination countries a series may be built for (the largest
# markets of Korea). The builder raises if a top-ranked country is missing here.
COUNTRY_NAMES_EN: dict[str, str] = {
    "AE": "United Arab Emirates",
    "AU": "Australia",
    "BD": "Bangladesh",
    "BE": "Belgium",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "CL": "Chile",
    "CN": "China",
    "CZ": "Czechia",
    "DE": "Germany",
    "ES": "Spain",
    "FR": "France",
    "GB": "United Kingdom",
    "HK": "Hong Kong",
    "HU": "Hungary",
    "ID": "Indonesia",
    "IN": "India",
    "IT": "Italy",
    "JP": "Japan",
    "KZ": "Kazakhstan",
    "LR": "Liberia",
    "MH": "Marshall Islands",
    "MX": "Mexico",
    "MY": "Malaysia",
    "NL": "Netherlands",
    "NZ": "New Zealand",
    "PA": "Panama",
    "PH": "Philippines",
    "PL": "Poland",
    "RU": "Russia",
    "SA": "Saudi Arabia",
    "SG": "Singapore",
    "SK": "Slovakia",
    "TH": "Thailand",
    "TR": "Turkiye",
    "TW": "Taiwan",
    "US": "United States",
    "VN": "Vietnam",
}


def slugify(name: str) -> str:
    """'United States' -> 'united_states'; accents dropped, anything else non-alphanumeric
    becomes one underscore."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if not slug:
        raise ValueError(f"name {name!r} gives an empty slug")
    return slug
