"""The 1000 ImageNet-1k classes with their WordNet ids and names, and the map from CIFAR-10 classes to their ImageNet hyponyms.

Usage: python3 make_imagenet_classes.py TIMM_INFO_DIR WORDNET_DIR > imagenet_classes.tsv
  TIMM_INFO_DIR: timm's data/_info folder (imagenet_synsets.txt gives the class order, imagenet_synset_to_lemma.txt the names);
  WORDNET_DIR:   WordNet 3.0's dict folder (Debian's wordnet-base: /usr/share/wordnet), whose offsets are ImageNet's ids.
Standard library only.

Columns: index, wnid, name (the first lemma), all lemmas, and the CIFAR-10 class whose WordNet roots (method spec §2.1:
dog.n.01, bird.n.01, car.n.01, airplane.n.01, truck.n.01, boat.n.01 and ship.n.01, frog.n.01, cat.n.01, horse.n.01,
deer.n.01 and antelope.n.01) the class descends from through hypernym and instance-hypernym links (the nearest root
when there are two), or "-".
"""
import os
import sys

ROOTS = {
    "airplane": ["n02691156"],
    "automobile": ["n02958343"],
    "bird": ["n01503061"],
    "cat": ["n02121620"],
    "deer": ["n02430045", "n02419796"],
    "dog": ["n02084071"],
    "frog": ["n01639765"],
    "horse": ["n02374451"],
    "ship": ["n02858304", "n04194289"],
    "truck": ["n04490091"],
}


def hypernyms(wordnet_dir):
    parents = {}
    with open(os.path.join(wordnet_dir, "data.noun"), encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split(" | ")[0].split()
            offset, words = fields[0], int(fields[3], 16)
            k = 4 + 2 * words
            pointers = int(fields[k])
            ups = []
            for p in range(pointers):
                symbol, target, pos = fields[k + 1 + 4 * p], fields[k + 2 + 4 * p], fields[k + 3 + 4 * p]
                if symbol in ("@", "@i") and pos == "n":
                    ups.append("n" + target)
            parents["n" + offset] = ups
    return parents


def ancestors(wnid, parents):
    """Every ancestor with its distance in hypernym links (breadth first, so the shortest)."""
    dist, frontier = {wnid: 0}, [wnid]
    while frontier:
        nxt = []
        for node in frontier:
            for up in parents.get(node, []):
                if up not in dist:
                    dist[up] = dist[node] + 1
                    nxt.append(up)
        frontier = nxt
    return dist


def main(timm_info, wordnet_dir):
    order = [line.strip() for line in open(os.path.join(timm_info, "imagenet_synsets.txt")) if line.strip()]
    lemmas = dict(line.rstrip("\n").split("\t", 1) for line in open(os.path.join(timm_info, "imagenet_synset_to_lemma.txt")))
    parents = hypernyms(wordnet_dir)
    assert len(order) == 1000
    print("index\twnid\tname\tlemmas\tcifar10")
    for index, wnid in enumerate(order):
        up = ancestors(wnid, parents)
        # A class under two roots (minivan: a car and a van, so a truck) goes to the nearer one.
        hits = sorted((min(up[r] for r in roots if r in up), c) for c, roots in ROOTS.items() if any(r in up for r in roots))
        cifar = [hits[0][1]] if hits else []
        names = lemmas[wnid]
        print(f"{index}\t{wnid}\t{names.split(', ')[0]}\t{names}\t{cifar[0] if cifar else '-'}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
