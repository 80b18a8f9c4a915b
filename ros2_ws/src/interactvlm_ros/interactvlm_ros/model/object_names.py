"""Object names as people type them, mapped to the names a model knows.

A model's config says which object classes it was trained on (``InteractVLMConfig.object_classes``):

* ``None``, an open vocabulary: the official InteractVLM checkpoints. Their LLaMA was fine-tuned on DAMON's COCO
  names, LEMON's and PIAD's classes and HOI-VQA's free text, and it reads any name; the authors' demo puts the
  name it is given (the image file's prefix) into the question as it is. We do the same: every name is asked as
  typed (sanitised), nothing is mapped, and nothing is refused for its name.
* A list, a closed vocabulary: our own models trained on a fixed set of objects (the shipped default model knows
  the 7 classes of the synthetic generator). A name is asked only as one of those classes: the class itself
  (any case, plural), an everyday synonym of it ("basketball", "sports ball" -> ``ball``; "coffee mug", "cup" ->
  ``mug``), or a longer name whose head noun is one ("red coffee mug", "cup of tea" -> ``mug``). Any other
  name is not asked at all: it gets ``found: false`` with a reason that lists what the model knows, because
  the model would answer it with the map of some class it did see.

:data:`SYNONYMS` groups names of one kind of object; each group starts with its DAMON name when DAMON has one,
so a model trained on DAMON's classes maps "mug" to ``cup`` and one trained on ours maps "cup" to ``mug``.
Groups name the same object, not objects used alike: a suitcase is not a box and a couch is not a chair.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# DAMON's object classes (COCO names, reference damon_objects.md), plus its supporting-contact label "scene".
DAMON_OBJECTS = (
    "motorcycle", "bicycle", "boat", "car", "truck", "bus", "train", "airplane", "backpack", "tie", "handbag",
    "baseball glove", "bench", "chair", "couch", "bed", "toilet", "dining table", "book", "umbrella", "cell phone",
    "laptop", "kite", "suitcase", "bottle", "remote", "toothbrush", "teddy bear", "scissors", "keyboard",
    "hair drier", "traffic light", "fire hydrant", "stop sign", "tv", "vase", "parking meter", "clock",
    "potted plant", "mouse", "frisbee", "sports ball", "tennis racket", "baseball bat", "skateboard", "snowboard",
    "skis", "surfboard", "banana", "cake", "apple", "carrot", "pizza", "donut", "hot dog", "sandwich", "broccoli",
    "orange", "knife", "spoon", "cup", "wine glass", "oven", "fork", "bowl", "refrigerator", "toaster", "sink",
    "microwave", "scene",
)

# Names of one kind of object; the DAMON name first where DAMON has one. A name is in at most one group.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    # sports, toys
    ("sports ball", "ball", "football", "soccer ball", "basketball", "volleyball", "handball", "beach ball",
     "tennis ball", "baseball", "rugby ball", "netball", "dodgeball", "medicine ball", "exercise ball", "gym ball"),
    ("frisbee", "flying disc"),
    ("tennis racket", "tennis racquet", "racket", "racquet"),
    ("baseball bat", "bat"),
    ("baseball glove", "baseball mitt", "mitt"),
    ("skateboard", "skate board", "longboard"),
    ("snowboard", "snow board"),
    ("skis", "ski", "pair of skis"),
    ("surfboard", "surf board"),
    ("kite",),
    ("teddy bear", "teddy", "stuffed animal", "stuffed toy", "plush toy", "soft toy"),
    # kitchen
    ("cup", "mug", "coffee mug", "coffee cup", "tea cup", "teacup", "tea mug", "paper cup", "travel mug"),
    ("wine glass", "glass", "drinking glass", "champagne glass", "tumbler"),
    ("bottle", "water bottle", "wine bottle", "beer bottle", "plastic bottle", "glass bottle", "flask"),
    ("bowl", "soup bowl", "salad bowl", "cereal bowl"),
    ("knife", "kitchen knife"),
    ("fork",),
    ("spoon", "teaspoon", "tablespoon"),
    ("oven",),
    ("microwave", "microwave oven"),
    ("toaster",),
    ("sink", "washbasin", "wash basin", "basin"),
    ("refrigerator", "fridge", "freezer"),
    # food
    ("banana",), ("apple",), ("orange", "mandarin", "tangerine"), ("carrot",), ("broccoli",),
    ("pizza", "pizza slice", "slice of pizza"), ("donut", "doughnut"), ("hot dog", "hotdog"), ("sandwich",),
    ("cake", "birthday cake", "cupcake"),
    # furniture
    ("dining table", "table", "kitchen table", "coffee table", "desk", "picnic table", "work table"),
    ("chair", "armchair", "office chair", "desk chair", "kitchen chair", "dining chair", "folding chair"),
    ("couch", "sofa", "settee", "loveseat"),
    ("bench", "park bench"),
    ("bed",),
    ("toilet", "toilet seat"),
    # everyday objects
    ("box", "carton", "cardboard box", "package", "parcel", "crate", "moving box", "shoebox"),
    ("board", "plank", "wooden board", "chessboard", "chess board", "cutting board", "chopping board",
     "whiteboard"),
    ("book", "notebook", "textbook", "novel"),
    ("umbrella", "parasol"),
    ("cell phone", "phone", "mobile phone", "mobile", "smartphone", "cellphone", "telephone"),
    ("laptop", "laptop computer", "notebook computer"),
    ("keyboard", "computer keyboard"),
    ("mouse", "computer mouse"),
    ("remote", "remote control", "tv remote"),
    ("tv", "television", "tv set", "television set", "telly"),
    ("suitcase", "luggage", "trolley case"),
    ("backpack", "rucksack", "knapsack", "schoolbag", "school bag"),
    ("handbag", "purse", "bag", "shoulder bag", "tote bag"),
    ("tie", "necktie"),
    ("toothbrush", "tooth brush"),
    ("scissors", "shears"),
    ("hair drier", "hair dryer", "hairdryer", "blow dryer"),
    ("vase", "flower vase"),
    ("clock", "wall clock", "alarm clock"),
    ("potted plant", "plant", "houseplant", "pot plant", "flower pot", "flowerpot"),
    ("traffic light", "traffic signal", "stoplight"),
    ("fire hydrant", "hydrant"),
    ("stop sign",),
    ("parking meter",),
    # vehicles
    ("bicycle", "bike", "push bike", "cycle"),
    ("motorcycle", "motorbike", "motor bike"),
    ("car", "automobile"),
    ("truck", "lorry", "pickup truck"),
    ("bus", "minibus"),
    ("train", "locomotive"),
    ("airplane", "aeroplane", "plane", "aircraft", "airliner"),
    ("boat", "ship", "canoe", "kayak", "sailboat", "rowing boat"),
    # DAMON's supporting contact
    ("scene", "ground", "floor"),
)

_GROUP: dict[str, tuple[str, ...]] = {name: group for group in SYNONYMS for name in group}
_ARTICLES = ("a ", "an ", "the ", "some ", "my ", "this ", "that ")

KNOWN, SYNONYM, HEAD_NOUN, OPEN, UNKNOWN = "known", "synonym", "head noun", "open vocabulary", "unknown"


def normalise_name(name: str) -> str:
    """Lower case, ``_``/``-`` as spaces, punctuation dropped, no leading article: ``"The Coffee-Mug"`` ->
    ``"coffee mug"``."""
    text = unicodedata.normalize("NFKC", name).lower().replace("_", " ").replace("-", " ")
    text = " ".join(re.sub(r"[^\w\s]", "", text).split())
    for article in _ARTICLES:
        if text.startswith(article):
            text = text[len(article):]
    return text


def singular_forms(text: str) -> list[str]:
    """Singular forms the name's last word may have (English regular plurals): ``"boxes"`` -> ``["boxe", "box"]``,
    ``"vases"`` -> ``["vase", "vas"]``; empty when it does not end like a plural."""
    head, _, last = text.rpartition(" ")
    forms = []
    if last.endswith("ies") and len(last) > 4:
        forms.append(last[:-3] + "y")
    if last.endswith("s") and not last.endswith(("ss", "us")) and len(last) > 3:
        forms.append(last[:-1])
        if last.endswith("es"):
            forms.append(last[:-2])
    return [f"{head} {f}" if head else f for f in forms]


@dataclass(frozen=True)
class NameMatch:
    """How one asked object name maps to a name the model knows.

    Attributes:
        asked: the name as given.
        prompt_name: the known name the question is asked with ("" when the model does not know the object).
        how: ``known`` (a class the model was trained on, any case or plural), ``synonym``, ``head noun``,
            ``open vocabulary`` (asked as given) or ``unknown``.
        reason: why the object is not known, listing what the model knows ("" when found).
    """

    asked: str
    prompt_name: str
    how: str
    reason: str = ""

    @property
    def found(self) -> bool:
        return bool(self.prompt_name)

    def describe(self) -> str:
        """One line for logs and diagnostics: ``basketball -> ball (synonym)``."""
        if not self.found:
            return f"{self.asked} -> not known"
        if self.prompt_name == self.asked:
            return f"{self.asked} ({self.how})"
        return f"{self.asked} -> {self.prompt_name} ({self.how})"


class ObjectVocabulary:
    """The object names one model knows: ``classes`` it was trained on, or None for an open vocabulary (see the
    module docstring for what each means)."""

    def __init__(self, classes: Iterable[str] | None = None):
        self.classes = None if classes is None else tuple(dict.fromkeys(normalise_name(c) for c in classes))
        if self.classes is not None and (not self.classes or not all(self.classes)):
            raise ValueError("object_classes must list at least one non-empty object name (or be null: an open "
                             "vocabulary)")

    @property
    def is_open(self) -> bool:
        return self.classes is None

    def resolve(self, name: str) -> NameMatch:
        """Map one typed name (already sanitised for the prompt) to the name the model is asked with."""
        if self.classes is None:
            return NameMatch(name, name, OPEN)
        text = normalise_name(name)
        for candidate, how in _candidates(text):
            for form in (candidate, *singular_forms(candidate)):
                if form in self.classes:
                    return NameMatch(name, form, how)
                known = next((n for n in _GROUP.get(form, ()) if n in self.classes), None)
                if known is not None:
                    return NameMatch(name, known, SYNONYM if how == KNOWN else how)
        return NameMatch(name, "", UNKNOWN, self.unknown_reason(name))

    def unknown_reason(self, name: str) -> str:
        """Why ``name`` is not asked: the model's classes and examples of everyday names for them."""
        classes = sorted(self.classes)
        examples = [next((n for n in _GROUP.get(c, ()) if n != c), "") for c in classes]
        examples = [repr(e) for e in examples if e][:4]
        hint = f" (also as everyday names such as {', '.join(examples)})" if examples else ""
        return f"{name!r} is not an object this model was trained on; it knows: {', '.join(classes)}{hint}"

    def known_names(self) -> dict[str, str]:
        """Every name this vocabulary maps directly (classes and their synonyms) -> the class it is asked as; empty
        for an open vocabulary."""
        if self.classes is None:
            return {}
        out = {c: c for c in self.classes}
        for c in self.classes:
            for n in _GROUP.get(c, ()):
                out.setdefault(n, next(k for k in _GROUP[c] if k in self.classes))
        return out


def _candidates(text: str) -> list[tuple[str, str]]:
    """Names to try, in order: the whole name, then its head noun phrases (``"cup of tea"`` -> ``cup``;
    ``"red coffee mug"`` -> ``coffee mug``, ``mug``)."""
    out = [(text, KNOWN)]
    parts = text.split(" of ", 1)
    for part in parts:
        words = part.split()
        out += [(" ".join(words[i:]), HEAD_NOUN) for i in range(len(words)) if (i or len(parts) > 1)]
    return [c for c in dict.fromkeys(out) if c[0]]


__all__ = ["DAMON_OBJECTS", "SYNONYMS", "NameMatch", "ObjectVocabulary", "normalise_name", "singular_forms"]
