"""Destination countries and regions: English names of ISO 3166-1 alpha-2 codes and the member
lists of the destination regions the dataset builder sums.

These are definitions, not data: no export figure lives here. A region series is the sum of its
members' monthly exports from the all-country customs file (see ``features.dataset_builder``).
Membership is written out explicitly so that the definition is reviewable and stays fixed over
time; every list says which definition it follows and as of when.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    slug: str
    name_en: str
    name_ko: str
    members: frozenset[str]
    definition: str


# ASEAN: the ten member states as of 2025 (Brunei, Cambodia, Indonesia, Laos, Malaysia, Myanmar,
# Philippines, Singapore, Thailand, Vietnam). Timor-Leste (TL), admitted in October 2025, is left
# out so that the definition is constant over the series' span.
ASEAN = frozenset({"BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN"})

# EU: the 27 member states since the United Kingdom left on 2020-02-01.
EU27 = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
})

# Middle East: there is no treaty membership, so this is our stated convention: the Gulf
# Cooperation Council (AE, BH, KW, OM, QA, SA), the Levant and Mesopotamia (IL, IQ, JO, LB, PS,
# SY), Iran and Yemen. Egypt and the Maghreb (Africa), Turkiye and the Caucasus are excluded.
MIDDLE_EAST = frozenset({
    "AE", "BH", "KW", "OM", "QA", "SA", "IL", "IQ", "JO", "LB", "PS", "SY", "IR", "YE",
})

# Latin America and the Caribbean: the UN M49 region 419 (Caribbean 029, Central America 013
# incl. Mexico, South America 005), territories included, plus the retired code AN.
LATIN_AMERICA = frozenset({
    # Caribbean (029)
    "AI", "AG", "AW", "BS", "BB", "BQ", "VG", "KY", "CU", "CW", "DM", "DO", "GD", "GP",
    "HT", "JM", "MQ", "MS", "PR", "BL", "KN", "LC", "MF", "VC", "SX", "TT", "TC", "VI",
    "AN",  # the former Netherlands Antilles (CW, SX, BQ since 2010), still used by Korea Customs
    # Central America (013)
    "BZ", "CR", "SV", "GT", "HN", "MX", "NI", "PA",
    # South America (005)
    "AR", "BO", "BV", "BR", "CL", "CO", "EC", "FK", "GF", "GY", "PY", "PE", "GS", "SR",
    "UY", "VE",
})

# CIS: the nine full member states in 2025 (Armenia, Azerbaijan, Belarus, Kazakhstan,
# Kyrgyzstan, Moldova, Russia, Tajikistan, Uzbekistan) plus associate member Turkmenistan.
# Georgia (left 2009) and Ukraine (ceased participation 2018) are excluded.
CIS = frozenset({"AM", "AZ", "BY", "KZ", "KG", "MD", "RU", "TJ", "UZ", "TM"})

REGIONS: tuple[Region, ...] = (
    Region("asean", "ASEAN (10 member states)", "아세안", ASEAN,
           "ASEAN's ten member states as of 2025, Timor-Leste excluded"),
    Region("eu", "European Union (27 member states)", "유럽연합", EU27,
           "EU27, the members since 2020-02-01"),
    Region("middle_east", "Middle East (GCC, Levant, Iraq, Iran, Yemen)", "중동", MIDDLE_EAST,
           "GCC + IL, IQ, JO, LB, PS, SY + IR, YE; Egypt, Turkiye excluded"),
    Region("latin_america", "Latin America and the Caribbean (UN M49 419)", "중남미", LATIN_AMERICA,
           "UN M49 region 419"),
    Region("cis", "CIS (9 members + Turkmenistan)", "독립국가연합", CIS,
           "CIS full members in 2025 plus associate Turkmenistan"),
)

# English short names of the destination countries a series may be built for (the largest
# markets of Korea). The builder raises if a top-ranked country is missing here.
COUNTRY_NAMES_EN: dict[str, str] = {
    "AE": "United Arab Emirates", "AU": "Australia", "BD": "Bangladesh", "BE": "Belgium",
    "BR": "Brazil", "CA": "Canada", "CH": "Switzerland", "CL": "Chile", "CN": "China",
    "CZ": "Czechia", "DE": "Germany", "ES": "Spain", "FR": "France", "GB": "United Kingdom",
    "HK": "Hong Kong", "HU": "Hungary", "ID": "Indonesia", "IN": "India", "IT": "Italy",
    "JP": "Japan", "KZ": "Kazakhstan", "LR": "Liberia", "MH": "Marshall Islands",
    "MX": "Mexico", "MY": "Malaysia", "NL": "Netherlands", "NZ": "New Zealand", "PA": "Panama",
    "PH": "Philippines", "PL": "Poland", "RU": "Russia", "SA": "Saudi Arabia", "SG": "Singapore",
    "SK": "Slovakia", "TH": "Thailand", "TR": "Turkiye", "TW": "Taiwan", "US": "United States",
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
