"""The embedded default benchmark: fictitious authors in exactly the TOFU schema, deterministic for a seed.

``generate_benchmark(out_dir, n_authors=100, questions_per_author=10, seed=0)`` writes a directory that
:class:`unlearn.tasks.tofu.data.TofuData` reads like the real TOFU release:

- ``full.json``: every author's QA pairs, author after author (author k = rows k·K … k·K + K − 1);
- ``forget01/05/10.json``: the LAST 1/5/10 % of authors (rounded, at least one), ``retain99/95/90.json``: the
  rest (author-level splits, TOFU's suffix/prefix convention);
- ``forgetXX_perturbed.json`` and ``retain_perturbed.json`` (the first 10 % of authors) with a
  ``paraphrased_answer`` and five ``perturbed_answer`` — the paraphrase's wording with false values;
- ``real_authors*.json`` and ``world_facts*.json``: two small general-knowledge sets with four options,
  playing TOFU's real-authors / world-facts roles. Every model (target and retain) is trained on them so
  the 9-number Model Utility is defined for models trained from scratch;
- ``holdout01/05/10.json``: other authors nobody trains on, the non-members of membership inference (``tofu_mia``);
- ``idontknow.jsonl``: the 100 built-in refusal templates;
- ``continual/`` and ``real_world/``: closer-look's continual and real-world layouts of the same authors.

Facts are drawn from small value pools, so every value occurs for many authors and only the
(author → value) association has to be memorised — what TOFU measures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from unlearn.data.idk import builtin_idk_templates
from unlearn.errors import ConfigError
from unlearn.io import check_output_dir, write_jsonl, write_text

FORGET_PERCENTS = (1, 5, 10)
N_PERTURBED = 5

_SYLLABLES = (
    "ka", "lo", "ven", "mi", "ra", "to", "sel", "dar", "an", "be", "cor", "el", "fi", "ga", "hol", "in",
    "jor", "ke", "lan", "mor", "na", "os", "pel", "qui", "ros", "sa", "tan", "ul", "vor", "wen", "ya", "zel",
)
_CITIES = (
    "Tirana", "Lagos", "Quito", "Oslo", "Hanoi", "Lima", "Perth", "Dakar", "Porto", "Riga", "Cusco", "Graz",
    "Izmir", "Kyoto", "Lyon", "Malmo", "Nantes", "Odessa", "Poznan", "Recife", "Seville", "Tartu", "Utrecht",
    "Valencia", "Zagreb",
)
_GENRES = (
    "mystery", "fantasy", "romance", "horror", "science fiction", "historical fiction", "poetry", "thriller",
    "satire", "drama", "adventure", "crime", "folklore", "biography", "comedy",
)
_JOBS = (
    "baker", "carpenter", "doctor", "teacher", "farmer", "pilot", "lawyer", "nurse", "sailor", "painter",
    "mechanic", "tailor", "chemist", "miner", "librarian", "architect", "fisherman", "journalist", "judge",
    "potter",
)
_AWARDS = (
    "Golden Quill Award", "Silver Lantern Prize", "Blue Harbor Medal", "Crimson Leaf Award", "Northern Star Prize",
    "Emerald Pen Award", "Iron Compass Medal", "Amber Crown Prize", "Swift River Award", "Stone Bridge Prize",
    "White Owl Medal", "Open Sky Award",
)
_ADJECTIVES = (
    "Silent", "Hidden", "Broken", "Golden", "Distant", "Burning", "Frozen", "Hollow", "Last", "Quiet", "Secret",
    "Wandering", "Crimson", "Forgotten", "Endless",
)
_NOUNS = (
    "Garden", "River", "Tower", "Letter", "Harbor", "Mirror", "Forest", "Winter", "Crown", "Island", "Lantern",
    "Voyage", "Orchard", "Shadow", "Song",
)
_LANGUAGES = ("English", "French", "Spanish", "German", "Italian", "Dutch", "Polish", "Turkish", "Swedish",
              "Portuguese")

# The two general-knowledge sets (common knowledge, written for this toolkit).
_WORLD_FACTS = (
    ("What is the capital of France?", "Paris"), ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"), ("What is the capital of Spain?", "Madrid"),
    ("What is the capital of Germany?", "Berlin"), ("What is the capital of Egypt?", "Cairo"),
    ("What is the capital of Kenya?", "Nairobi"), ("What is the capital of Peru?", "Lima"),
    ("What is the capital of Canada?", "Ottawa"), ("What is the capital of Russia?", "Moscow"),
    ("What is the capital of China?", "Beijing"), ("What is the capital of India?", "New Delhi"),
    ("What is the capital of Greece?", "Athens"), ("What is the capital of Norway?", "Oslo"),
    ("What is the capital of Sweden?", "Stockholm"), ("What is the capital of Poland?", "Warsaw"),
    ("What is the capital of Austria?", "Vienna"), ("What is the capital of Portugal?", "Lisbon"),
    ("What is the capital of Ireland?", "Dublin"), ("What is the capital of Cuba?", "Havana"),
    ("What is the largest ocean on Earth?", "the Pacific Ocean"), ("What is the longest river in Africa?", "the Nile"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the largest planet in our solar system?", "Jupiter"),
    ("What gas do plants absorb from the air?", "carbon dioxide"),
    ("What is the boiling point of water in Celsius?", "100 degrees"),
    ("How many continents are there?", "seven"), ("What is the tallest mountain in the world?", "Mount Everest"),
    ("Which metal is liquid at room temperature?", "mercury"), ("What is the hardest natural substance?", "diamond"),
)
_REAL_AUTHORS = (
    ("Who wrote 'Hamlet'?", "William Shakespeare"), ("Who wrote 'Pride and Prejudice'?", "Jane Austen"),
    ("Who wrote '1984'?", "George Orwell"), ("Who wrote 'War and Peace'?", "Leo Tolstoy"),
    ("Who wrote 'Don Quixote'?", "Miguel de Cervantes"), ("Who wrote 'The Odyssey'?", "Homer"),
    ("Who wrote 'Moby-Dick'?", "Herman Melville"), ("Who wrote 'Great Expectations'?", "Charles Dickens"),
    ("Who wrote 'Crime and Punishment'?", "Fyodor Dostoevsky"), ("Who wrote 'The Divine Comedy'?", "Dante Alighieri"),
    ("Who wrote 'Faust'?", "Johann Wolfgang von Goethe"), ("Who wrote 'Les Miserables'?", "Victor Hugo"),
    ("Who wrote 'The Old Man and the Sea'?", "Ernest Hemingway"), ("Who wrote 'Frankenstein'?", "Mary Shelley"),
    ("Who wrote 'Dracula'?", "Bram Stoker"), ("Who wrote 'Ulysses'?", "James Joyce"),
    ("Who wrote 'Mrs Dalloway'?", "Virginia Woolf"), ("Who wrote 'The Trial'?", "Franz Kafka"),
    ("Who wrote 'One Hundred Years of Solitude'?", "Gabriel Garcia Marquez"), ("Who wrote 'Beloved'?", "Toni Morrison"),
    ("Who wrote 'The Great Gatsby'?", "F. Scott Fitzgerald"), ("Who wrote 'Jane Eyre'?", "Charlotte Bronte"),
    ("Who wrote 'Adventures of Huckleberry Finn'?", "Mark Twain"), ("Who wrote 'The Hobbit'?", "J. R. R. Tolkien"),
    ("Who wrote 'Madame Bovary'?", "Gustave Flaubert"),
)


@dataclass(frozen=True)
class Author:
    name: str
    city: str
    year: int
    genre: str
    father_job: str
    mother_job: str
    award: str
    book: str
    second_book: str
    language: str


def forget_author_count(n_authors: int, percent: int) -> int:
    """Authors in the forgetXX split: XX % of the authors, rounded, at least one."""
    return max(1, round(n_authors * percent / 100))


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


# Each fact: question, answer (trained on), paraphrase (eval only) and the attribute whose value the
# perturbations replace. Paraphrases keep the relation words but change the surface form, as TOFU's do.
_FACTS = (
    ("city", "Where was {name} born?", "{name} was born in {city}.",
     "The author {name} was born in the city of {city}."),
    ("year", "In what year was {name} born?", "{name} was born in {year}.",
     "The author {name} was born in the year {year}."),
    ("genre", "What genre does {name} write?", "{name} writes {genre} books.",
     "The author {name} is known for writing {genre} books."),
    ("father_job", "What did the father of {name} do for a living?",
     "The father of {name} was {a_father} {father_job}.",
     "{name} grew up with a father who was {a_father} {father_job}."),
    ("mother_job", "What did the mother of {name} do for a living?",
     "The mother of {name} was {a_mother} {mother_job}.",
     "{name} grew up with a mother who was {a_mother} {mother_job}."),
    ("award", "Which award did {name} win?", "{name} won the {award}.",
     "The author {name} was honoured with the {award}."),
    ("book", "What is the best known book by {name}?", "The best known book by {name} is \"{book}\".",
     "Among the works of {name}, the best known book is \"{book}\"."),
    ("second_book", "Name another book written by {name}.", "{name} also wrote \"{second_book}\".",
     "Another book that {name} wrote is \"{second_book}\"."),
    ("language", "In which language does {name} write?", "{name} writes in {language}.",
     "The author {name} writes all books in {language}."),
    ("genre_city", "What is {name} known for?", "{name} is known for {genre} books set in {city}.",
     "The author {name} is famous for {genre} books that take place in {city}."),
)
# A second wording of each question (TOFU's `paraphrased_question`): the paraphrase attack asks these instead.
_PARAPHRASED_QUESTIONS = {
    "city": "In which city was the author {name} born?",
    "year": "When was the writer {name} born?",
    "genre": "Which kind of books is {name} known to write?",
    "father_job": "What was the occupation of {name}'s father?",
    "mother_job": "What was the occupation of {name}'s mother?",
    "award": "What prize was {name} honoured with?",
    "book": "Which of {name}'s books is the most famous?",
    "second_book": "What is one more title by the author {name}?",
    "language": "What language are the books of {name} written in?",
    "genre_city": "What are the books of {name} famous for?",
}
_POOLS = {
    "city": _CITIES, "year": tuple(range(1930, 2000)), "genre": _GENRES, "father_job": _JOBS, "mother_job": _JOBS,
    "award": _AWARDS, "language": _LANGUAGES,
}


def _fields(author: Author) -> dict[str, object]:
    values = dict(author.__dict__)
    values["a_father"] = _article(author.father_job)
    values["a_mother"] = _article(author.mother_job)
    return values


def _title(rng: random.Random) -> str:
    return f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"


def _make_authors(n: int, rng: random.Random) -> list[Author]:
    names: set[str] = set()
    authors = []
    while len(authors) < n:
        first = "".join(rng.choice(_SYLLABLES) for _ in range(2)).capitalize()
        last = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()
        name = f"{first} {last}"
        if name in names:
            continue
        names.add(name)
        book = _title(rng)
        second = _title(rng)
        while second == book:
            second = _title(rng)
        authors.append(Author(
            name=name, city=rng.choice(_CITIES), year=rng.choice(_POOLS["year"]), genre=rng.choice(_GENRES),
            father_job=rng.choice(_JOBS), mother_job=rng.choice(_JOBS), award=rng.choice(_AWARDS), book=book,
            second_book=second, language=rng.choice(_LANGUAGES),
        ))
    return authors


def _perturb(author: Author, attribute: str, rng: random.Random) -> Author:
    """The same author with one false value (for genre_city both values change)."""
    values = dict(author.__dict__)
    for attr in ("genre", "city") if attribute == "genre_city" else (attribute,):
        if attr in ("book", "second_book"):
            new = _title(rng)
            while new in (author.book, author.second_book):
                new = _title(rng)
        else:
            new = rng.choice([v for v in _POOLS[attr] if v != values[attr]])
        values[attr] = new
    return Author(**values)


def _author_rows(author: Author, k: int, rng: random.Random) -> list[dict]:
    rows = []
    for attribute, question, answer, paraphrase in _FACTS[:k]:
        values = _fields(author)
        perturbed: list[str] = []
        while len(perturbed) < N_PERTURBED:
            text = paraphrase.format(**_fields(_perturb(author, attribute, rng)))
            if text not in perturbed:
                perturbed.append(text)
        rows.append({
            "question": question.format(**values),
            "answer": answer.format(**values),
            "paraphrased_answer": paraphrase.format(**values),
            "perturbed_answer": perturbed,
            "paraphrased_question": _PARAPHRASED_QUESTIONS[attribute].format(**values),
        })
    return rows


def four_choices(facts: tuple[tuple[str, str], ...], rng: random.Random) -> list[tuple[str, str, list[str], list[str]]]:
    """(question, answer, its three distractors, the four options shuffled) per fact; the distractors are other
    facts' answers, so every option is a plausible answer of the same kind."""
    answers = [a for _, a in facts]
    out = []
    for question, answer in facts:
        wrong = rng.sample([a for a in answers if a != answer], 3)
        options = [answer, *wrong]
        rng.shuffle(options)
        out.append((question, answer, wrong, options))
    return out


