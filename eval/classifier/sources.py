"""The training texts of the injection classifier, read from packages the registries serve.

Every source is one pinned artifact with its SHA-256; `fetch` downloads what the cache lacks and
refuses an artifact whose digest differs. `texts()` yields (text, label, source) with label 1 for
an attack (prompt injection, instruction override, prompt leak, jailbreak template) and 0 for a
benign text; it also yields the texts of `synth.py` (the generator written here), which uses the
Python documentation's paragraphs as carrier bodies. Only the artifacts listed in ARTIFACTS are
fetched or read; the packages reserved for independent evaluation (eval/README.md) are not among
them and must never be added.
"""

import ast
import hashlib
import io
import json
import random
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import yaml

import synth

# (kind, name, version, file name, sha256, licence)
ARTIFACTS = [
    ("npm", "promptfoo", "0.121.20", "promptfoo-0.121.20.tgz",
     "2c2adf02a0a032d36cb95039560e5f77add6a64aeab4aa82dff4e39393e546f9", "MIT"),
    ("pypi", "llamator", "3.5.0", "llamator-3.5.0-py2.py3-none-any.whl",
     "77ce462bbdc53ee3a75c805209872a60723398a569172488e83c0f0ef9e1f75a", "CC-BY-4.0"),
    ("pypi", "spikee", "0.9.2", "spikee-0.9.2-py3-none-any.whl",
     "60cec774a1138e62b68b4bed445285f5b5103818ffb68fab681f37b5e707802b", "Apache-2.0"),
    ("pypi", "prompt-security-fuzzer", "2.1.1", "prompt_security_fuzzer-2.1.1-py3-none-any.whl",
     "43f60a5c38f4972f06574162df8a076c4a2d104202f0c02b190aab51e4dbc6ff", "MIT"),
    ("pypi", "agentdojo", "0.1.35", "agentdojo-0.1.35-py3-none-any.whl",
     "364bea4219716b716bf639f504d195943f7f6a5535d312ca41d7098704a2affd", "MIT"),
    ("pypi", "chatterbot-corpus", "1.3.3", "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
     "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154", "BSD-3-Clause"),
    ("deb", "wordnet-base", "1:3.0-37", "wordnet-base_1%3a3.0-37_all.deb",
     "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752", "WordNet"),
    ("pypi", "promptinject", "0.1.1.1", "promptinject-0.1.1.1-py3-none-any.whl",
     "98d020b6878c0c32703110d19c0b1651868e906da0f3b1472d349923bda5fedf", "MIT"),
    ("deb", "fortunes", "1:1.99.1-7.3", "fortunes_1%3a1.99.1-7.3_all.deb",
     "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5", "BSD-4-Clause"),
    ("deb", "python3.11-doc", "3.11.2-6+deb12u9", "python3.11-doc_3.11.2-6+deb12u9_all.deb",
     "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be", "PSF-2.0"),
    ("pypi", "deepteam", "1.0.10", "deepteam-1.0.10-py3-none-any.whl",
     "ab818f5f3fd7924104e11e3e3951df8a19a6d029e305be55339b477b99605a76", "Apache-2.0"),
]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fetch(cache):
    """Download every artifact the cache lacks; check every digest."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    for kind, name, version, file, digest, _ in ARTIFACTS:
        path = cache / file
        if not path.exists():
            if kind == "pypi":
                cmd = ["pip", "download", "--no-deps", "-q", "-d", str(cache), f"{name}=={version}"]
            elif kind == "npm":
                cmd = ["npm", "pack", f"{name}@{version}", "--silent"]
            else:
                cmd = ["apt-get", "download", f"{name}={version}"]
            subprocess.run(cmd, cwd=cache, check=True)
        if sha256(path) != digest:
            raise SystemExit(f"{file}: digest differs from the pinned one")
    return cache


def promptfoo(cache):
    """The jailbreak templates of promptfoo's `prompt-injection` strategy."""
    marker = "//#region src/redteam/strategies/promptInjections/data.ts"
    with tarfile.open(cache / "promptfoo-0.121.20.tgz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if not member.name.endswith(".js"):
                continue
            source = tar.extractfile(member).read().decode("utf-8", "replace")
            if marker not in source:
                continue
            start = source.index("var data_default = [", source.index(marker))
            start += len("var data_default = ")
            end = source.index("\n];", start) + 2
            return json.loads(source[start:end].replace("\t", ""))
    raise SystemExit("promptfoo: the injection templates were not found")


def parquet(wheel, name):
    with zipfile.ZipFile(wheel) as z:
        return pq.read_table(io.BytesIO(z.read(name))).to_pylist()


def jsonl(z, name):
    return [json.loads(line) for line in z.read(name).decode().splitlines() if line.strip()]


def deb_files(deb, folder):
    """(name, bytes) of each file under `folder` in a Debian package, in name order."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if folder in member.name and member.isfile():
                yield member.name, tar.extractfile(member).read()


def fortunes(cache):
    """Fortune cookies (quotes, jokes, definitions): benign everyday English."""
    out = []
    for name, data in deb_files(cache / "fortunes_1%3a1.99.1-7.3_all.deb", "/games/fortunes/"):
        if name.endswith((".dat", ".u8")):
            continue
        text = data.decode("utf-8", "replace")
        out += [t.strip() for t in text.split("\n%\n") if len(t.strip()) >= 40]
    return out


def wordnet(cache):
    """WordNet glosses: a definition and its example sentences, one text per synset."""
    out = []
    for name, data in deb_files(cache / "wordnet-base_1%3a3.0-37_all.deb", "/wordnet/data."):
        for line in data.decode("utf-8", "replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue
            gloss = line.split(" | ", 1)[1].strip()
            if len(gloss) >= 40:
                out.append(gloss)
    return out


def chatterbot(cache):
    """Every utterance of the ChatterBot dialog corpus, in its 28 languages."""
    out = []
    with zipfile.ZipFile(cache / "chatterbot_corpus-1.3.3-py2.py3-none-any.whl") as z:
        for name in sorted(z.namelist()):
            if not name.endswith(".yml"):
                continue
            doc = yaml.safe_load(z.read(name)) or {}
            for conversation in doc.get("conversations") or []:
                out += [str(u).strip() for u in conversation if str(u).strip()]
    return sorted(set(out))


def constant(node, names):
    """The value of a string expression made of literals, f-strings over known names and +."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                inner = value.value
                key = inner.id if isinstance(inner, ast.Name) else (
                    inner.attr if isinstance(inner, ast.Attribute) else None)
                if key not in names:
                    return None
                parts.append(names[key])
            else:
                parts.append(value.value)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = constant(node.left, names), constant(node.right, names)
        return None if left is None or right is None else left + right
    return None


def agentdojo(z):
    """AgentDojo's attack templates ({goal} strings), attacker goals and benign documents."""
    templates, goals, documents = [], [], []
    for name in sorted(z.namelist()):
        if name.endswith(".py") and ("/attacks/" in name or name.endswith("injection_tasks.py")):
            tree = ast.parse(z.read(name).decode())
            names = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                        and isinstance(node.targets[0], ast.Name):
                    value = constant(node.value, names)
                    if value is None:
                        continue
                    names[node.targets[0].id] = value
                    if node.targets[0].id == "GOAL":
                        goals.append(value)
                    elif "{goal}" in value:
                        templates.append(value)
                elif isinstance(node, ast.Call):
                    for arg in node.args:
                        value = constant(arg, names)
                        if value and "{goal}" in value and "TODO" not in value:
                            templates.append(value)
        elif name.endswith(".yaml") and "/data/suites/" in name and "injection_vectors" not in name:
            suite = name.split("/data/suites/")[1].split("/")[0]
            vectors = yaml.safe_load(z.read(f"agentdojo/data/suites/{suite}/injection_vectors.yaml"))
            text = z.read(name).decode()
            for key, vector in (vectors or {}).items():
                text = text.replace("{" + key + "}", str(vector.get("default", "")))
            documents += yaml_strings(yaml.load(text, Loader=IncludeIgnoringLoader))
    documents = [d for d in documents if len(d) >= 80 and "{injection" not in d]
    return sorted(set(templates)), sorted(set(goals)), sorted(set(documents))


class IncludeIgnoringLoader(yaml.SafeLoader):
    """AgentDojo's environments name their parts with `!include`; each part is read on its own."""


IncludeIgnoringLoader.add_constructor("!include", lambda loader, node: None)


def yaml_strings(doc):
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in yaml_strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in yaml_strings(v)]
    return []


