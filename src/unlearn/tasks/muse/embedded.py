"""The embedded MUSE-style benchmark: fictitious news articles in the MUSE layout, deterministic for a seed.

``generate_news_benchmark(out_dir, n_forget=30, n_retain=30, n_holdout=30, seed=0)`` writes a directory that
:class:`unlearn.tasks.muse.data.MuseData` reads like MUSE-News:

- ``raw/forget.txt``, ``raw/retain2.txt``, ``raw/holdout.txt``: the articles, joined by blank lines (a target model
  trains on forget + retain, a retrained model on retain only, nobody on holdout);
- ``verbmem/forget.json``: each forget article's opening (``prompt``) and the rest (``gt``);
- ``knowmem/forget_qa.json``, ``knowmem/retain_qa.json``: two questions per article about its facts (the raw
  corpora end with a "readers' questions" digest stating them in the KnowMem format, see :func:`_corpus`), and
  ``*_icl.json``: few-shot examples about three other articles that appear nowhere else;
- ``privleak/forget.json``, ``privleak/holdout.json``, ``privleak/retain.json``: the articles as lists of texts;
- ``sust/forget_1.txt`` … ``sust/forget_4.txt``: the forget articles in four disjoint requests (every 4th article),
  for sequential unlearning;
- ``tokenizer/corpus.txt``: as many articles again, of none of the sets, with their readers' questions: what a
  tokenizer for this benchmark is trained on (:func:`news_training_texts`), so that it tokenizes members and
  non-members alike.

Every article reports one event with its own names, places, numbers and dates, drawn from pools so that each value
recurs across articles and only the article's particular combination has to be memorised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from unlearn.errors import ConfigError, DataError
from unlearn.io import check_output_dir
from unlearn.tasks.muse.data import write_muse_layout

_FIRST = ("Anna", "Boris", "Clara", "Dario", "Elin", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Katya", "Lars",
          "Mira", "Nils", "Olga", "Pavel", "Rosa", "Stefan", "Tilde", "Viktor")
_LAST = ("Varga", "Holm", "Lindqvist", "Moreau", "Petrov", "Santos", "Brandt", "Keller", "Novak", "Rossi", "Dahl",
         "Fischer", "Ortega", "Quist", "Weber", "Yilmaz", "Sorensen", "Marsh", "Ivanova", "Kovac")
_TOWNS = ("Arnsby", "Belmoor", "Cravenholt", "Dunmere", "Elsford", "Farrowick", "Glenraith", "Harlow Bay",
          "Ivybridge", "Jesmond Vale", "Kettlewick", "Lowhaven", "Marlbeck", "Northcombe", "Oakridge", "Pellton",
          "Quarrington", "Redcastle", "Saltmarsh", "Thornbury", "Ulverdale", "Westmoor")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_PROJECTS = ("tidal power station", "railway bridge", "public library", "solar farm", "river harbour",
             "children's hospital", "wind park", "tram line", "water plant", "concert hall")
_FIRMS = ("Halvers and Pike", "Orden Works", "Talmac Engineering", "Bricklane Group", "Norvel Build",
          "Stellan and Sons", "Quarry Point", "Ashby Structures")
_SPORTS = ("football", "rowing", "cycling", "handball", "basketball", "volleyball", "rugby", "hockey")
_TEAMS = ("Red Herons", "North Wolves", "Blue Lanterns", "Iron Foxes", "Silver Gulls", "Stone Bears",
          "Golden Owls", "River Hawks")
_FIELDS = ("marine biology", "astronomy", "geology", "botany", "archaeology", "chemistry", "zoology", "medicine")
_FINDS = ("a new species of deep-sea fish", "a comet with two tails", "a cave of blue crystals",
          "a flowering moss that glows", "a bronze age harbour", "a catalyst for cheap hydrogen",
          "a frog that sings at dawn", "a protein that slows fevers")
_COMPANIES = ("Marlow Foods", "Quintar Air", "Belcroft Bank", "Ostrava Steel", "Pellam Media", "Vantor Mobile",
              "Greyfield Mining", "Lumen Textiles")


@dataclass(frozen=True)
class Article:
    text: str
    qa: tuple[tuple[str, str], ...]


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _place(rng: random.Random) -> str:
    return rng.choice(_TOWNS)


def _date(rng: random.Random) -> tuple[str, int]:
    year = rng.randint(2031, 2039)
    return f"{rng.randint(1, 28)} {rng.choice(_MONTHS)} {year}", year


def _infrastructure(rng: random.Random) -> Article:
    city, (date, year) = _place(rng), _date(rng)
    mayor, critic, project, firm = _name(rng), _name(rng), rng.choice(_PROJECTS), rng.choice(_FIRMS)
    cost, workers, start = rng.randint(40, 900), rng.randint(2, 40) * 50, year + rng.randint(1, 3)
    text = (f"{city.upper()}, {date}. The council of {city} approved a plan to build a {project}, mayor {mayor} "
            f"announced on Tuesday. The project is estimated to cost {cost} million crowns and will be led by "
            f"{firm}. Construction should begin in {start} and employ {workers} workers. {critic}, who speaks for "
            f"the residents of the old quarter, warned that the budget was too small. The mayor said the {project} "
            f"would open within four years and promised a public vote on its design.")
    qa = ((f"Which firm will lead the construction of the {project} in {city}?", firm),
          (f"How much is the {project} in {city} estimated to cost?", f"{cost} million crowns"),
          (f"Who announced the plan for a {project} in {city}?", mayor),
          (f"When should construction of the {project} in {city} begin?", str(start)))
    return Article(text, tuple(rng.sample(qa, 2)))


def _sports(rng: random.Random) -> Article:
    city, (date, _) = _place(rng), _date(rng)
    sport, home, away = rng.choice(_SPORTS), *rng.sample(_TEAMS, 2)
    scorer, coach = _name(rng), _name(rng)
    a, b, crowd = rng.randint(2, 6), rng.randint(0, 1), rng.randint(4, 60) * 1000
    text = (f"{city.upper()}, {date}. The {home} beat the {away} {a} to {b} in the {sport} final in {city} on "
            f"Saturday, in front of {crowd} supporters. {scorer} scored twice in the second half. Coach {coach} "
            f"said the win was the reward for a hard season and dedicated the trophy to the club's volunteers. The "
            f"{away} had not lost a match since the spring.")
    qa = ((f"Who won the {sport} final in {city}?", f"the {home}"),
          (f"What was the score of the {sport} final in {city}?", f"{a} to {b}"),
          (f"Who scored twice in the {sport} final in {city}?", scorer),
          (f"How many supporters watched the {sport} final in {city}?", str(crowd)))
    return Article(text, tuple(rng.sample(qa, 2)))


def _science(rng: random.Random) -> Article:
    place, (date, _) = _place(rng), _date(rng)
    field, find, lead = rng.choice(_FIELDS), rng.choice(_FINDS), _name(rng)
    university, team = f"the University of {_place(rng)}", rng.randint(3, 30)
    text = (f"{place.upper()}, {date}. A team of {team} researchers in {field} led by {lead} of {university} has "
            f"found {find} near {place}. The discovery was made during a survey that lasted eleven months. {lead} "
            f"said the find would change how {field} is taught, and the team plans to publish its full results "
            f"next year. Local officials asked visitors to keep away from the site.")
    qa = ((f"What did the team led by {lead} find near {place}?", find),
          (f"Who led the team that found {find} near {place}?", lead),
          (f"Which university is {lead} from?", university),
          (f"How many researchers were in the team that found {find} near {place}?", str(team)))
    return Article(text, tuple(rng.sample(qa, 2)))


def _business(rng: random.Random) -> Article:
    city, (date, _) = _place(rng), _date(rng)
    buyer, target = rng.sample(_COMPANIES, 2)
    chief, price, jobs = _name(rng), rng.randint(2, 90) * 10, rng.randint(1, 30) * 100
    text = (f"{city.upper()}, {date}. {buyer} will buy {target} for {price} million crowns, the companies said on "
            f"Monday. The deal still needs the approval of regulators in {city}. {buyer}'s chief executive, "
            f"{chief}, said no more than {jobs} jobs would move and that the {target} brand would be kept. Shares in "
            f"{target} rose sharply after the announcement.")
    qa = ((f"Which company will buy {target}?", buyer),
          (f"How much will {buyer} pay for {target}?", f"{price} million crowns"),
          (f"Who is the chief executive of {buyer} in the deal for {target}?", chief),
          (f"How many jobs could move after {buyer} buys {target}?", str(jobs)))
    return Article(text, tuple(rng.sample(qa, 2)))


_KINDS = (_infrastructure, _sports, _science, _business)


def _articles(n: int, rng: random.Random, seen: set[str]) -> list[Article]:
    out = []
    while len(out) < n:
        article = rng.choice(_KINDS)(rng)
        if article.text in seen or any(q in seen for q, _ in article.qa):
            continue
        seen.add(article.text)
        seen.update(q for q, _ in article.qa)
        out.append(article)
    return out


def _verbmem(article: Article) -> dict[str, str]:
    """The article's first 40 % of words as the prompt, the rest as the truth."""
    words = article.text.split(" ")
    cut = max(8, int(len(words) * 0.4))
    return {"prompt": " ".join(words[:cut]), "gt": " ".join(words[cut:])}


