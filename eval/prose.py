#!/usr/bin/env python3
"""The wide false-positive check of the content filter: paragraphs of technical prose from the
README, NEWS and changelog files of the Debian packages installed on this machine
(/usr/share/doc), as `{"text", "label": "benign"}` lines for `tollgate eval-filter`.

    python3 eval/prose.py [--count 20000] [--seed 20261126] > /tmp/prose.jsonl
    tollgate eval-filter /tmp/prose.jsonl --wrong

Paragraphs are blocks separated by blank lines, whitespace collapsed, 80 to 2,000 characters;
a seeded sample of `--count` of them (all when there are fewer). These files are never training
data for the classifier (eval/README.md).
"""
import argparse
import gzip
import json
import random
import re
import sys
from pathlib import Path

NAMES = re.compile(r"^(readme|news|changelog)(\.[a-z]+)?(\.gz)?$", re.I)


def files(root):
    for path in sorted(Path(root).glob("*/*")):
        if path.is_file() and not path.is_symlink() and NAMES.match(path.name):
            yield path


def paragraphs(path):
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="strict") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError, EOFError):
        return
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        if 80 <= len(block) <= 2000:
            yield block


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/usr/share/doc")
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=20261126)
    args = ap.parse_args()
    seen, found = set(), []
    for path in files(args.root):
        for p in paragraphs(path):
            if p not in seen:
                seen.add(p)
                found.append(p)
    random.Random(args.seed).shuffle(found)
    chosen = found[: args.count]
    for p in chosen:
        sys.stdout.write(json.dumps({"text": p, "label": "benign"}) + "\n")
    print(f"{len(chosen)} of {len(found)} paragraphs", file=sys.stderr)


if __name__ == "__main__":
    main()
