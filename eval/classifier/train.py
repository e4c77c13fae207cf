"""Trains the injection classifier shipped as conf/models/injection.tgc.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r eval/classifier/requirements.txt
    /tmp/venv/bin/python eval/classifier/train.py --tollgate target/release/tollgate

Reads the pinned packages of sources.py (downloaded into --cache), normalises every text with
`tollgate normalize` (the form the gateway scores), writes eval/train-digests.txt (one SHA-256
per normalised training text) and the model, whose metadata holds the threshold chosen on the
validation tenth (THRESHOLD_RULE). Fixed seed: the same packages give the same file.
Nothing here reads the blind held-out sets.
"""

import argparse
import hashlib
import json
import math
import random
import struct
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import features as F  # noqa: E402
import sources  # noqa: E402

SEED = 20261128
MAGIC = b"TGCLS001"
# WordNet glosses are many and alike; a sample keeps the benign side varied without drowning it.
WORDNET_SAMPLE = 20000
# Benign texts that use the attacks' words (the generator's hard negatives and carriers, the Python
# documentation) count this many times in the loss, so vocabulary alone is not taken for intent.
HARD_NEGATIVE_WEIGHT = 2.0


def normalise(tollgate, texts):
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run([tollgate, "normalize"], input=lines.encode(), capture_output=True,
                         check=True).stdout.decode().splitlines()
    if len(out) != len(texts):
        raise SystemExit("tollgate normalize returned a different number of lines")
    return [json.loads(line)["text"].encode() for line in out]


def matrix(texts):
    """One row per window: counts of each bucket divided by sqrt(features in the window)."""
    rows, cols, vals, owner = [], [], [], []
    r = 0
    for i, text in enumerate(texts):
        for window in F.windows(text):
            if not window:
                continue
            counts = {}
            for b in window:
                counts[b] = counts.get(b, 0) + 1
            norm = 1.0 / math.sqrt(len(window))
            for b, c in counts.items():
                rows.append(r)
                cols.append(b)
                vals.append(c * norm)
            owner.append(i)
            r += 1
    x = sp.csr_matrix((vals, (rows, cols)), shape=(r, 1 << F.BITS), dtype=np.float64)
    return x, np.array(owner)


def collect(cache, tollgate):
    rng = random.Random(SEED)
    seen, rows = set(), []
    for text, label, source in sources.texts(cache, seed=SEED):
        text = text.strip()
        if text and text not in seen:
            seen.add(text)
            rows.append((text, label, source))
    wordnet = [r for r in rows if r[2] == "wordnet"]
    rows = [r for r in rows if r[2] != "wordnet"] + rng.sample(wordnet, WORDNET_SAMPLE)
    normalised = normalise(tollgate, [r[0] for r in rows])
    out, digests = [], set()
    for (_, label, source), norm in zip(rows, normalised):
        digest = hashlib.sha256(norm).hexdigest()
        if digest not in digests:
            digests.add(digest)
            out.append((norm, label, source, digest))
    return out


THRESHOLD_RULE = ("the lowest score (rounded up to 0.001) at which at most 0.1 % of the "
                  "validation split's benign texts score at or above it")
FP_BUDGET = 0.001


def pick_threshold(benign):
    """The lowest threshold, on a 0.001 grid, with at most FP_BUDGET of `benign` (validation
    scores) at or above it."""
    allowed = int(len(benign) * FP_BUDGET)
    ranked = sorted(benign, reverse=True)
    # Above the (allowed + 1)-th highest benign score: at most `allowed` benign reach it.
    edge = ranked[min(allowed, len(ranked) - 1)]
    return round(math.floor(edge * 1000 + 1) / 1000, 3)


def hard_negative(row):
    _, label, source, _ = row
    if label == 0 and (source.startswith("synth/") or source == "python-docs"):
        return HARD_NEGATIVE_WEIGHT
    return 1.0


def quantise(weights):
    scale = float(np.abs(weights).max()) / 32767.0 or 1.0
    return np.round(weights / scale).astype(np.int16), scale


def write_model(path, q, scale, bias, meta):
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<IIffI", F.BITS, F.BLOCK, scale, bias, len(meta_bytes)))
        f.write(meta_bytes)
        f.write(q.astype("<i2").tobytes())


