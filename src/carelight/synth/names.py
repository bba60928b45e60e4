"""Name, nickname and street pools for the fictional population.

The pools mix names common in England across generations and communities; people are given
names by sex and decade of birth. Nicknames are what a social care record or a hospital
receptionist may write instead of the registered given name.
"""

from __future__ import annotations

# fmt: off
GIVEN = {
    ("female", "before1950"): ("Margaret", "Dorothy", "Joan", "Kathleen", "Elizabeth", "Patricia",
        "Irene", "Doris", "Eileen", "Barbara", "Mary", "Jean", "Edna", "Betty", "Sheila", "Audrey"),
    ("female", "1950s-70s"): ("Susan", "Linda", "Christine", "Karen", "Deborah", "Jacqueline",
        "Elizabeth", "Catherine", "Julie", "Alison", "Patricia", "Gillian", "Nasreen", "Jennifer",
        "Angela", "Margaret"),
    ("female", "1980s-90s"): ("Sarah", "Emma", "Rebecca", "Victoria", "Jennifer", "Rachel",
        "Katherine", "Samantha", "Amy", "Charlotte", "Priya", "Aisha", "Laura", "Hannah",
        "Elizabeth", "Natalie"),
    ("female", "2000s+"): ("Olivia", "Amelia", "Isla", "Ava", "Emily", "Charlotte", "Sophia",
        "Grace", "Freya", "Poppy", "Maryam", "Zara", "Ruby", "Isabella", "Evie", "Florence"),
    ("male", "before1950"): ("William", "Albert", "Frederick", "Arthur", "Kenneth", "Ronald",
        "Dennis", "Harold", "Edward", "George", "Robert", "Thomas", "Leonard", "Stanley", "Walter",
        "James"),
    ("male", "1950s-70s"): ("David", "Michael", "Stephen", "Richard", "Anthony", "Peter",
        "Christopher", "Robert", "Andrew", "Mohammed", "Paul", "William", "Kevin", "Gary",
        "James", "Thomas"),
    ("male", "1980s-90s"): ("Daniel", "Matthew", "Christopher", "James", "Thomas", "Benjamin",
        "Samuel", "Joseph", "Alexander", "Jonathan", "Imran", "Adam", "Michael", "Nicholas",
        "Robert", "Ryan"),
    ("male", "2000s+"): ("Oliver", "Noah", "George", "Arthur", "Muhammad", "Leo", "Harry",
        "Oscar", "Jack", "Charlie", "Alfie", "Freddie", "Theodore", "William", "Jacob", "Samuel"),
}
FAMILY = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Hughes", "Turner", "Hill", "Holmes", "Shaw", "Sutcliffe", "Ackroyd",
    "Barraclough", "Haigh", "Lockwood", "Hirst", "Crowther", "Firth", "Greenwood", "Priestley",
    "Hussain", "Khan", "Ahmed", "Ali", "Begum", "Akhtar", "Patel", "Mistry", "Kaur", "Singh",
    "Kowalski", "Nowak", "Murphy", "O'Brien", "Okafor", "Mensah", "Campbell", "Fletcher",
    "Mitchell", "Bentley", "Illingworth", "Pickersgill", "Oldroyd", "Sykes", "Ramsden",
)
NICKNAMES = {
    "Margaret": "Peggy", "Dorothy": "Dot", "Kathleen": "Kath", "Elizabeth": "Liz",
    "Patricia": "Pat", "Barbara": "Babs", "Betty": "Bet", "Susan": "Sue", "Christine": "Chris",
    "Deborah": "Debbie", "Jacqueline": "Jackie", "Catherine": "Kate", "Jennifer": "Jenny",
    "Gillian": "Gill", "Angela": "Angie", "Rebecca": "Becky", "Victoria": "Vicky",
    "Katherine": "Katie", "Samantha": "Sam", "Charlotte": "Lottie", "Natalie": "Nat",
    "Isabella": "Bella", "Florence": "Flo", "Amelia": "Millie", "William": "Bill",
    "Albert": "Bert", "Frederick": "Fred", "Kenneth": "Ken", "Ronald": "Ron", "Edward": "Ted",
    "Robert": "Bob", "Thomas": "Tom", "Leonard": "Len", "Stanley": "Stan", "Walter": "Wally",
    "James": "Jim", "David": "Dave", "Michael": "Mike", "Stephen": "Steve", "Richard": "Dick",
    "Anthony": "Tony", "Peter": "Pete", "Christopher": "Chris", "Andrew": "Andy",
    "Daniel": "Dan", "Matthew": "Matt", "Benjamin": "Ben", "Samuel": "Sam", "Joseph": "Joe",
    "Alexander": "Alex", "Jonathan": "Jon", "Nicholas": "Nick", "Oliver": "Ollie",
    "Theodore": "Theo", "Jacob": "Jake", "Mohammed": "Mo", "Muhammad": "Mo", "Harold": "Harry",
}
STREETS = (
    "Mill Lane", "Church Street", "Station Road", "Victoria Road", "Beck Side", "Moor Lane",
    "Chapel Street", "Park Road", "Bridge Street", "Woodland Rise", "Fold Court", "Ings Lane",
    "Heath View", "Spring Gardens", "Weavers Row", "Canal Walk", "Quarry Hill", "Hollin Drive",
    "Manor Close", "Cherry Tree Avenue", "Laburnum Grove", "Sycamore Way", "Foundry Street",
    "Town End", "Kirkgate",
)
# (town, outward codes): the towns are made up and the postcode area "YX" does not exist.
TOWNS = (
    ("Brackenfold", ("YX1", "YX2", "YX3")),
    ("Harrowgill", ("YX4", "YX5")),
    ("Kelderby", ("YX6", "YX7")),
    ("Millbeck", ("YX8",)),
    ("Thornleigh", ("YX9", "YX10")),
    ("Ashworth Bridge", ("YX11",)),
    ("Rydale Moor", ("YX12",)),
)
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
# fmt: on


def era(birth_year: int) -> str:
    if birth_year < 1950:
        return "before1950"
    if birth_year < 1980:
        return "1950s-70s"
    if birth_year < 2000:
        return "1980s-90s"
    return "2000s+"
