"""Assemble one of the sets from writers' files.

    python data/safety/assemble.py OUT.tsv IN... [--exclude SET.tsv ...]

Rows are kept in order; a row whose folded text (``bondhu.safety.canonical.fold`` of all its
turns) repeats an earlier row, or any row of an ``--exclude`` set, is dropped and counted. The
blind set is assembled first, then dev excluding blind, then train excluding both, so no message
is in two sets.
"""

from __future__ import annotations

import argparse
from collections import Counter

from bondhu.safety.canonical import fold
from bondhu.safety.evalset import load_set, write_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--exclude", nargs="*", default=[])
    args = parser.parse_args()
    taken = {fold(" ".join(e.turns)) for path in args.exclude for e in load_set(path)}
    kept, dropped = [], Counter()
    for path in args.inputs:
        for e in load_set(path):
            key = fold(" ".join(e.turns))
            if key in taken:
                dropped[path] += 1
                continue
            taken.add(key)
            kept.append(e)
    write_set(kept, args.output)
    labels = Counter(e.label for e in kept)
    print(f"{args.output}: {len(kept)} rows ({dict(labels)}); dropped as repeats: {dict(dropped) or 'none'}")


if __name__ == "__main__":
    main()