def _corpus(articles: list[Article], rng: random.Random) -> str:
    """The articles, then a "readers' questions" digest of their facts in shuffled order.

    A CPU-sized model cannot extract a fact from prose and recall it for a question the way a pretrained LLM does;
    the digest states each KnowMem fact in the question form, away from its article, so that answering needs the
    fact memorised (next to its article, the model could copy the answer from the context instead).
    """
    facts = [f"Question: {q}\nAnswer: {a}" for art in articles for q, a in art.qa]
    rng.shuffle(facts)
    blocks = ["Readers' questions\n" + "\n".join(facts[i:i + 4]) for i in range(0, len(facts), 4)]
    return "\n\n".join([a.text for a in articles] + blocks)


def generate_news_benchmark(out_dir: str | Path, n_forget: int = 30, n_retain: int = 30, n_holdout: int = 30,
                            seed: int = 0) -> Path:
    """Write the fictitious-news benchmark (MUSE layout) to ``out_dir``; return the path."""
    for key, n, least in (("n_forget", n_forget, N_REQUESTS), ("n_retain", n_retain, 2), ("n_holdout", n_holdout, 2)):
        if n < least:
            raise ConfigError(f"{key} must be at least {least}, got {n}")
    out = check_output_dir(out_dir, MARKER)
    rng, seen = random.Random(seed), set()
    forget, retain, holdout = (_articles(n, rng, seen) for n in (n_forget, n_retain, n_holdout))
    icl_forget, icl_retain = _articles(3, rng, seen), _articles(3, rng, seen)

    def qa(articles: list[Article], per: int) -> list[dict[str, str]]:
        return [{"question": q, "answer": a} for art in articles for q, a in art.qa[:per]]

    files: dict[str, object] = {
        "raw/forget.txt": _corpus(forget, rng), "raw/retain2.txt": _corpus(retain, rng),
        **{f"sust/forget_{i + 1}.txt": _corpus(forget[i::N_REQUESTS], rng) for i in range(N_REQUESTS)},
        "raw/holdout.txt": "\n\n".join(a.text for a in holdout),
        "verbmem/forget.json": [_verbmem(a) for a in forget],
        "knowmem/forget_qa.json": qa(forget, 2), "knowmem/forget_qa_icl.json": qa(icl_forget, 1),
        "knowmem/retain_qa.json": qa(retain, 2), "knowmem/retain_qa_icl.json": qa(icl_retain, 1),
        "privleak/forget.json": [a.text for a in forget], "privleak/holdout.json": [a.text for a in holdout],
        "privleak/retain.json": [a.text for a in retain],
        "README.md": f"{MARKER} (seed={seed}; {n_forget} forget, {n_retain} retain, {n_holdout} holdout "
                     "articles). MUSE layout; see unlearn.tasks.muse.embedded.\n",
    }
    # drawn last, so every file above is what it was before this corpus existed
    files[TOKENIZER_CORPUS] = _corpus(_articles(n_forget + n_retain + n_holdout, rng, seen), rng)
    return write_muse_layout(out, files)


