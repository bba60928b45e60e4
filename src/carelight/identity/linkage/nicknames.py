"""English given names and their common short forms, grouped for linkage.

A record that says "Peggy" where another says "Margaret" is the commonest given-name
disagreement between care settings. Names joined by a short form fall into one group
(``name_group``): "margaret", "maggie", "peggy" and "meg" all give "margaret". A short form
shared by two names (Chris for Christine and Christopher) joins their groups; the sex
comparison still tells those apart. The list is hand-written from common usage and is
deliberately general, not tuned to any data set; extend it as real data shows gaps.
"""

from __future__ import annotations

from functools import cache

# formal name: its short forms (all lower case, normalised as features.normalise_text does)
_SHORT_FORMS: dict[str, tuple[str, ...]] = {
    "abigail": ("abbie", "abby", "gail"),
    "albert": ("bert", "al", "bertie"),
    "alexander": ("alex", "alec", "sandy", "xander"),
    "alexandra": ("alex", "lexie", "sandra", "sandy"),
    "alfred": ("alf", "alfie", "fred"),
    "amelia": ("millie", "amy", "mia"),
    "andrew": ("andy", "drew"),
    "angela": ("angie",),
    "anthony": ("tony", "ant"),
    "arthur": ("art", "artie"),
    "barbara": ("babs", "barb", "barbie"),
    "benjamin": ("ben", "benny", "benji"),
    "bernard": ("bernie",),
    "catherine": ("cath", "cathy", "kate", "katie", "kath", "kathy", "cat"),
    "charles": ("charlie", "chas", "chuck"),
    "charlotte": ("lottie", "charlie", "lotte"),
    "christine": ("chris", "chrissie", "tina"),
    "christopher": ("chris", "kit", "topher"),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davy"),
    "deborah": ("debbie", "deb", "debs"),
    "donald": ("don", "donny"),
    "dorothy": ("dot", "dottie", "dolly", "dora"),
    "edward": ("ed", "eddie", "ted", "teddy", "ned"),
    "eleanor": ("ellie", "nell", "nora"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "bet", "bess", "eliza", "libby", "lisa"),
    "emily": ("emmy", "em"),
    "florence": ("flo", "florrie", "floss"),
    "frances": ("fran", "frankie", "fanny"),
    "francis": ("frank", "fran"),
    "frederick": ("fred", "freddie", "freddy"),
    "gillian": ("gill", "jill", "gilly"),
    "gregory": ("greg",),
    "harold": ("harry", "hal"),
    "henry": ("harry", "hal", "hank"),
    "isabella": ("bella", "izzy", "isabel", "belle"),
    "jacob": ("jake", "jack"),
    "jacqueline": ("jackie", "jacqui"),
    "james": ("jim", "jimmy", "jamie", "jem"),
    "jennifer": ("jenny", "jen", "jenni"),
    "john": ("jack", "johnny", "jon"),
    "jonathan": ("jon", "jonny", "nathan"),
    "joseph": ("joe", "joey"),
    "joshua": ("josh",),
    "katherine": ("kate", "katie", "kathy", "kath", "kay", "kitty"),
    "kathleen": ("kath", "kathy", "kay", "kate"),
    "kenneth": ("ken", "kenny"),
    "lawrence": ("larry", "laurie"),
    "leonard": ("len", "lenny", "leo"),
    "margaret": ("maggie", "peggy", "meg", "madge", "marge", "margie", "greta", "rita"),
    "matthew": ("matt", "matty"),
    "michael": ("mike", "mick", "mickey", "micky"),
    "mohammed": ("mo", "mohamed", "muhammad", "mohammad"),
    "natalie": ("nat", "nattie"),
    "nicholas": ("nick", "nicky", "nico"),
    "oliver": ("ollie", "olly"),
    "patricia": ("pat", "patsy", "trish", "tricia"),
    "patrick": ("pat", "paddy"),
    "peter": ("pete",),
    "philip": ("phil", "pip"),
    "rebecca": ("becky", "becca", "becs"),
    "richard": ("rich", "rick", "ricky", "dick", "richie"),
    "robert": ("rob", "bob", "bobby", "robbie", "bert"),
    "ronald": ("ron", "ronnie"),
    "samantha": ("sam", "sammy"),
    "samuel": ("sam", "sammy"),
    "sarah": ("sally", "sadie"),
    "stanley": ("stan",),
    "stephen": ("steve", "stevie"),
    "steven": ("steve", "stevie"),
    "susan": ("sue", "susie", "suzy"),
    "theodore": ("theo", "ted", "teddy"),
    "thomas": ("tom", "tommy"),
    "timothy": ("tim", "timmy"),
    "victoria": ("vicky", "vicki", "tori"),
    "walter": ("wally", "walt"),
    "william": ("bill", "billy", "will", "willie", "liam"),
}


def _groups() -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for formal, shorts in _SHORT_FORMS.items():
        for short in shorts:
            a, b = find(formal), find(short)
            if a != b:
                # The alphabetically first formal name names the group, so it is stable.
                parent[max(a, b)] = min(a, b)
    return {name: find(name) for name in list(parent)}


_GROUP = _groups()


@cache
def name_group(first_name: str) -> str:
    """The group of a normalised given name: itself unless the table knows a short form."""
    return _GROUP.get(first_name, first_name)