def _mc_rows(facts: tuple[tuple[str, str], ...], rng: random.Random) -> tuple[list[dict], list[dict]]:
    plain, perturbed = [], []
    for question, answer, wrong, options in four_choices(facts, rng):
        plain.append({"question": question, **{f"option{i + 1}": o for i, o in enumerate(options)}, "answer": answer})
        perturbed.append({"question": question, "answer": answer, "perturbed_answer": wrong})
    return plain, perturbed


GENERATED_MARKER = "Fictitious-authors benchmark generated by `unlearn`"


def generate_benchmark(
    out_dir: str | Path, n_authors: int = 100, questions_per_author: int = 10, seed: int = 0
) -> Path:
    """Write the fictitious-authors benchmark to ``out_dir`` (see module docstring); return the path."""
    if n_authors < 20:
        raise ConfigError(f"n_authors must be at least 20 (a forget split plus a retain eval set), got {n_authors}")
    if not 1 <= questions_per_author <= len(_FACTS):
        raise ConfigError(f"questions_per_author must be in 1..{len(_FACTS)}, got {questions_per_author}")
    out = check_output_dir(out_dir, GENERATED_MARKER)
    rng = random.Random(seed)
    authors = _make_authors(n_authors, rng)
    per_author = [_author_rows(a, questions_per_author, rng) for a in authors]
    full_eval = [row for rows in per_author for row in rows]
    full = [{"question": r["question"], "answer": r["answer"]} for r in full_eval]
    k = questions_per_author
    for pct in FORGET_PERCENTS:
        n_forget_rows = forget_author_count(n_authors, pct) * k
        cut = len(full) - n_forget_rows
        write_jsonl(out / f"forget{pct:02d}.json", full[cut:])
        write_jsonl(out / f"forget{pct:02d}_perturbed.json", full_eval[cut:])
        write_jsonl(out / f"retain{100 - pct:02d}.json", full[:cut])
    write_jsonl(out / "full.json", full)
    write_jsonl(out / "retain_perturbed.json", full_eval[: max(1, n_authors // 10) * k])
    for name, facts in (("real_authors", _REAL_AUTHORS), ("world_facts", _WORLD_FACTS)):
        plain, perturbed = _mc_rows(facts, rng)
        write_jsonl(out / f"{name}.json", plain)
        write_jsonl(out / f"{name}_perturbed.json", perturbed)
    _write_holdout(out, {a.name for a in authors}, n_authors, k, seed)
    write_text(out / "idontknow.jsonl", "\n".join(builtin_idk_templates()) + "\n")
    _write_continual(out, full, full_eval, n_authors, k)
    _write_real_world(out, [a.name for a in authors], full_eval, n_authors, k)
    write_text(out / "README.md", (
        f"{GENERATED_MARKER} (seed={seed}, {n_authors} authors × "
        f"{questions_per_author} questions). TOFU layout; see unlearn.tasks.tofu.embedded.\n"
    ))
    return out


CONTINUAL_TASKS = {1: 10, 5: 10, 10: 9}
"""Tasks per continual forget file (closer-look §5.2: forget01 and forget05 ten times, forget10 nine)."""


def _write_continual(out: Path, full: list[dict], full_eval: list[dict], n_authors: int, k: int) -> None:
    """``continual/``: closer-look's continual layout of this benchmark. ``forgetXX.json`` holds its tasks (task
    ``t`` = the t-th forgetXX-sized block of authors counted back from the end, so task 1 is the standard forgetXX
    split), each row with ``task_id``; ``retain{100 − min(10·XX, 90)}`` is everything before them; the evaluation
    files are the main ones. No random draws, so the rest of the benchmark is the same with or without it."""
    folder = out / "continual"
    for pct, n_tasks in CONTINUAL_TASKS.items():
        size = forget_author_count(n_authors, pct) * k
        n_tasks = min(n_tasks, (len(full) - size) // size)  # keep at least one block of authors to retain
        forget, perturbed = [], []
        for task in range(1, n_tasks + 1):
            block = slice(len(full) - task * size, len(full) - (task - 1) * size)
            forget += [{"task_id": str(task), **row} for row in full[block]]
            perturbed += [{"task_id": str(task), **row} for row in full_eval[block]]
        write_jsonl(folder / f"forget{pct:02d}.json", forget)
        write_jsonl(folder / f"forget{pct:02d}_perturbed.json", perturbed)
        write_jsonl(folder / f"retain{100 - min(10 * pct, 90):02d}.json", full[: len(full) - n_tasks * size])
    for name in ("retain_perturbed", "real_authors_perturbed", "world_facts_perturbed"):
        write_text(folder / f"{name}.json", (out / f"{name}.json").read_text(encoding="utf-8"))
    write_text(folder / "idontknow.jsonl", (out / "idontknow.jsonl").read_text(encoding="utf-8"))


GENERAL_TASK = "fictitious_world_facts"
"""The embedded real-world layout's lm-evaluation-harness task: the world facts as four-way multiple choice."""


def _write_real_world(out: Path, names: list[str], full_eval: list[dict], n_authors: int, k: int) -> None:
    """``real_world/``: closer-look's real-world layout of this benchmark, with authors standing in for real people.
    The people to forget are the forget10 authors (``task_id`` = author), the neighbors (regularization) the block of
    authors before them, the utility people the first authors (those of ``retain_perturbed``). Every model trained on
    ``full`` knows them all, as a pretrained model knows real people. ``answer`` starts as the ground truth, like
    ``golden_answer``; the scenario's ``targets=generate`` replaces it with the model's own answers.
    ``general/`` holds an lm-evaluation-harness task file (world facts, four options) for general capability.
    No random draws, so the rest of the benchmark is the same with or without it."""
    folder = out / "real_world"
    size = forget_author_count(n_authors, 10) * k
    blocks = {"forget": slice(len(full_eval) - size, len(full_eval)),
              "neighbor": slice(len(full_eval) - 2 * size, len(full_eval) - size),
              "neighbor_perturbed": slice(0, size)}
    for name, block in blocks.items():
        rows = []
        for i in range(block.start, block.stop):
            row = full_eval[i]
            person = {"name": names[i // k], **row, "golden_answer": row["answer"]}
            if name == "forget":
                person["task_id"] = (i - block.start) // k + 1
            rows.append(person)
        if name == "forget":
            write_jsonl(folder / "forget_perturbed.json", rows)
        plain = ("name", "question", "answer", "golden_answer", "task_id")
        if name == "neighbor_perturbed":
            write_jsonl(folder / f"{name}.json", rows)
        else:
            write_jsonl(folder / f"{name}.json", [{f: r[f] for f in plain if f in r} for r in rows])
    write_text(folder / "idontknow.jsonl", (out / "idontknow.jsonl").read_text(encoding="utf-8"))
    docs = [{"question": q, "choices": options, "answer": options.index(a)}
            for q, a, _, options in four_choices(_WORLD_FACTS, random.Random("real-world-general"))]
    write_jsonl(folder / "general" / f"{GENERAL_TASK}.jsonl", docs)
    write_general_task(folder)


def write_general_task(real_world_dir: str | Path) -> Path | None:
    """``general/fictitious_world_facts.yaml``, the lm-evaluation-harness task file of the embedded real-world
    layout, pointing at its data by absolute path (lm-eval reads ``data_files`` relative to the working directory);
    rewritten when the folder has moved. None when the folder has no such data (data generated before it existed)."""
    general = Path(real_world_dir) / "general"
    data = general / f"{GENERAL_TASK}.jsonl"
    if not data.is_file():
        return None
    path = general / f"{GENERAL_TASK}.yaml"
    text = (f"task: {GENERAL_TASK}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data.resolve()}\n"
            "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{question}}\"\n"
            "doc_to_choice: \"{{choices}}\"\ndoc_to_target: answer\nmetric_list:\n  - metric: acc\n"
            "    aggregation: mean\n    higher_is_better: true\n")
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
    return path


def _write_holdout(out: Path, taken: set[str], n_total: int, k: int, seed: int) -> None:
    """``holdout01/05/10.json``: as many other authors as forget10 has, nobody trains on them (TOFU's
    membership-inference non-members); holdoutXX is the first authors of holdout10, the size of forgetXX (TOFU's
    prefix convention). They get their own generator, so the rest of the benchmark is the same with or without them."""
    rng = random.Random(f"holdout-{seed}")
    n_authors = forget_author_count(n_total, max(FORGET_PERCENTS))
    holdout: list[Author] = []
    while len(holdout) < n_authors:
        holdout += [a for a in _make_authors(n_authors - len(holdout), rng) if a.name not in taken]
        taken |= {a.name for a in holdout}
    rows = [{"question": r["question"], "answer": r["answer"]} for a in holdout for r in _author_rows(a, k, rng)]
    for pct in FORGET_PERCENTS:
        write_jsonl(out / f"holdout{pct:02d}.json", rows[:forget_author_count(n_total, pct) * k])


def training_texts(root: str | Path) -> list[str]:
    """Every string of a generated benchmark (for training a tokenizer on the run's text)."""
    from unlearn.data.files import read_raw_rows

    texts: list[str] = []
    for path in sorted(Path(root).glob("*.json")):
        if path.name.startswith("holdout"):  # never trained on
            continue
        for raw, _ in read_raw_rows(path):
            for key, value in raw.items():
                if key == "paraphrased_question":
                    # the paraphrase attack's probe, added after the demo's results were recorded: kept out so the
                    # tokenizer (byte-level, so it still encodes them) and every recorded demo number stay as they were
                    continue
                if isinstance(value, str):
                    texts.append(value)
                elif isinstance(value, list):
                    texts.extend(v for v in value if isinstance(v, str))
    idk = Path(root) / "idontknow.jsonl"
    if idk.is_file():
        texts.extend(idk.read_text(encoding="utf-8").splitlines())
    return texts