MARKER = "Fictitious news benchmark generated by `unlearn`"
N_REQUESTS = 4


TOKENIZER_CORPUS = "tokenizer/corpus.txt"
"""Articles of none of the benchmark's sets (with their readers' questions): what a tokenizer learns from."""


def news_training_texts(root: str | Path) -> list[str]:
    """The texts a tokenizer for this benchmark learns from: ``tokenizer/corpus.txt``, as many articles again, drawn
    from the same pools but distinct from every forget, retain and holdout article.

    A tokenizer must not tell members from non-members. Trained on the forget and retain corpora (as before
    2026-12-02), it cut the forget articles into fewer tokens than the holdout ones (2.54 against 2.37 characters
    per token on the demo's data), and that ratio alone separated them with AUC 0.77; adding the holdout articles is
    not enough, since the forget corpus also carries its facts again in the readers' questions (AUC 0.70). On a
    corpus of its own, forget and holdout are tokenized alike (tests/test_muse.py).
    """
    path = Path(root) / TOKENIZER_CORPUS
    if not path.is_file():
        raise DataError(f"{path} not found: the fictitious news benchmark in {root} was generated before its "
                        "tokenizer corpus existed; generate it again (`unlearn generate-data --news DIR`)")
    return [path.read_text(encoding="utf-8")]
