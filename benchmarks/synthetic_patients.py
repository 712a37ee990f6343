"""Synthetic but realistic US Patients, generated deterministically from a seed and an index.

Patient ``i`` of a seed is always the same resource, whichever batch or process makes it:
it is drawn from a ``random.Random`` seeded with (seed, i). Names follow a
skewed (Zipf-like) frequency, with accented, apostrophe and multi-word family names mixed in;
addresses, area codes and postcodes belong together. Identifiers that must be unique (the
EHR record number, the SSN of about 30 %, the PRM MRN) are bijections of the index, so they
never repeat within one loaded population and need no bookkeeping.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import Any

EHR_MRN_SYSTEM = "http://hospital.example.org/fhir/sid/mrn"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
BCP_47 = "urn:ietf:bcp:47"

SSN_SHARE = 0.30
SECOND_GIVEN_SHARE = 0.35
EMAIL_SHARE = 0.75
SECOND_PHONE_SHARE = 0.25
ADDRESS_LINE2_SHARE = 0.2
BIRTH_FIRST = date(1930, 1, 1).toordinal()
BIRTH_LAST = date(2024, 12, 31).toordinal()

# Roughly in US frequency order (Census 2010 surnames), with accented Spanish, Irish, Italian,
# Vietnamese and multi-word spellings mixed in; the weight of rank r is 1 / (r + 4) ** 0.9.
FAMILY_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Gómez", "Phillips", "Evans", "Turner", "Díaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy",
    "Cook", "Rogers", "Gutiérrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed",
    "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chávez",
    "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jiménez", "Powell",
    "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes",
    "Gonzales", "Fisher", "Vásquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander",
    "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes",
    "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray",
    "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernández", "McDonald", "Woods",
    "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker",
    "Guzmán", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez",
    "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Muñoz", "Hunt", "Hicks", "Holmes", "Palmer",
    "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills",
    "Meyer", "Rice", "Schmidt", "Garza", "Daniels", "Ferguson", "Nichols", "Stephens", "Soto",
    "Weaver", "Ryan", "Gardner", "Payne", "Grant", "Dunn", "Kelley", "Spencer", "Hawkins",
    "Arnold", "Pierce", "Vázquez", "Hansen", "Peters", "Santos", "Hart", "Bradley", "Knight",
    "Elliott", "Cunningham", "Duncan", "Armstrong", "Hudson", "Carroll", "Lane", "Riley",
    "Andrews", "Álvarez", "Ray", "Delgado", "Berry", "Perkins", "Hoffman", "Johnston", "Matthews",
    "Peña", "Richards", "Contreras", "Willis", "Carpenter", "Lawrence", "Sandoval", "O'Brien",
    "O'Connor", "Núñez", "Ñúñez", "Ibáñez", "Nguyễn", "Phạm", "D'Angelo", "Kowalski", "Müller",
    "Schäfer", "Okafor", "Haddad", "Yamamoto", "De La Cruz", "García-López", "Van der Berg",
    "St. John",
)

FEMALE_NAMES: tuple[str, ...] = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah",
    "Karen", "Lisa", "Nancy", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly", "Emily",
    "Donna", "Michelle", "Carol", "Amanda", "Dorothy", "Melissa", "Deborah", "Stephanie",
    "Rebecca", "Sharon", "Laura", "Cynthia", "Kathleen", "Amy", "Angela", "Shirley", "Anna",
    "Brenda", "Pamela", "Emma", "Nicole", "Helen", "Samantha", "Katherine", "Christine", "Debra",
    "Rachel", "Carolyn", "Janet", "Catherine", "María", "Heather", "Diane", "Ruth", "Julie",
    "Olivia", "Joyce", "Virginia", "Victoria", "Kelly", "Lauren", "Christina", "Joan", "Evelyn",
    "Judith", "Megan", "Andrea", "Cheryl", "Hannah", "Jacqueline", "Martha", "Gloria", "Teresa",
    "Ann", "Sara", "Madison", "Frances", "Kathryn", "Janice", "Jean", "Abigail", "Alice", "Judy",
    "Sophia", "Grace", "Denise", "Amber", "Doris", "Marilyn", "Danielle", "Beverly", "Isabella",
    "Theresa", "Diana", "Natalie", "Brittany", "Charlotte", "Marie", "Kayla", "Alexis", "Lori",
    "Sofía", "Chloé", "Zoë", "Renée", "Inés", "Lucía", "Guadalupe", "Ximena", "Siobhán", "Mei",
    "Aaliyah",
)

MALE_NAMES: tuple[str, ...] = (
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas",
    "Christopher", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Andrew",
    "Paul", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Jason",
    "Edward", "Jeffrey", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen",
    "Larry", "Justin", "Scott", "Brandon", "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick",
    "Frank", "Raymond", "Jack", "Dennis", "Jerry", "Tyler", "Aaron", "José", "Adam", "Nathan",
    "Henry", "Zachary", "Douglas", "Peter", "Kyle", "Noah", "Ethan", "Jeremy", "Walter",
    "Christian", "Keith", "Roger", "Terry", "Austin", "Sean", "Gerald", "Carl", "Harold", "Dylan",
    "Arthur", "Lawrence", "Jordan", "Jesse", "Bryan", "Billy", "Bruce", "Gabriel", "Joe", "Logan",
    "Alan", "Juan", "Albert", "Willie", "Elijah", "Wayne", "Randy", "Vincent", "Mason", "Roy",
    "Ralph", "Bobby", "Russell", "Bradley", "Philip", "Eugene", "Jesús", "Héctor", "Raúl", "Ramón",
    "Nicolás", "Joaquín", "André", "Seán", "Björn", "Luis", "Carlos", "Miguel", "Wei", "Mohammed",
    "DeShawn",
)

# (city, state, area codes, first postcode, last postcode, weight ~ metro population)
CITIES: tuple[tuple[str, str, tuple[str, ...], int, int, int], ...] = (
    ("Boston", "MA", ("617", "857"), 2108, 2137, 7),
    ("Cambridge", "MA", ("617",), 2138, 2142, 2),
    ("Worcester", "MA", ("508", "774"), 1601, 1610, 2),
    ("New York", "NY", ("212", "646", "917"), 10001, 10040, 20),
    ("Brooklyn", "NY", ("718", "347", "929"), 11201, 11239, 12),
    ("Bronx", "NY", ("718", "347"), 10451, 10475, 6),
    ("Buffalo", "NY", ("716",), 14201, 14227, 2),
    ("Philadelphia", "PA", ("215", "267"), 19102, 19154, 10),
    ("Pittsburgh", "PA", ("412",), 15201, 15237, 4),
    ("Newark", "NJ", ("973",), 7102, 7114, 3),
    ("Baltimore", "MD", ("410", "443"), 21201, 21239, 4),
    ("Washington", "DC", ("202",), 20001, 20020, 6),
    ("Richmond", "VA", ("804",), 23219, 23237, 2),
    ("Charlotte", "NC", ("704", "980"), 28202, 28227, 4),
    ("Raleigh", "NC", ("919",), 27601, 27617, 3),
    ("Atlanta", "GA", ("404", "470", "678"), 30303, 30350, 9),
    ("Miami", "FL", ("305", "786"), 33125, 33199, 9),
    ("Orlando", "FL", ("407",), 32801, 32839, 4),
    ("Tampa", "FL", ("813",), 33602, 33629, 4),
    ("Jacksonville", "FL", ("904",), 32202, 32258, 3),
    ("Nashville", "TN", ("615",), 37201, 37221, 3),
    ("Memphis", "TN", ("901",), 38103, 38141, 2),
    ("New Orleans", "LA", ("504",), 70112, 70131, 2),
    ("Chicago", "IL", ("312", "773", "872"), 60601, 60660, 15),
    ("Detroit", "MI", ("313",), 48201, 48235, 6),
    ("Cleveland", "OH", ("216",), 44102, 44135, 3),
    ("Columbus", "OH", ("614",), 43201, 43235, 3),
    ("Indianapolis", "IN", ("317",), 46201, 46260, 3),
    ("Milwaukee", "WI", ("414",), 53202, 53233, 2),
    ("Minneapolis", "MN", ("612",), 55401, 55455, 5),
    ("St. Louis", "MO", ("314",), 63101, 63147, 4),
    ("Kansas City", "MO", ("816",), 64101, 64157, 3),
    ("Omaha", "NE", ("402",), 68102, 68164, 1),
    ("Denver", "CO", ("303", "720"), 80202, 80239, 5),
    ("Salt Lake City", "UT", ("801",), 84101, 84124, 2),
    ("Phoenix", "AZ", ("602", "480"), 85003, 85054, 8),
    ("Tucson", "AZ", ("520",), 85701, 85750, 2),
    ("Albuquerque", "NM", ("505",), 87101, 87123, 2),
    ("Las Vegas", "NV", ("702",), 89101, 89169, 4),
    ("Los Angeles", "CA", ("213", "323", "310"), 90001, 90089, 20),
    ("San Diego", "CA", ("619", "858"), 92101, 92139, 6),
    ("San Francisco", "CA", ("415", "628"), 94102, 94134, 5),
    ("San José", "CA", ("408", "669"), 95110, 95139, 4),
    ("Oakland", "CA", ("510",), 94601, 94621, 3),
    ("Sacramento", "CA", ("916",), 95814, 95838, 3),
    ("Fresno", "CA", ("559",), 93701, 93728, 2),
    ("Seattle", "WA", ("206",), 98101, 98199, 7),
    ("Portland", "OR", ("503", "971"), 97201, 97239, 4),
    ("Houston", "TX", ("713", "281", "832"), 77002, 77099, 12),
    ("Dallas", "TX", ("214", "469", "972"), 75201, 75254, 11),
    ("San Antonio", "TX", ("210",), 78201, 78260, 4),
    ("Austin", "TX", ("512", "737"), 78701, 78759, 4),
    ("El Paso", "TX", ("915",), 79901, 79938, 2),
    ("Honolulu", "HI", ("808",), 96813, 96826, 2),
    ("Anchorage", "AK", ("907",), 99501, 99518, 1),
    ("San Juan", "PR", ("787", "939"), 901, 926, 2),
)

STREETS = (
    "Main", "Oak", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Pine",
    "Walnut", "Sunset", "Lincoln", "Jackson", "Church", "River", "Highland", "Franklin",
    "Jefferson", "Madison", "Willow", "Chestnut", "Spring", "Center", "Forest", "Meadow",
    "Adams", "Ridge", "Beacon", "Commonwealth", "Peachtree", "Mission", "Broadway", "Market",
    "Santa Fe", "Alameda", "Martin Luther King Jr.", "Ocean", "Prospect", "Union",
)
STREET_SUFFIXES = ("Street", "Avenue", "Road", "Boulevard", "Lane", "Drive", "Court", "Way",
                   "Place", "Terrace")
UNITS = ("Apt", "Unit", "Suite", "#")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
                 "aol.com", "comcast.net", "proton.me")
EMAIL_DOMAIN_WEIGHTS = tuple(accumulate((40, 15, 12, 8, 10, 4, 3, 2)))

# Bijections of the index: index * multiplier mod space (multiplier coprime to the space).
SSN_AREAS = [area for area in range(1, 900) if area != 666]
SSN_SPACE = len(SSN_AREAS) * 99 * 9999
EHR_SPACE = 10**10
MRN_PER_YEAR = 1_000_000
MRN_FIRST_YEAR = 1990
"""PRM MRNs ``MRN-{year}{6 digits}`` start at 1990: the server draws random MRNs of the current
year, so a loaded population never exhausts the space the server allocates from."""
_MULTIPLIER = 2_654_435_761  # prime (Knuth's multiplicative hash), coprime to every space above


@dataclass(frozen=True)
class SyntheticPatient:
    """One generated Patient with the id and PRM MRN the loader assigns to it."""

    resource_id: str
    mrn: str
    resource: dict[str, Any]


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


FAMILY_WEIGHTS = _cumulative([1 / (rank + 4) ** 0.9 for rank in range(len(FAMILY_NAMES))])
FEMALE_WEIGHTS = _cumulative([1 / (rank + 4) ** 0.8 for rank in range(len(FEMALE_NAMES))])
MALE_WEIGHTS = _cumulative([1 / (rank + 4) ** 0.8 for rank in range(len(MALE_NAMES))])
CITY_WEIGHTS = _cumulative([city[5] for city in CITIES])


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text`` (``Muñoz`` -> ``munoz``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


_SLUGS = {name: ascii_slug(name) for name in (*FAMILY_NAMES, *FEMALE_NAMES, *MALE_NAMES)}


def mrn(index: int) -> str:
    """The PRM MRN of patient ``index``: ``MRN-{year}{6 digits}``, unique per index."""
    year, within = divmod(index, MRN_PER_YEAR)
    return f"MRN-{MRN_FIRST_YEAR + year}{within * _MULTIPLIER % MRN_PER_YEAR:06d}"


def ehr_record_number(index: int) -> str:
    """The sending EHR's record number of patient ``index`` (10 digits, unique)."""
    return f"{(index * _MULTIPLIER + 12_345) % EHR_SPACE:010d}"


