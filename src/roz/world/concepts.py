"""The ROZ-Mini concepts: 66 ImageNet-1k classes that exist as emoji in every artwork source.

Each concept is an emoji code point (the file key in emoji-datasource / OpenMoji), the
WordNet ID of the ImageNet-1k class it depicts, and the file stem of its Fluent UI rendition.
The human (prompt-ready) name is *not* retyped here: it is CLIP's class name, read from
``roz.datasets.classes.imagenet_1k()``.

Coarse groups feed the video splits (ImageNet-Vid-Robust and YTBB-Robust both evaluate on a
coarse class set that merges several ImageNet classes, e.g. all dogs -> "dog").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from roz.datasets.classes import ClassSet, imagenet_1k
from roz.metrics.shift_sets import Shift

CLASS_SET_NAME = "roz-mini"


@dataclass(frozen=True)
class Concept:
    codepoint: str  # lower-case hex, '-'-joined, without FE0F (emoji-datasource file stem)
    wnid: str  # ImageNet-1k WordNet ID
    fluent: str  # file stem in fluentui-emoji/icons/{flat,modern,high-contrast}/
    category: str  # animal / food / vehicle / instrument / object


# codepoint, wnid, fluent stem, category (after "#": the ImageNet class where the emoji's name
# differs).  Order here is the class order of roz-mini.
_TABLE_TEXT = """
1f421  n02655020 blowfish                   animal     # pufferfish
1f413  n01514668 rooster                    animal     # rooster (cock)
1f414  n01514859 chicken                    animal     # hen
1f9a9  n02007558 flamingo                   animal
1f99a  n01806143 peacock                    animal     # peafowl
1f99c  n01818515 parrot                     animal     # macaw
1f982  n01770393 scorpion                   animal
1f40c  n01944390 snail                      animal
1f41e  n02165456 lady-beetle                animal     # ladybug
1f41d  n02206856 honeybee                   animal     # bee
1f41c  n02219486 ant                        animal
1fabc  n01910747 jellyfish                  animal
1f429  n02113799 poodle                     animal     # Standard Poodle
1f98a  n02119022 fox                        animal     # red fox
1f43a  n02114367 wolf                       animal     # grey wolf
1f405  n02129604 tiger                      animal
1f406  n02128385 leopard                    animal
1f981  n02129165 lion                       animal
1f428  n01882714 koala                      animal
1f993  n02391049 zebra                      animal
1f416  n02395406 pig                        animal
1f402  n02403003 ox                         animal
1f9ac  n02410509 bison                      animal
1f999  n02437616 llama                      animal
1f34c  n07753592 banana                     food
1f353  n07745940 strawberry                 food
1f34b  n07749582 lemon                      food
1f34d  n07753275 pineapple                  food
1f344  n07734744 mushroom                   food
1f966  n07714990 broccoli                   food
1f33d  n12144580 ear-of-corn                food       # corn
1f355  n07873807 pizza                      food
1f968  n07695742 pretzel                    food
1f96f  n07693725 bagel                      food
1f32f  n07880968 burrito                    food
1f691  n02701002 ambulance                  vehicle
1f692  n03345487 fire-engine                vehicle    # fire truck
1f69c  n04465501 tractor                    vehicle
2708   n02690373 airplane                   vehicle    # airliner
1f6f6  n02951358 canoe                      vehicle
1f695  n02930766 taxi                       vehicle    # taxicab
1f6fb  n03930630 pickup-truck               vehicle
1f3bb  n04536866 violin                     instrument
1fa95  n02787622 banjo                      instrument
1f3b7  n04141076 saxophone                  instrument
1f941  n03249569 drum                       instrument
1fa97  n02672831 accordion                  instrument
1f528  n03481172 hammer                     object
1fa9b  n04154565 screwdriver                object
1f9f9  n02906734 broom                      object
1faa3  n02909870 bucket                     object
1f512  n03874599 locked                     object     # padlock
23f0   n02708093 alarm-clock                object     # analog clock
1f4f1  n02992529 mobile-phone               object
1f5b1  n03793489 computer-mouse             object
2328   n03085013 keyboard                   object     # computer keyboard
1f4bb  n03642806 laptop                     object     # laptop computer
2602   n04507155 umbrella                   object
1f392  n02769748 backpack                   object
1f9e6  n04254777 socks                      object     # sock
1f576  n04356056 sunglasses                 object
1fad6  n04398044 teapot                     object
1f56f  n02948072 candle                     object
1f58a  n02783161 pen                        object     # ballpoint pen
1f58b  n03388183 fountain-pen               object
1f37e  n04591713 bottle-with-popping-cork   object     # wine bottle
"""
_TABLE = [tuple(line.split("#")[0].split()) for line in _TABLE_TEXT.strip().splitlines()]

CONCEPTS: tuple[Concept, ...] = tuple(Concept(*row) for row in _TABLE)

# Emoji that are NOT classes: ObjectNet-style folders without an ImageNet mapping and clutter.
# codepoint, fluent stem, ObjectNet folder, ObjectNet label: real ObjectNet classes that have no
# ImageNet mapping there either.
EXTRAS = [
    ("2702", "scissors", "scissors", "Scissors"),
    ("1f511", "key", "key_chain", "Key chain"),
    ("1f4a1", "light-bulb", "light_bulb", "Light bulb"),
    ("1faa5", "toothbrush", "toothbrush", "Toothbrush"),
    ("1f453", "glasses", "eyeglasses", "Eyeglasses"),
    ("1f944", "spoon", "spoon", "Spoon"),
    ("1f4d5", "closed-book", "book_closed", "Book (closed)"),
    ("1f526", "flashlight", "flashlight", "Flashlight"),
]

# Real ObjectNet folders/labels for the concepts ObjectNet has; the others get ObjectNet-style
# names made from the CLIP name.  Several concepts may share one ObjectNet label (1 -> many).
OBJECTNET = {
    "n07753592": ("banana", "Banana"),
    "n02906734": ("broom", "Broom"),
    "n02909870": ("bucket", "Bucket"),
    "n02948072": ("candle", "Candle"),
    "n02992529": ("cellphone", "Cellphone"),
    "n03793489": ("computer_mouse", "Computer mouse"),
    "n03481172": ("hammer", "Hammer"),
    "n03085013": ("keyboard", "Keyboard"),
    "n03642806": ("laptop_open", "Laptop (open)"),
    "n03874599": ("padlock", "Padlock"),
    "n04254777": ("sock", "Sock"),
    "n04356056": ("sunglasses", "Sunglasses"),
    "n04398044": ("teapot", "Teapot"),
    "n04507155": ("umbrella", "Umbrella"),
    "n02769748": ("backpack", "Backpack"),
    "n04591713": ("wine_bottle", "Wine bottle"),
    "n02708093": ("alarm_clock", "Alarm clock"),
    "n04154565": ("screwdriver", "Screwdriver"),
    # one ObjectNet class -> two ImageNet classes (as the real "Pen" -> ballpoint; quill; fountain pen)
    "n02783161": ("pen", "Pen"),
    "n03388183": ("pen", "Pen"),
    "n01514668": ("chicken", "Chicken"),
    "n01514859": ("chicken", "Chicken"),
    "n02119022": ("wild_canine", "Wild canine"),
    "n02114367": ("wild_canine", "Wild canine"),
}

# Coarse classes of the video splits: name -> member wnids.  Order gives the coarse ids.
VID_GROUPS = [
    ("airplane", ["n02690373"]),
    ("bird", ["n01514668", "n01514859", "n02007558", "n01806143", "n01818515"]),
    ("dog", ["n02113799", "n02119022", "n02114367"]),
    ("big_cat", ["n02129604", "n02128385", "n02129165"]),
    ("cattle", ["n02403003", "n02410509"]),
    ("car", ["n02701002", "n02930766", "n03930630", "n03345487"]),
    ("zebra", ["n02391049"]),
    ("koala", ["n01882714"]),
    ("pig", ["n02395406"]),
    ("llama", ["n02437616"]),
    ("insect", ["n02165456", "n02206856", "n02219486"]),
    ("snail", ["n01944390"]),
    ("jellyfish", ["n01910747"]),
    ("fish", ["n02655020"]),
    ("watercraft", ["n02951358"]),
    ("tractor", ["n04465501"]),
]

# YTBB-style coarse classes (names as in ytbb_class_index.json where they exist).
YTBB_GROUPS = [
    ("bird", ["n01514668", "n01514859", "n02007558", "n01806143", "n01818515"]),
    ("dog", ["n02113799", "n02119022", "n02114367"]),
    ("cat", ["n02129604", "n02128385", "n02129165"]),
    ("cow", ["n02403003", "n02410509"]),
    ("zebra", ["n02391049"]),
    ("airplane", ["n02690373"]),
    ("boat", ["n02951358"]),
    ("car", ["n02701002", "n02930766"]),
    ("truck", ["n03930630", "n03345487", "n04465501"]),
    ("umbrella", ["n04507155"]),
    ("bear", ["n01882714"]),  # the koala: a "bear" to most annotators
    ("pig", ["n02395406"]),
]


@lru_cache(maxsize=None)
def roz_mini() -> ClassSet:
    """The roz-mini class set: CLIP's ImageNet class names for the concepts' wnids."""
    return imagenet_1k().subset([c.wnid for c in CONCEPTS], name=CLASS_SET_NAME)


def concept_by_wnid() -> dict[str, Concept]:
    return {c.wnid: c for c in CONCEPTS}


def imagenet_index() -> dict[str, int]:
    """ImageNet-1k index (standard sorted-wnid order) of every wnid."""
    return imagenet_1k().index()


#: Effective robustness on ROZ-Mini: the paper's structure over the world's datasets, mini-val as reference.
MINI_SHIFTS: tuple[Shift, ...] = (
    Shift("mini-v2", "mini-val", label="Mini-V2"),
    Shift("mini-sketch", "mini-val", label="Mini-Sketch"),
    Shift("mini-r", "mini-val", label="Mini-R"),
    Shift("mini-objectnet", "mini-val", label="Mini-ObjectNet"),
    Shift("mini-a", "mini-val", label="Mini-A"),
    Shift("mini-vid", "mini-val", metric="pm0", label="Mini-Vid (pm-0)"),
    Shift("mini-ytbb", "mini-val", metric="pm0", label="Mini-YTBB (pm-0)"),
    Shift("mini-vid", "mini-val", metric="pm10", natural=False, label="Mini-Vid (pm-10)"),
    Shift("mini-ytbb", "mini-val", metric="pm10", natural=False, label="Mini-YTBB (pm-10)"),
)