def write_parity(path, q, bias, scale, data):
    """Texts with the scores this script gives them, for the gateway's parity test."""
    rng = random.Random(SEED + 1)
    texts = [b"", b"a", b"ab", "\u00e9t\u00e9 \u65e5\u672c".encode()]
    texts += [d[0] for d in rng.sample(data, 40)]
    long = b" ".join(d[0] for d in rng.sample(data, 60))
    texts += [long, long[: F.BLOCK * 3 + 7]]
    with open(path, "w") as f:
        for text in texts:
            text = text.decode("utf-8", "replace").encode()
            row = {"text": text.decode(), "score": F.score(q, bias, scale, text)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tollgate", required=True, help="the tollgate binary (for `normalize`)")
    ap.add_argument("--cache", default="/var/tmp/tollgate-classifier-sources")
    ap.add_argument("--model", default="conf/models/injection.tgc")
    ap.add_argument("--digests", default="eval/train-digests.txt")
    ap.add_argument("--parity", default="eval/classifier/parity.jsonl")
    ap.add_argument("--c", type=float, default=4.0)
    args = ap.parse_args()

    cache = sources.fetch(args.cache)
    data = collect(cache, args.tollgate)
    rng = random.Random(SEED)
    rng.shuffle(data)
    held = [d for d in data if int(d[3][:8], 16) % 10 == 0]
    train = [d for d in data if int(d[3][:8], 16) % 10 != 0]
    counts = {}
    for d in data:
        counts[(d[2], d[1])] = counts.get((d[2], d[1]), 0) + 1
    for (source, label), n in sorted(counts.items()):
        print(f"{source:40} {'attack' if label else 'benign'} {n}", file=sys.stderr)

    x, owner = matrix([d[0] for d in train])
    y = np.array([train[i][1] for i in owner])
    weight = np.array([hard_negative(train[i]) for i in owner])
    model = LogisticRegression(C=args.c, class_weight="balanced", solver="liblinear",
                               max_iter=1000, random_state=SEED)
    model.fit(x, y, sample_weight=weight)
    q, scale = quantise(model.coef_[0])
    # The file stores both as f32: score with the values the gateway will read.
    scale = float(np.float32(scale))
    bias = float(np.float32(model.intercept_[0]))

    # Validation on the tenth of the training sources set aside (not the blind sets).
    benign = sorted(F.score(q, bias, scale, d[0]) for d in held if d[1] == 0)
    attacks = [F.score(q, bias, scale, d[0]) for d in held if d[1] == 1]
    for fp in (0.01, 0.001):
        cut = benign[min(len(benign) - 1, int(len(benign) * (1 - fp)))]
        caught = sum(s > cut for s in attacks) / max(1, len(attacks))
        print(f"validation: threshold {cut:.3f} (benign above: {fp:.1%}) catches {caught:.1%} "
              f"of {len(attacks)} attacks; {len(benign)} benign", file=sys.stderr)
    threshold = pick_threshold(benign)
    above = sum(s >= threshold for s in benign)
    caught = sum(s >= threshold for s in attacks)
    print(f"stored threshold {threshold:.4f}: {above}/{len(benign)} validation benign at or above "
          f"({above / len(benign):.3%}), {caught}/{len(attacks)} validation attacks caught "
          f"({caught / max(1, len(attacks)):.1%})", file=sys.stderr)
    per_source = {}
    for d in held:
        flagged = F.score(q, bias, scale, d[0]) >= threshold
        parts = d[2].split("/")
        group = parts[0] + "/" + parts[2] if parts[0] == "synth" else parts[0]
        hit, total = per_source.get((group, d[1]), (0, 0))
        per_source[(group, d[1])] = (hit + flagged, total + 1)
    for (group, label), (hit, total) in sorted(per_source.items()):
        print(f"  validation {group:34} {'attack' if label else 'benign'} {hit}/{total} flagged",
              file=sys.stderr)

    meta = {"name": "tollgate-injection", "trained": "eval/classifier/train.py", "seed": SEED,
            "texts": len(data), "sources": [a[1] + " " + a[2] for a in sources.ARTIFACTS],
            "threshold": threshold, "threshold_rule": THRESHOLD_RULE}
    Path(args.model).parent.mkdir(parents=True, exist_ok=True)
    write_model(args.model, q, scale, bias, meta)
    write_parity(args.parity, q, bias, scale, data)
    Path(args.digests).write_text("".join(sorted(d[3] + "\n" for d in data)))
    print(f"wrote {args.model} and {args.digests} ({len(data)} texts; threshold {threshold})",
          file=sys.stderr)
    print(f"threshold {threshold}")


if __name__ == "__main__":
    main()
