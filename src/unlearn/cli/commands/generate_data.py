"""`unlearn generate-data`: write an embedded benchmark to a directory: fictitious authors (TOFU layout) or fictitious
news (--news, MUSE layout)."""

from __future__ import annotations

import argparse

NAME = "generate-data"
HELP = ("write an embedded benchmark to a directory: fictitious authors (TOFU layout) or fictitious news "
        "(--news, MUSE layout)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out_dir")
    p.add_argument("--news", action="store_true", help="the fictitious-news benchmark (MUSE layout)")
    p.add_argument("--articles", type=int, default=20, help="--news: forget, retain and holdout articles each")
    p.add_argument("--authors", type=int, default=100)
    p.add_argument("--questions", type=int, default=10, help="questions per author (1-10)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    if args.news:
        from unlearn.tasks.muse.embedded import generate_news_benchmark

        out = generate_news_benchmark(args.out_dir, args.articles, args.articles, args.articles, args.seed)
        print(f"wrote the fictitious-news benchmark (MUSE layout) to {out}")
        return 0
    from unlearn.tasks.tofu.embedded import generate_benchmark

    out = generate_benchmark(args.out_dir, args.authors, args.questions, args.seed)
    print(f"wrote the fictitious-authors benchmark to {out}")
    return 0