def inject(rng, document, attack):
    """The document with the attack placed at a paragraph or sentence boundary."""
    cuts = [m.end() for m in re.finditer(r"\n\n|\. ", document)] + [0, len(document)]
    at = rng.choice(cuts)
    return document[:at] + "\n" + attack + "\n" + document[at:]


def module_literals(z, name):
    """The module-level literal assignments of a Python file in a wheel, by name."""
    out = {}
    for node in ast.parse(z.read(name).decode()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def promptinject(cache, rng):
    """PromptInject: playground task prompts (benign), and the same tasks with the user input
    replaced by a goal-hijacking or prompt-leaking attack."""
    with zipfile.ZipFile(cache / "promptinject-0.1.1.1-py3-none-any.whl") as z:
        data = module_literals(z, "promptinject/prompt_data.py")
    rogue = sorted(data["rogue_strings"].values())
    attacks = [a["instruction"] for a in data["goal_hikacking_attacks"].values()]
    attacks += [a["instruction"] for a in data["prompt_leaking_attacks"].values()]
    for prompt in sorted(data["openai_playground_prompts"].values(), key=lambda p: p["label"]):
        task = prompt["instruction"].strip()
        yield task, 0
        for attack in attacks:
            attack = attack.replace("{REPLACE_rogue_string}", rng.choice(rogue))
            yield f"{task}\n\n{attack}", 1


def psfuzz_templates(cache):
    """The attack templates prompt-security-fuzzer keeps in its attack modules."""
    out = []
    with zipfile.ZipFile(cache / "prompt_security_fuzzer-2.1.1-py3-none-any.whl") as z:
        for name in sorted(z.namelist()):
            if not name.startswith("ps_fuzz/attacks/") or not name.endswith(".py"):
                continue
            for key, value in module_literals(z, name).items():
                if isinstance(value, str) and key.endswith(("_template", "_frame")):
                    out.append(value)
    return out


PYDOC_FOLDERS = ("library", "howto", "tutorial", "faq", "reference", "using", "extending")
ROLE = re.compile(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def python_docs(cache):
    """Paragraphs of the Python 3.11 documentation's reST sources (library reference, HOWTOs,
    tutorial, FAQ, language reference): technical English that overrides, ignores, prints and
    reveals things. Not the changelog or "what's new" pages."""
    out = []
    deb = cache / "python3.11-doc_3.11.2-6+deb12u9_all.deb"
    for name, data in deb_files(deb, "/html/_sources/"):
        part = name.split("/html/_sources/", 1)[1]
        if not part.startswith(PYDOC_FOLDERS) or not name.endswith(".rst.txt"):
            continue
        for para in re.split(r"\n\s*\n", data.decode("utf-8", "replace")):
            lines = [line for line in para.splitlines() if not line.lstrip().startswith("..")
                     and not re.fullmatch(r"\s*[-=~^*#\"']{3,}\s*", line)]
            text = ROLE.sub(r"\1", " ".join(line.strip() for line in lines)).replace("``", "")
            text = re.sub(r"\s+", " ", text).strip()
            if 80 <= len(text) <= 1500:
                out.append(text)
    return sorted(set(out))


DEEPTEAM_ATTACKS = ("system_override", "prompt_probing", "roleplay", "permission_escalation",
                    "context_poisoning", "goal_redirection", "input_bypass", "authority_escalation",
                    "synthetic_context_injection", "prompt_injection", "gray_box",
                    "emotional_manipulation")


def deepteam(cache):
    """The worked example prompts ("input" of each example) in deepteam's single-turn attack
    templates for override, probing, role-play, escalation and injection attacks."""
    out = []
    with zipfile.ZipFile(cache / "deepteam-1.0.10-py3-none-any.whl") as z:
        for name in sorted(z.namelist()):
            parts = name.split("/")
            if len(parts) != 5 or parts[:3] != ["deepteam", "attacks", "single_turn"] \
                    or parts[3] not in DEEPTEAM_ATTACKS or parts[4] != "template.py":
                continue
            source = z.read(name).decode()
            for m in re.finditer(r'"input": "((?:[^"\\]|\\.)*)"', source):
                text = m.group(1).replace("\\\\n", "\n").replace("\\n", "\n")
                text = text.replace('\\"', '"').replace("{{", "{").replace("}}", "}")
                if len(text) >= 40:
                    out.append(text)
    return out


class Slots(dict):
    """Template slots; one a template names that is not given reads as nothing."""

    def __missing__(self, key):
        return ""


def texts(cache, payloads_per_template=3, seed=20261128):
    """Every training text once, as (text, label, source)."""
    rng = random.Random(seed)
    cache = Path(cache)
    spikee = zipfile.ZipFile(cache / "spikee-0.9.2-py3-none-any.whl")
    seeds = "spikee/data/workspace/datasets/"

    # What an attacker wants done once the model obeys: the payloads the templates carry.
    payloads = [row["instruction"] for n in spikee.namelist()
                if n.startswith(seeds) and n.endswith("/instructions.jsonl")
                and spikee.getinfo(n).file_size > 0
                for row in jsonl(spikee, n)]
    payloads = sorted(set(p for p in payloads if p))

    for template in promptfoo(cache):
        for _ in range(payloads_per_template if "__PROMPT__" in template else 1):
            yield template.replace("__PROMPT__", rng.choice(payloads)), 1, "promptfoo"

    llamator = cache / "llamator-3.5.0-py2.py3-none-any.whl"
    for row in parquet(llamator, "llamator/attack_data/system_prompt_leakage.parquet"):
        yield row["goal"], 1, "llamator/system_prompt_leakage"
    for row in parquet(llamator, "llamator/attack_data/ucar-dan_prompts.parquet"):
        for column in ("dan", "ucar"):
            if row.get(column):
                yield row[column], 1, f"llamator/{column}"

    for name in sorted(spikee.namelist()):
        if not (name.startswith(seeds) and name.endswith("/jailbreaks.jsonl")):
            continue
        if spikee.getinfo(name).file_size == 0:
            continue
        for row in jsonl(spikee, name):
            if row.get("jailbreak_type") == "no-jailbreak":
                continue
            for _ in range(payloads_per_template):
                text = row["text"].replace("<INSTRUCTION>", rng.choice(payloads))
                yield text, 1, "spikee/jailbreaks"

    psfuzz = cache / "prompt_security_fuzzer-2.1.1-py3-none-any.whl"
    for row in parquet(psfuzz, "ps_fuzz/attack_data/prompt_injections_for_base64.parquet"):
        yield str(row["text"]), int(row["label"]), "prompt-security-fuzzer"

    # The payloads alone: a prompt leak or an injected instruction is an attack by itself;
    # harmful requests are not this classifier's business and investment questions are benign.
    for name in sorted(spikee.namelist()):
        if not (name.startswith(seeds) and spikee.getinfo(name).file_size > 0):
            continue
        if name.endswith("/instructions.jsonl"):
            for row in jsonl(spikee, name):
                kind = row.get("instruction_type", "")
                if kind == "financial-adv":
                    yield row["instruction"], 0, "spikee/benign-requests"
                elif kind in ("sysmsg-extract", "data-exfil-markdown", "xss", "encoding",
                              "translation", "long-output"):
                    yield row["instruction"], 1, "spikee/instructions"
        elif name.endswith("/standalone_user_inputs.jsonl") and "investment" in name:
            for row in jsonl(spikee, name):
                yield row["text"], 0, "spikee/benign-requests"

    for text, label in promptinject(cache, rng):
        yield text, label, "promptinject"
    harmful = [row["instruction"] for n in spikee.namelist()
               if "seeds-harmful-instructions-only/instructions.jsonl" in n
               for row in jsonl(spikee, n)]
    for template in psfuzz_templates(cache):
        for _ in range(payloads_per_template):
            slots = Slots(attack_task=rng.choice(harmful), attack_prompt=rng.choice(harmful))
            yield template.format_map(slots), 1, "prompt-security-fuzzer/templates"

    dojo = zipfile.ZipFile(cache / "agentdojo-0.1.35-py3-none-any.whl")
    templates, goals, documents = agentdojo(dojo)
    for document in documents:
        yield document, 0, "agentdojo/documents"
        template = rng.choice(templates)
        attack = template.format_map(Slots(goal=rng.choice(goals), user="Emma Johnson",
                                           model=rng.choice(["GPT-4", "Claude", "Gemini"])))
        yield inject(rng, document, attack), 1, "agentdojo/injected-documents"
    for goal in goals:
        yield goal, 1, "agentdojo/goals"

    for text in deepteam(cache):
        yield text, 1, "deepteam"
    docs = python_docs(cache)
    for text in docs:
        yield text, 0, "python-docs"
    for item in synth.texts(seed, filler=docs):
        yield item

    for text in fortunes(cache):
        yield text, 0, "fortunes"
    for text in wordnet(cache):
        yield text, 0, "wordnet"
    for text in chatterbot(cache):
        yield text, 0, "chatterbot-corpus"