def ssn(index: int) -> str:
    """A well-formed SSN (no area 000/666/9xx, no group 00, no serial 0000), unique per index."""
    scrambled = (index * _MULTIPLIER + 4_242) % SSN_SPACE
    rest, serial = divmod(scrambled, 9999)
    area, group = divmod(rest, 99)
    return f"{SSN_AREAS[area]:03d}-{group + 1:02d}-{serial + 1:04d}"


def _phone(rng: random.Random, area_codes: tuple[str, ...]) -> str:
    exchange = rng.randrange(200, 1000)
    while exchange % 100 == 11 or exchange == 555:  # N11 codes and 555 are not assignable
        exchange = rng.randrange(200, 1000)
    return f"+1 {rng.choice(area_codes)} {exchange} {rng.randrange(10_000):04d}"


def _patient(rng: random.Random, index: int) -> dict[str, Any]:
    roll = rng.random()
    gender = "female" if roll < 0.505 else "male" if roll < 0.995 else \
        ("other" if roll < 0.998 else "unknown")
    if gender == "female" or (gender != "male" and rng.random() < 0.5):
        names, weights = FEMALE_NAMES, FEMALE_WEIGHTS
    else:
        names, weights = MALE_NAMES, MALE_WEIGHTS
    family = rng.choices(FAMILY_NAMES, cum_weights=FAMILY_WEIGHTS)[0]
    given = [rng.choices(names, cum_weights=weights)[0]]
    if rng.random() < SECOND_GIVEN_SHARE:
        given.append(rng.choices(names, cum_weights=weights)[0])
    city, state, area_codes, first_zip, last_zip, _ = rng.choices(
        CITIES, cum_weights=CITY_WEIGHTS)[0]
    line = [f"{rng.randrange(1, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_SUFFIXES)}"]
    if rng.random() < ADDRESS_LINE2_SHARE:
        line.append(f"{rng.choice(UNITS)} {rng.randrange(1, 40)}{rng.choice('ABCD')}")

    identifiers: list[dict[str, Any]] = [{
        "use": "usual",
        "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
        "system": EHR_MRN_SYSTEM,
        "value": ehr_record_number(index),
    }]
    if rng.random() < SSN_SHARE:
        identifiers.append({
            "use": "official",
            "type": {"coding": [{"system": V2_0203, "code": "SS"}]},
            "system": SSN_SYSTEM,
            "value": ssn(index),
        })
    telecom: list[dict[str, Any]] = [{
        "system": "phone", "value": _phone(rng, area_codes),
        "use": "mobile" if rng.random() < 0.8 else "home", "rank": 1,
    }]
    if rng.random() < SECOND_PHONE_SHARE:
        telecom.append({"system": "phone", "value": _phone(rng, area_codes),
                        "use": rng.choice(("home", "work")), "rank": 2})
    if rng.random() < EMAIL_SHARE:
        domain = rng.choices(EMAIL_DOMAINS, cum_weights=EMAIL_DOMAIN_WEIGHTS)[0]
        local = f"{_SLUGS[given[0]]}.{_SLUGS[family]}{rng.randrange(1, 1000)}"
        telecom.append({"system": "email", "value": f"{local}@{domain}", "use": "home"})

    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "active": True,
        "name": [{"use": "official", "family": family, "given": given}],
        "telecom": telecom,
        "gender": gender,
        "birthDate": date.fromordinal(rng.randrange(BIRTH_FIRST, BIRTH_LAST + 1)).isoformat(),
        "address": [{
            "use": "home", "type": "physical", "line": line, "city": city, "state": state,
            "postalCode": f"{rng.randrange(first_zip, last_zip + 1):05d}", "country": "US",
        }],
    }
    if rng.random() < 0.08:
        resource["communication"] = [{
            "language": {"coding": [{"system": BCP_47, "code": "es", "display": "Spanish"}],
                         "text": "Spanish"},
            "preferred": True,
        }]
    return resource


def batch(seed: int, first: int, count: int) -> list[SyntheticPatient]:
    """Patients ``first`` .. ``first + count - 1`` of ``seed``."""
    rng = random.Random()
    patients: list[SyntheticPatient] = []
    for index in range(first, first + count):
        rng.seed(seed * 1_000_000_007 + index)
        resource_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        patients.append(SyntheticPatient(resource_id, mrn(index), _patient(rng, index)))
    return patients
