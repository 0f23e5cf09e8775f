"""The paper's caption vocabularies (method spec §2.1, failure_directions' CaptionGenerator) as deterministic data.

Usage: python3 make_vocabularies.py > vocabularies.json      (standard library only)

Each set has reference labels (one per class; the reference caption is "a photo of a <label>") and, per class, the nouns,
adjectives and prepositions whose product gives the candidate captions ("a photo of a {adjective} {noun} {preposition}",
null meaning "leave the slot out"). Order is fixed (the paper iterated a Python set, so its order varied from run to run).
Written here: CIFAR-10's CIFARSIMPLE set, the CIFAR-100 superclass set, CelebA and ChestX-ray.
Not yet written: CIFAR-10's WordNet-noun set and the ImageNet ancestor set (they need WordNet walks; see the closing note).
"""
import json

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


def main():
    sets = {
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
    print(json.dumps(sets, indent=1))


if __name__ == "__main__":
    main()
